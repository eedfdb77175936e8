//! Leaked keys revoke themselves: a GitHub secret-scanning report (or one from our own
//! scanners) parsed and bounded, each token classified, every key that still works revoked
//! through [`Revoker`] with a reason naming where it leaked, and GitHub's feedback array built
//! (`{"token_hash", "token_type", "label"}`: never the token). Pure: storage is behind the
//! trait, time is passed in.
//!
//! Two token types, told apart by their format (not by the type a report claims): API keys
//! (`lqt_` + 64 lowercase hex) and organization admin tokens (`lqta_` + 64 lowercase hex; GitHub's
//! route only, through [`TokenRevoker`]). For each distinct token: neither format →
//! `false_positive` (no storage read); well-formed but unknown → `false_positive`; a key active
//! or in grace, or an admin token not revoked → revoked now → `true_positive`; already revoked
//! (or an expired key) → `true_positive`, unchanged. The same report twice changes nothing the
//! second time: the first made every key and admin token it named inactive.
//!
//! # How a 1,000-token report fits one invocation
//!
//! Cloudflare allows 1,000 operations to external services (Workers KV included) per Worker
//! invocation, on the free and paid plans alike; a KV *bulk* get of up to 100 names counts as
//! one ([KV limits](https://developers.cloudflare.com/kv/platform/limits/)). A report is spent
//! against [`OPS_BUDGET`] (900 of those 1,000; the rest is headroom for the route's wiring):
//! - tokens are deduplicated by hash first (GitHub reports one leaked token once per file it is
//!   found in), and malformed ones cost nothing;
//! - lookups: [`Revoker::lookup`] takes up to [`Revoker::LOOKUP_BATCH`] hashes per operation:
//!   with KV's bulk get (100), 1,000 distinct tokens cost 10 operations;
//! - revocations go in batches of up to [`Revoker::REVOKE_BATCH`] keys, one operation per batch
//!   (the change log's commit) plus [`Revoker::REVOKE_OPS`] per key (KV: the key record and its
//!   audit event, 2); keys already inactive cost nothing more.
//!
//! - an admin token costs one bulk lookup per [`TokenRevoker::LOOKUP_BATCH`] (the `AdminTokens`
//!   Durable Object, one subrequest) and [`TokenRevoker::REVOKE_OPS`] per live one (its revoke
//!   and its audit event, 2). Admin tokens are looked up and revoked first: one is worth more
//!   than a key.
//!
//! So a report fits when `lookups + batches + 2 × live keys and tokens ≤ 900`: every report of up to
//! 1,000 tokens of which at most 442 are live keys (10 + 5 + 884 = 899). Past that, the work is
//! bounded instead: the first 442 are revoked, the rest are counted in [`Processed::pending`],
//! and the answer is `503 report_incomplete`. Sending the same report again (GitHub retries
//! failed deliveries; our scanners are told to) costs the same 10 lookups plus the keys still
//! live, so even 1,000 live keys are all revoked by the third attempt. Without a bulk lookup
//! (`LOOKUP_BATCH = 1`) only ~900 distinct tokens fit, so the KV wiring should use KV's bulk
//! `get(names[])`.

use crate::error::ApiError;
use crate::json_object::Object;
use crate::key::{is_well_formed, sha256_hex, KeyHash, OrgAdminToken};
use crate::record::{AdminTokenRecord, KeyRecord, KeyStatus};
use crate::signature::{GitHubSignatures, KeysFetcher, SignatureError};
use crate::time::Millis;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A report body larger than this (1 MiB) is refused with 413, before anything is read.
pub const MAX_REPORT_BODY: usize = 1024 * 1024;
/// A report with more entries than this is refused with 413, nothing revoked.
pub const MAX_REPORT_ENTRIES: usize = 1_000;
/// Operations to external services Cloudflare allows one Worker invocation.
pub const KV_OPS_PER_INVOCATION: usize = 1_000;
/// What one report may spend of [`KV_OPS_PER_INVOCATION`].
pub const OPS_BUDGET: usize = 900;
/// The `token_type` of entries reported through the admin route, and of GitHub's entries that
/// name no type (unless they are admin tokens): the token type registered with GitHub for keys.
pub const API_KEY_TYPE: &str = "lumiqtrace_api_key";
/// The token type registered with GitHub for organization admin tokens (`lqta_`).
pub const ADMIN_TOKEN_TYPE: &str = "lumiqtrace_admin_token";
/// A revocation reason is at most this many bytes once JSON-escaped, so the largest key record
/// (678 bytes today) still fits KV's 1024-byte metadata with its `revoked_reason`.
pub const MAX_REASON_BYTES: usize = 300;
/// The admin route's `source`: 1 to this many characters.
pub const MAX_SOURCE_CHARS: usize = 200;

/// A report refused or left unfinished. Mapped to HTTP in `error.rs`.
#[derive(Debug, thiserror::Error)]
pub enum LeakError {
    #[error("the report is larger than {MAX_REPORT_BODY} bytes")]
    BodyTooLarge,
    #[error("the report has {0} entries; at most {MAX_REPORT_ENTRIES} are accepted")]
    TooManyEntries(usize),
    #[error("the report is not valid JSON ({0})")]
    InvalidJson(String),
    #[error("the report does not match the schema: {0}")]
    InvalidBody(String),
    /// The admin report has a field besides `keys` and `source` (not named: it may be a key).
    #[error("expected only \"keys\" and \"source\"")]
    UnknownField,
    #[error("source must be 1 to {MAX_SOURCE_CHARS} characters, none of them control characters")]
    InvalidSource,
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(
        "revoked {revoked} leaked keys or admin tokens; {pending} more did not fit this request: send the same report again"
    )]
    Incomplete { revoked: usize, pending: usize },
    #[error(transparent)]
    Store(#[from] ApiError),
}

/// GitHub's verdict vocabulary: `"true_positive"`, `"false_positive"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Label {
    TruePositive,
    FalsePositive,
}

/// One element of the answer: the token's SHA-256 (hex), its type as reported, the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::token_hash))]
    pub token_hash: String,
    pub token_type: String,
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub label: Label,
}

/// Who reported the leak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reporter {
    GitHub,
    /// The admin route: `source` as given (trimmed, bounded).
    Admin {
        source: String,
    },
}

/// One distinct token of a report, without the token: its hash, whether it has our format,
/// and where it was first found. A token named again later in the same report adds nothing:
/// one answer, one revocation, and the reason names the first place (GitHub lists a token once
/// per file it is in; the first is as good a witness as any, and the reason stays one place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub token_hash: String,
    pub token_type: String,
    /// Which of our formats it has, if any.
    format: Option<TokenFormat>,
    /// GitHub's `source` (`content`, `commit`, …) and `url` of the first place it was found.
    kind: Option<String>,
    url: Option<String>,
}

/// The two token formats a report may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenFormat {
    /// `lqt_` + 64 lowercase hex: an API key.
    Key,
    /// `lqta_` + 64 lowercase hex: an organization admin token.
    AdminToken,
}

impl TokenFormat {
    fn of(token: &str) -> Option<Self> {
        match () {
            () if is_well_formed(token) => Some(Self::Key),
            () if OrgAdminToken::parse(token).is_some() => Some(Self::AdminToken),
            () => None,
        }
    }
}

/// A parsed report: distinct tokens in the order first reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub reporter: Reporter,
    pub findings: Vec<Finding>,
}

/// The [`Revocation::actor`] of a report sent to the admin route: its audit event names the
/// signed-in admin instead (`operator`, or the admin token).
pub const ADMIN_ACTOR: &str = "admin";

/// What a leak revocation records on the key (`revoked_reason`) and in its audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The audit event's actor: `github-secret-scanning` or `admin`.
    pub actor: &'static str,
    /// For people, e.g. `Leaked: found by GitHub secret scanning (content) at https://…`;
    /// at most [`MAX_REASON_BYTES`] once JSON-escaped.
    pub reason: String,
}

/// The storage side of a leak report, implemented by the admin layer.
#[allow(async_fn_in_trait)] // single-threaded Workers runtime: no `Send` bound wanted
pub trait Revoker {
    /// Most hashes one [`Revoker::lookup`] call takes; one call costs one storage operation
    /// (Workers KV's bulk `get(names[])` takes up to 100 names for one operation).
    const LOOKUP_BATCH: usize;
    /// Most records one [`Revoker::revoke`] call takes; the call itself costs one operation.
    const REVOKE_BATCH: usize;
    /// Further operations per record revoked (KV: the record write + its audit event = 2).
    const REVOKE_OPS: usize;

    /// The records stored under these hashes, in the same order (`None`: no such key), as the
    /// verify path would see them at `now`. Never more than [`Revoker::LOOKUP_BATCH`] hashes.
    async fn lookup(
        &self,
        hashes: &[KeyHash],
        now: Millis,
    ) -> Result<Vec<Option<KeyRecord>>, ApiError>;

    /// Revokes each record of `batch` (as [`Revoker::lookup`] returned it: active or in grace
    /// at `now`): `revoked_at = now`, `revoked_reason = reason`, written back, then a
    /// `key.revoked` audit event by `actor` carrying the reason. A key that changed meanwhile is
    /// decided again on its new version (revoked if it still works). Returns the log line owed
    /// if only an audit append failed (the revocations stand), like `admin::Done::warning`.
    async fn revoke(
        &self,
        batch: &[(KeyRecord, Revocation)],
        now: Millis,
    ) -> Result<Option<String>, ApiError>;
}

/// The storage side of leaked organization admin tokens: their authority (the `AdminTokens`
/// Durable Object) and the audit, implemented by `orgs`.
#[allow(async_fn_in_trait)] // single-threaded Workers runtime: no `Send` bound wanted
pub trait TokenRevoker {
    /// Most hashes one [`TokenRevoker::lookup_tokens`] call takes; one call costs one operation.
    const LOOKUP_BATCH: usize;
    /// Operations per token revoked (the authority's revoke + its audit event = 2).
    const REVOKE_OPS: usize;

    /// The admin tokens stored under these hashes, in the same order (`None`: no such token).
    async fn lookup_tokens(
        &self,
        hashes: &[KeyHash],
    ) -> Result<Vec<Option<AdminTokenRecord>>, ApiError>;

    /// Revokes `record` (not revoked when looked up) at `now` with `why.reason`, refused at
    /// once from then on, and appends an `admin_token.revoked` event by `why.actor`. A token
    /// revoked meanwhile is left as it is (no second event). Returns the log line owed if only
    /// the audit append failed.
    async fn revoke_token(
        &self,
        record: &AdminTokenRecord,
        why: &Revocation,
        now: Millis,
    ) -> Result<Option<String>, ApiError>;
}

/// No admin tokens: a report whose `lqta_` tokens are not looked up (the admin route's).
pub struct NoTokens;

impl TokenRevoker for NoTokens {
    const LOOKUP_BATCH: usize = 1;
    const REVOKE_OPS: usize = 0;

    async fn lookup_tokens(
        &self,
        hashes: &[KeyHash],
    ) -> Result<Vec<Option<AdminTokenRecord>>, ApiError> {
        Ok(vec![None; hashes.len()])
    }

    async fn revoke_token(
        &self,
        _: &AdminTokenRecord,
        _: &Revocation,
        _: Millis,
    ) -> Result<Option<String>, ApiError> {
        Ok(None)
    }
}

/// The result of [`process`]: the feedback for every distinct token (when complete), how many
/// keys and admin tokens this call revoked, how many live ones it left for a retry, and log lines.
#[derive(Debug)]
pub struct Processed {
    pub feedback: Vec<Feedback>,
    pub revoked: usize,
    pub pending: usize,
    pub warnings: Vec<String>,
}

impl Processed {
    /// The 200 answer (GitHub's feedback array), or [`LeakError::Incomplete`] when keys are
    /// left to revoke: then no feedback is given, as it would be partial.
    pub fn into_feedback(self) -> Result<Vec<Feedback>, LeakError> {
        match self.pending {
            0 => Ok(self.feedback),
            pending => Err(LeakError::Incomplete {
                revoked: self.revoked,
                pending,
            }),
        }
    }

    /// One line for the operator's log: audit appends that failed, and what was revoked.
    pub fn log_line(&self) -> Option<String> {
        let mut parts = self.warnings.clone();
        if self.revoked > 0 || self.pending > 0 {
            parts.push(format!(
                "leak report: {} keys or admin tokens revoked, {} pending",
                self.revoked, self.pending
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// One match of GitHub's report (fields GitHub may add later are ignored).
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct GitHubMatch {
    token: String,
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    token_type: Option<String>,
    source: Option<String>,
    url: Option<String>,
}

/// The admin route's report.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LeakReport))]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminReport {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::reported_keys))]
    keys: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::source))]
    source: String,
}

/// Parses GitHub's body: a JSON array of `{"token", "type", "url", "source"}` objects (fields
/// GitHub may add later are ignored). Bounded to [`MAX_REPORT_BODY`] and [`MAX_REPORT_ENTRIES`].
pub fn parse_github_report(body: &[u8]) -> Result<Report, LeakError> {
    const SHAPE: &str = r#"expected a JSON array of {"token", "type", "url", "source"} objects"#;
    let matches: Vec<Object<GitHubMatch>> = decode(body, SHAPE)?;
    bound(matches.len())?;
    let mut findings = Findings::default();
    for Object(m) in matches {
        let token_type = m.token_type.unwrap_or_else(|| {
            match TokenFormat::of(&m.token) {
                Some(TokenFormat::AdminToken) => ADMIN_TOKEN_TYPE,
                _ => API_KEY_TYPE,
            }
            .into()
        });
        findings.add(&m.token, token_type, m.source, m.url);
    }
    Ok(findings.into_report(Reporter::GitHub))
}

/// Parses the admin route's body: `{"keys": ["lqt_…", …], "source": "…"}`, no other field.
pub fn parse_admin_report(body: &[u8]) -> Result<Report, LeakError> {
    const SHAPE: &str = r#"expected {"keys": [strings], "source": string} and no other field"#;
    // Field names first: one besides `keys` and `source` is `unknown_field` (not named: it may
    // be a key), whatever the rest holds.
    let names: Option<Object<BTreeMap<String, IgnoredAny>>> = decode(body, SHAPE).ok();
    if names.is_some_and(|Object(fields)| fields.keys().any(|f| f != "keys" && f != "source")) {
        return Err(LeakError::UnknownField);
    }
    let Object(report): Object<AdminReport> = decode(body, SHAPE)?;
    bound(report.keys.len())?;
    let source = report.source.trim();
    let chars = source.chars().count();
    if !(1..=MAX_SOURCE_CHARS).contains(&chars) || source.chars().any(char::is_control) {
        return Err(LeakError::InvalidSource);
    }
    let mut findings = Findings::default();
    for key in &report.keys {
        findings.add(key, API_KEY_TYPE.into(), None, None);
    }
    let source = source.into();
    Ok(findings.into_report(Reporter::Admin { source }))
}

/// Reads a report: its size first, then its syntax (a pass that holds nothing), then its shape.
/// Neither error quotes the input (it holds keys): a syntax error says where it is, a shape
/// error only what was expected. What a report holds before [`bound`] counts its entries is
/// bounded by its 1 MiB: at most ~350,000 short entries, about 10 MB of an isolate's 128 MB.
fn decode<T: DeserializeOwned>(body: &[u8], shape_wanted: &str) -> Result<T, LeakError> {
    if body.len() > MAX_REPORT_BODY {
        return Err(LeakError::BodyTooLarge);
    }
    if let Err(e) = serde_json::from_slice::<IgnoredAny>(body) {
        let (line, column) = (e.line(), e.column());
        return Err(LeakError::InvalidJson(format!(
            "line {line}, column {column}"
        )));
    }
    serde_json::from_slice(body).map_err(|_| shape(shape_wanted))
}

fn shape(wanted: &str) -> LeakError {
    LeakError::InvalidBody(wanted.into())
}

fn bound(entries: usize) -> Result<(), LeakError> {
    match entries {
        n if n > MAX_REPORT_ENTRIES => Err(LeakError::TooManyEntries(n)),
        _ => Ok(()),
    }
}

/// Distinct tokens by hash, in first-reported order (`seen`: hash → index in `list`).
#[derive(Default)]
struct Findings {
    list: Vec<Finding>,
    seen: HashMap<String, usize>,
}

impl Findings {
    fn add(&mut self, token: &str, token_type: String, kind: Option<String>, url: Option<String>) {
        let token_hash = sha256_hex(token);
        if self.seen.contains_key(&token_hash) {
            return;
        }
        self.seen.insert(token_hash.clone(), self.list.len());
        self.list.push(Finding {
            token_hash,
            token_type,
            format: TokenFormat::of(token),
            kind,
            url,
        });
    }

    fn into_report(self, reporter: Reporter) -> Report {
        Report {
            reporter,
            findings: self.list,
        }
    }
}

/// Classifies every distinct token, revokes the keys and admin tokens that still work (within
/// [`OPS_BUDGET`]), and returns GitHub's feedback. `tokens`: where admin tokens are looked up;
/// `None`: `lqta_` tokens are not ours here (`false_positive`, no storage read). Storage
/// failures stop the call with what is done so far durable; sending the report again finishes
/// it (see the module notes).
pub async fn process<R: Revoker, T: TokenRevoker>(
    revoker: &R,
    tokens: Option<&T>,
    report: &Report,
    now: Millis,
) -> Result<Processed, LeakError> {
    let of_format = |format| -> Vec<(usize, KeyHash)> {
        (report.findings.iter().enumerate())
            .filter(|(_, f)| f.format == Some(format))
            .filter_map(|(i, f)| Some((i, KeyHash::from_hex(&f.token_hash)?)))
            .collect()
    };
    // Labels: false positive unless a stored key or admin token has this hash.
    let mut labels = vec![Label::FalsePositive; report.findings.len()];
    let mut spent = 0;
    let mut pending = 0;
    let mut live_tokens = Vec::new();
    if let Some(tokens) = tokens {
        let ours = of_format(TokenFormat::AdminToken);
        let mut records = Vec::with_capacity(ours.len());
        for batch in ours.chunks(T::LOOKUP_BATCH.max(1)) {
            if spent + 1 > OPS_BUDGET {
                break;
            }
            spent += 1;
            let hashes: Vec<KeyHash> = batch.iter().map(|(_, h)| h.clone()).collect();
            let found = tokens.lookup_tokens(&hashes).await?;
            check_count(hashes.len(), found.len())?;
            records.extend(found);
        }
        pending += ours.len() - records.len();
        for ((index, _), record) in ours.iter().zip(records) {
            let Some(record) = record else { continue };
            if record.revoked_at.is_none() {
                if spent + T::REVOKE_OPS > OPS_BUDGET {
                    pending += 1;
                    continue;
                }
                spent += T::REVOKE_OPS;
                let why = revocation(&report.reporter, &report.findings[*index]);
                live_tokens.push((record, why));
            }
            labels[*index] = Label::TruePositive;
        }
    }
    let ours = of_format(TokenFormat::Key);
    let mut records: Vec<Option<KeyRecord>> = Vec::with_capacity(ours.len());
    for batch in ours.chunks(R::LOOKUP_BATCH.max(1)) {
        if spent + 1 > OPS_BUDGET {
            break;
        }
        spent += 1;
        let hashes: Vec<KeyHash> = batch.iter().map(|(_, h)| h.clone()).collect();
        let found = revoker.lookup(&hashes, now).await?;
        check_count(hashes.len(), found.len())?;
        records.extend(found);
    }
    pending += ours.len() - records.len();
    let mut live = Vec::new();
    let per_call = R::REVOKE_BATCH.max(1);
    for ((index, _), record) in ours.iter().zip(records) {
        let Some(record) = record else { continue };
        if matches!(record.status(now), KeyStatus::Active | KeyStatus::Grace) {
            let cost = usize::from(live.len() % per_call == 0) + R::REVOKE_OPS;
            if spent + cost > OPS_BUDGET {
                pending += 1;
                continue;
            }
            spent += cost;
            live.push((
                record,
                revocation(&report.reporter, &report.findings[*index]),
            ));
        }
        labels[*index] = Label::TruePositive;
    }
    let mut done = Processed {
        feedback: Vec::new(),
        revoked: 0,
        pending,
        warnings: Vec::new(),
    };
    if let Some(tokens) = tokens {
        for (record, why) in &live_tokens {
            done.warnings
                .extend(tokens.revoke_token(record, why, now).await?);
            done.revoked += 1;
        }
    }
    for batch in live.chunks(per_call) {
        done.warnings.extend(revoker.revoke(batch, now).await?);
        done.revoked += batch.len();
    }
    done.feedback = (report.findings.iter().zip(labels))
        .map(|(f, label)| Feedback {
            token_hash: f.token_hash.clone(),
            token_type: f.token_type.clone(),
            label,
        })
        .collect();
    Ok(done)
}

/// A lookup must answer once per hash asked.
fn check_count(asked: usize, answered: usize) -> Result<(), ApiError> {
    match asked == answered {
        true => Ok(()),
        false => Err(ApiError::Internal(format!(
            "lookup of {asked} hashes returned {answered}"
        ))),
    }
}

/// Checks GitHub's signature, then parses and processes the report: a bad or missing signature
/// refuses the request before any storage is touched. Keys go to `revoker`, admin tokens to
/// `tokens`.
pub async fn github_report<R: Revoker, T: TokenRevoker, F: KeysFetcher>(
    revoker: &R,
    tokens: &T,
    github: &GitHubSignatures<'_, F>,
    key_id: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: Millis,
) -> Result<Processed, LeakError> {
    if body.len() > MAX_REPORT_BODY {
        return Err(LeakError::BodyTooLarge);
    }
    github.authenticate(key_id, signature, body, now).await?;
    let report = parse_github_report(body)?;
    process(revoker, Some(tokens), &report, now).await
}

/// The reason and actor recorded for revoking the key behind `finding`.
pub fn revocation(reporter: &Reporter, finding: &Finding) -> Revocation {
    let (actor, reason) = match reporter {
        Reporter::GitHub => {
            let mut reason = String::from("Leaked: found by GitHub secret scanning");
            if let Some(kind) = &finding.kind {
                reason.push_str(&format!(" ({kind})"));
            }
            if let Some(url) = &finding.url {
                reason.push_str(" at ");
                reason.push_str(url);
            }
            ("github-secret-scanning", reason)
        }
        Reporter::Admin { source } => (ADMIN_ACTOR, format!("Leaked: reported by {source}")),
    };
    Revocation {
        actor,
        reason: bounded(&reason, MAX_REASON_BYTES),
    }
}

/// `text` without control characters, cut (with `…`) so that its JSON-escaped form is at most
/// `max` bytes.
fn bounded(text: &str, max: usize) -> String {
    let width = |c: char| match c {
        '"' | '\\' => 2,
        c => c.len_utf8(),
    };
    let clean = text.chars().filter(|c| !c.is_control());
    if clean.clone().map(width).sum::<usize>() <= max {
        return clean.collect();
    }
    let (mut out, mut used) = (String::new(), '…'.len_utf8());
    for c in clean {
        used += width(c);
        if used > max {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ApiKey;
    use crate::record::AuditEvent;
    use crate::repo::Repo;
    use crate::signature::testing::{document, StaticKeys, TestSigner};
    use crate::signature::KeyCache;
    use crate::store::{MemoryStore, Op};
    use pollster::block_on;
    use std::cell::{Cell, RefCell};

    const NOW: Millis = 1_795_689_954_123;
    /// Keys only: `lqta_` tokens are not looked up.
    const NO_TOKENS: Option<&NoTokens> = None;
    const DAY: Millis = 86_400_000;

    /// [`Revoker`] over the in-memory store, the way the admin layer does it over KV: a lookup
    /// reads `key/{hash}` (counted as one bulk operation per call), a revoke writes each record
    /// back and appends an audit event (one call counted like a change-log commit). Reasons are
    /// kept to check them.
    struct RepoRevoker<'s> {
        store: &'s MemoryStore,
        calls: Cell<usize>,
        lookup_calls: Cell<usize>,
        reasons: RefCell<Vec<(String, Revocation)>>,
    }

    impl<'s> RepoRevoker<'s> {
        fn new(store: &'s MemoryStore) -> Self {
            Self {
                store,
                calls: Cell::new(0),
                lookup_calls: Cell::new(0),
                reasons: RefCell::new(Vec::new()),
            }
        }

        /// Operations as Cloudflare would count them: bulk lookups, revoke calls, writes.
        fn kv_ops(&self) -> usize {
            let log = self.store.log();
            let puts = log.iter().filter(|(op, _)| *op == Op::Put).count();
            self.calls.get() + puts
        }
    }

    impl Revoker for RepoRevoker<'_> {
        const LOOKUP_BATCH: usize = 100;
        const REVOKE_BATCH: usize = 100;
        const REVOKE_OPS: usize = 2;

        async fn lookup(
            &self,
            hashes: &[KeyHash],
            _now: Millis,
        ) -> Result<Vec<Option<KeyRecord>>, ApiError> {
            assert!(hashes.len() <= Self::LOOKUP_BATCH);
            self.calls.set(self.calls.get() + 1);
            self.lookup_calls.set(self.lookup_calls.get() + 1);
            let repo = Repo::new(self.store);
            let mut out = Vec::new();
            for hash in hashes {
                out.push(repo.key_by_hash(hash).await?);
            }
            Ok(out)
        }

        async fn revoke(
            &self,
            batch: &[(KeyRecord, Revocation)],
            now: Millis,
        ) -> Result<Option<String>, ApiError> {
            assert!(!batch.is_empty() && batch.len() <= Self::REVOKE_BATCH);
            self.calls.set(self.calls.get() + 1);
            let repo = Repo::new(self.store);
            let mut warnings = Vec::new();
            for (record, revocation) in batch {
                let mut record = record.clone();
                assert!(record.revoke(now), "only live keys are sent");
                repo.put_key(&record).await?;
                // Through JSON, so that fields the record gains later keep their defaults.
                let event: AuditEvent = crate::json_object::from_str(
                    &serde_json::json!({
                        "id": format!("evt_{}", record.id),
                        "actor": revocation.actor,
                        "action": "key.revoked",
                        "project_id": record.project_id,
                        "key_id": record.id,
                        "reason": revocation.reason,
                        "at": now,
                    })
                    .to_string(),
                )
                .unwrap();
                let appended = repo.append_audit(&event).await;
                warnings.extend(appended.err().map(|e| e.to_string()));
                let reason = (record.id.clone(), revocation.clone());
                self.reasons.borrow_mut().push(reason);
            }
            Ok((!warnings.is_empty()).then(|| warnings.join("; ")))
        }
    }

    fn key(n: u32) -> ApiKey {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        bytes[31] = 0x5a;
        ApiKey::from_secret_bytes(&bytes)
    }

    /// Stores key `n` in `project`, shaped by `mutate`.
    fn seed(store: &MemoryStore, n: u32, project: &str, mutate: impl FnOnce(&mut KeyRecord)) {
        let mut rec = KeyRecord::new(
            format!("key_{n}"),
            &key(n),
            "ci".into(),
            project.into(),
            0,
            None,
        );
        mutate(&mut rec);
        block_on(Repo::new(store).put_key(&rec)).unwrap();
    }

    fn record(store: &MemoryStore, n: u32) -> KeyRecord {
        block_on(Repo::new(store).key_by_hash(&key(n).hash()))
            .unwrap()
            .unwrap()
    }

    fn github_body(tokens: &[&str]) -> Vec<u8> {
        let entries: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| serde_json::json!({
                "token": t, "type": "lumiqtrace_api_key",
                "url": format!("https://github.com/octo/app/blob/abc/config{i}.env"), "source": "content",
            }))
            .collect();
        serde_json::to_vec(&entries).unwrap()
    }

    fn run(store: &MemoryStore, body: &[u8]) -> Result<Processed, LeakError> {
        let report = parse_github_report(body)?;
        block_on(process(&RepoRevoker::new(store), NO_TOKENS, &report, NOW))
    }

    fn labels(done: &Processed) -> Vec<Label> {
        done.feedback.iter().map(|f| f.label).collect()
    }

    #[test]
    fn live_keys_are_revoked_and_labelled_true_positive() {
        let store = MemoryStore::new();
        seed(&store, 1, "web-app", |_| {});
        seed(&store, 2, "web-app", |r| {
            r.grace_expires_at = Some(NOW + DAY)
        });
        let revoker = RepoRevoker::new(&store);
        let body = github_body(&[key(1).expose(), key(2).expose()]);
        let report = parse_github_report(&body).unwrap();
        let done = block_on(process(&revoker, NO_TOKENS, &report, NOW)).unwrap();
        assert_eq!(labels(&done), [Label::TruePositive, Label::TruePositive]);
        assert_eq!(done.revoked, 2);
        for n in [1, 2] {
            assert_eq!(record(&store, n).revoked_at, Some(NOW));
            assert_eq!(record(&store, n).status(NOW + 1), KeyStatus::Revoked);
        }
        let audit = block_on(Repo::new(&store).list_audit(Some("web-app"))).unwrap();
        assert_eq!(audit.len(), 2);
        assert!(audit.iter().all(|e| e.actor == "github-secret-scanning"));
        let reasons = revoker.reasons.borrow();
        assert_eq!(
            reasons[0].1.reason,
            "Leaked: found by GitHub secret scanning (content) at https://github.com/octo/app/blob/abc/config0.env"
        );
    }

    #[test]
    fn feedback_carries_sha256_and_type_never_the_token() {
        let store = MemoryStore::new();
        seed(&store, 1, "web-app", |_| {});
        let done = run(&store, &github_body(&[key(1).expose(), "ghp_notours"])).unwrap();
        let json = serde_json::to_string(&done.into_feedback().unwrap()).unwrap();
        // python3 -c "import hashlib; print(hashlib.sha256(b'ghp_notours').hexdigest())"
        let expected = serde_json::json!([
            { "token_hash": key(1).hash().as_str(), "token_type": "lumiqtrace_api_key", "label": "true_positive" },
            { "token_hash": "3d624436ce40e8f22c544ef3d5299043b97c3db9262ab3b338942315922ed2ba", "token_type": "lumiqtrace_api_key", "label": "false_positive" },
        ]);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            expected
        );
        assert!(!json.contains(key(1).expose()) && !json.contains("ghp_notours"));
    }

    #[test]
    fn malformed_and_unknown_tokens_are_false_positives_and_malformed_cost_no_read() {
        let store = MemoryStore::new();
        let unknown = key(99);
        let upper = key(1).expose().to_uppercase();
        let done = run(&store, &github_body(&["lqt_123", &upper, unknown.expose()])).unwrap();
        assert_eq!(labels(&done), [Label::FalsePositive; 3]);
        let reads: Vec<_> = store
            .log()
            .into_iter()
            .filter(|(op, _)| *op == Op::Get)
            .collect();
        assert_eq!(reads.len(), 1, "only the well-formed token is looked up");
        assert!(store.dump().is_empty(), "nothing written");
    }

    #[test]
    fn revoked_and_expired_keys_are_true_positives_left_unchanged() {
        let store = MemoryStore::new();
        seed(&store, 1, "web-app", |r| r.revoked_at = Some(5));
        seed(&store, 2, "web-app", |r| r.grace_expires_at = Some(NOW - 1));
        let before = store.dump();
        let done = run(&store, &github_body(&[key(1).expose(), key(2).expose()])).unwrap();
        assert_eq!(labels(&done), [Label::TruePositive; 2]);
        assert_eq!(done.revoked, 0);
        assert_eq!(store.dump(), before);
        assert_eq!(record(&store, 2).status(NOW), KeyStatus::Expired);
    }

    #[test]
    fn other_keys_and_projects_are_untouched() {
        let store = MemoryStore::new();
        seed(&store, 1, "web-app", |_| {});
        seed(&store, 2, "mobile", |_| {});
        seed(&store, 3, "web-app", |_| {});
        run(&store, &github_body(&[key(1).expose()])).unwrap();
        assert_eq!(record(&store, 2).status(NOW + 1), KeyStatus::Active);
        assert_eq!(record(&store, 3).status(NOW + 1), KeyStatus::Active);
        let mobile_audit = block_on(Repo::new(&store).list_audit(Some("mobile"))).unwrap();
        assert!(mobile_audit.is_empty());
    }

    #[test]
    fn the_same_report_twice_changes_nothing_the_second_time() {
        let store = MemoryStore::new();
        seed(&store, 1, "web-app", |_| {});
        let body = github_body(&[key(1).expose(), key(7).expose(), "nope"]);
        let first = run(&store, &body).unwrap();
        let after_first = store.dump();
        let puts_before = store.log().iter().filter(|(op, _)| *op == Op::Put).count();
        let second = run(&store, &body).unwrap();
        assert_eq!(second.revoked, 0);
        assert_eq!(first.feedback, second.feedback);
        assert_eq!(store.dump(), after_first);
        let puts_after = store.log().iter().filter(|(op, _)| *op == Op::Put).count();
        assert_eq!(puts_before, puts_after);
    }

    #[test]
    fn a_token_reported_in_many_places_is_looked_up_and_revoked_once() {
        let store = MemoryStore::new();
        seed(&store, 1, "web-app", |_| {});
        let revoker = RepoRevoker::new(&store);
        let k = key(1);
        let report =
            parse_github_report(&github_body(&[k.expose(), k.expose(), k.expose()])).unwrap();
        assert_eq!(report.findings.len(), 1);
        let done = block_on(process(&revoker, NO_TOKENS, &report, NOW)).unwrap();
        assert_eq!(done.feedback.len(), 1);
        assert_eq!(done.revoked, 1);
        let gets = store.log().iter().filter(|(op, _)| *op == Op::Get).count();
        assert_eq!(gets, 1);
        // The reason names the first place, as a report naming it once would.
        assert_eq!(
            revoker.reasons.borrow()[0].1.reason,
            "Leaked: found by GitHub secret scanning (content) at https://github.com/octo/app/blob/abc/config0.env"
        );
    }

    #[test]
    fn a_thousand_live_keys_finish_within_the_budget_in_three_requests() {
        let store = MemoryStore::new();
        for n in 0..1000 {
            seed(&store, n, "web-app", |_| {});
        }
        let tokens: Vec<String> = (0..1000).map(|n| key(n).expose().to_owned()).collect();
        let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let report = parse_github_report(&github_body(&refs)).unwrap();
        let mut attempts = 0;
        let feedback = loop {
            attempts += 1;
            let revoker = RepoRevoker::new(&store);
            let ops_before = revoker.kv_ops();
            let done = block_on(process(&revoker, NO_TOKENS, &report, NOW + attempts)).unwrap();
            let ops = revoker.kv_ops() - ops_before;
            assert!(
                ops <= OPS_BUDGET,
                "attempt {attempts} used {ops} operations"
            );
            assert!(ops <= KV_OPS_PER_INVOCATION);
            match done.into_feedback() {
                Ok(feedback) => break feedback,
                Err(LeakError::Incomplete { revoked, pending }) => {
                    assert!(revoked > 0 && pending > 0);
                }
                Err(e) => panic!("{e}"),
            }
            assert!(attempts < 5);
        };
        assert_eq!(attempts, 3);
        assert_eq!(feedback.len(), 1000);
        assert!(feedback.iter().all(|f| f.label == Label::TruePositive));
        assert!((0..1000).all(|n| record(&store, n).revoked_at.is_some()));
    }

    #[test]
    fn a_thousand_unknown_tokens_cost_ten_bulk_lookups() {
        let store = MemoryStore::new();
        let tokens: Vec<String> = (0..1000).map(|n| key(n).expose().to_owned()).collect();
        let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let revoker = RepoRevoker::new(&store);
        let report = parse_github_report(&github_body(&refs)).unwrap();
        let done = block_on(process(&revoker, NO_TOKENS, &report, NOW)).unwrap();
        assert_eq!(revoker.lookup_calls.get(), 10);
        assert_eq!(done.into_feedback().unwrap().len(), 1000);
    }

    #[test]
    fn storage_failure_mid_report_is_an_error_and_a_retry_finishes() {
        let store = MemoryStore::new();
        seed(&store, 1, "web-app", |_| {});
        seed(&store, 2, "web-app", |_| {});
        let body = github_body(&[key(1).expose(), key(2).expose()]);
        store.fail_from(2, Some(Op::Put)); // the second key's record write fails
        let err = run(&store, &body).unwrap_err();
        let api = match err {
            LeakError::Store(e) => e,
            other => panic!("{other}"),
        };
        assert_eq!(api.status(), 503);
        assert_eq!(record(&store, 1).revoked_at, Some(NOW));
        store.heal();
        let done = run(&store, &body).unwrap();
        assert_eq!(done.revoked, 1);
        assert!(record(&store, 2).revoked_at.is_some());
        assert_eq!(
            record(&store, 1).revoked_at,
            Some(NOW),
            "first revocation kept"
        );
    }

    #[test]
    fn oversized_reports_are_refused_before_any_storage_access() {
        let store = MemoryStore::new();
        let body = github_body(&vec!["x"; MAX_REPORT_ENTRIES + 1]);
        assert!(matches!(
            run(&store, &body),
            Err(LeakError::TooManyEntries(1001))
        ));
        let big = vec![b' '; MAX_REPORT_BODY + 1];
        assert!(matches!(run(&store, &big), Err(LeakError::BodyTooLarge)));
        let admin = serde_json::json!({ "keys": vec!["x"; 1001], "source": "scanner" });
        let admin = serde_json::to_vec(&admin).unwrap();
        assert!(matches!(
            parse_admin_report(&admin),
            Err(LeakError::TooManyEntries(1001))
        ));
        assert!(store.log().is_empty());
        assert!(parse_github_report(&github_body(&vec!["x"; MAX_REPORT_ENTRIES])).is_ok());
    }

    #[test]
    fn a_report_of_350_000_empty_objects_is_refused_before_it_is_all_held() {
        let mut body = b"[".to_vec();
        while body.len() < MAX_REPORT_BODY - 4 {
            body.extend_from_slice(b"{},");
        }
        body.extend_from_slice(b"{}]");
        for parse in [parse_github_report, parse_admin_report] {
            match parse(&body) {
                // Refused at the first entry, which is not a match (GitHub) or not a report.
                Err(LeakError::InvalidBody(why)) => assert!(why.starts_with("expected"), "{why}"),
                other => panic!("{:?}", other.map(|r| r.findings.len())),
            }
        }
    }

    #[test]
    fn bad_json_is_refused_without_quoting_the_body() {
        let k = key(1);
        let secret = k.expose();
        let cases = [
            format!("\"{secret}\""),
            format!("[{{\"token\": 1, \"type\": \"{secret}\"}}]"),
            format!("[\"{secret}\""),
            format!("{{\"{secret}\": 1}}"),
        ];
        for case in &cases {
            let err = parse_github_report(case.as_bytes()).unwrap_err();
            assert!(
                matches!(err, LeakError::InvalidBody(_) | LeakError::InvalidJson(_)),
                "{case}"
            );
            assert!(!err.to_string().contains(secret), "{err}");
            let err = parse_admin_report(case.as_bytes()).unwrap_err();
            assert!(!err.to_string().contains(secret), "{err}");
        }
        let unknown_field = format!(r#"{{"keys": [], "source": "s", "{secret}": 1}}"#);
        let err = parse_admin_report(unknown_field.as_bytes()).unwrap_err();
        assert!(matches!(err, LeakError::UnknownField), "{err:?}");
        let api = ApiError::from(err);
        assert_eq!((api.status(), api.code()), (400, "unknown_field"));
        assert!(!api.body().contains(secret));
    }

    #[test]
    fn admin_report_needs_a_printable_source_and_labels_like_github() {
        let store = MemoryStore::new();
        seed(&store, 1, "web-app", |_| {});
        for bad in ["", "   ", "a\nb", &"s".repeat(MAX_SOURCE_CHARS + 1)] {
            let body = serde_json::json!({ "keys": [], "source": bad }).to_string();
            assert!(matches!(
                parse_admin_report(body.as_bytes()),
                Err(LeakError::InvalidSource)
            ));
        }
        let body = serde_json::json!({
            "keys": [key(1).expose(), "lqt_short"], "source": " incident INC-42 ",
        });
        let report = parse_admin_report(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            report.reporter,
            Reporter::Admin {
                source: "incident INC-42".into()
            }
        );
        let revoker = RepoRevoker::new(&store);
        let done = block_on(process(&revoker, NO_TOKENS, &report, NOW)).unwrap();
        assert_eq!(labels(&done), [Label::TruePositive, Label::FalsePositive]);
        assert!(done.feedback.iter().all(|f| f.token_type == API_KEY_TYPE));
        let reasons = revoker.reasons.borrow();
        assert_eq!(reasons[0].1.actor, "admin");
        assert_eq!(reasons[0].1.reason, "Leaked: reported by incident INC-42");
    }

    #[test]
    fn matches_and_reports_written_as_arrays_are_refused() {
        let k = key(1);
        let github = format!(
            r#"[["{}", "lumiqtrace_api_key", "https://x", "content"]]"#,
            k.expose()
        );
        assert!(matches!(
            parse_github_report(github.as_bytes()),
            Err(LeakError::InvalidBody(_))
        ));
        let admin = format!(r#"[["{}"], "incident"]"#, k.expose());
        assert!(matches!(
            parse_admin_report(admin.as_bytes()),
            Err(LeakError::InvalidBody(_))
        ));
        let admin = format!(
            r#"{{"keys": ["{}"], "source": "s", "source": "t"}}"#,
            k.expose()
        );
        assert!(matches!(
            parse_admin_report(admin.as_bytes()),
            Err(LeakError::InvalidBody(_))
        ));
    }

    #[test]
    fn a_deeply_nested_report_is_refused_without_a_stack_overflow() {
        let nested = |depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let deep = nested(100_000);
        let extra = format!(r#"[{{"token": "t", "extra": {deep}}}]"#);
        let admin = format!(r#"{{"keys": {deep}, "source": "s"}}"#);
        let cases = [
            parse_github_report(deep.as_bytes()),
            parse_admin_report(admin.as_bytes()),
        ];
        for result in cases {
            let err = result.err().map(|e| e.to_string());
            assert!(
                err.is_some_and(|e| e.contains("schema")),
                "refused as no report"
            );
        }
        // A field GitHub adds is skipped, however deep, without recursion.
        let report = parse_github_report(extra.as_bytes()).unwrap();
        assert_eq!(report.findings.len(), 1);
    }

    #[test]
    fn a_syntax_error_is_invalid_json_even_after_a_shape_error() {
        for body in [&b"[1, "[..], b"{\"keys\": 7, }", b""] {
            assert!(matches!(
                parse_github_report(body),
                Err(LeakError::InvalidJson(_))
            ));
            assert!(matches!(
                parse_admin_report(body),
                Err(LeakError::InvalidJson(_))
            ));
        }
    }

    #[test]
    fn github_fields_may_be_missing_null_or_extra() {
        let body = br#"[{"token": "t", "url": null, "new_field": {"x": 1}}]"#;
        let report = parse_github_report(body).unwrap();
        assert_eq!(report.findings[0].token_type, API_KEY_TYPE);
        assert_eq!(parse_github_report(b"[]").unwrap().findings, []);
        let missing_token = br#"[{"type": "x"}]"#;
        assert!(matches!(
            parse_github_report(missing_token),
            Err(LeakError::InvalidBody(_))
        ));
    }

    #[test]
    fn reasons_are_bounded_for_kv_metadata_and_free_of_control_characters() {
        let finding = |url: String| Finding {
            token_hash: "0".repeat(64),
            token_type: "t".into(),
            format: Some(TokenFormat::Key),
            kind: Some("content".into()),
            url: Some(url),
        };
        let long = format!("https://github.com/o/r/blob/x/{}\"\n\\é", "a".repeat(400));
        let reason = revocation(&Reporter::GitHub, &finding(long)).reason;
        assert!(serde_json::to_string(&reason).unwrap().len() - 2 <= MAX_REASON_BYTES);
        assert!(reason.ends_with('…'));
        let quoted = "\"\\".repeat(200);
        let reason = revocation(&Reporter::GitHub, &finding(quoted)).reason;
        assert!(serde_json::to_string(&reason).unwrap().len() - 2 <= MAX_REASON_BYTES);
        let short = revocation(&Reporter::GitHub, &finding("https://x/\u{7}y".into())).reason;
        assert_eq!(
            short,
            "Leaked: found by GitHub secret scanning (content) at https://x/y"
        );
    }

    struct Signed {
        signer: TestSigner,
        fetcher: StaticKeys,
        cache: RefCell<KeyCache>,
    }

    impl Signed {
        fn new() -> Self {
            let signer = TestSigner::new(4, "gh-key-1");
            let fetcher = StaticKeys::new(document(&[&signer]));
            let cache = RefCell::new(KeyCache::new());
            Self {
                signer,
                fetcher,
                cache,
            }
        }

        fn send(
            &self,
            store: &MemoryStore,
            key_id: &str,
            signature: &str,
            body: &[u8],
        ) -> Result<Processed, LeakError> {
            let github = GitHubSignatures {
                fetcher: &self.fetcher,
                cache: &self.cache,
            };
            let revoker = RepoRevoker::new(store);
            block_on(github_report(
                &revoker,
                &NoTokens,
                &github,
                Some(key_id),
                Some(signature),
                body,
                NOW,
            ))
        }
    }

    #[test]
    fn a_signed_github_report_revokes_and_a_forged_one_touches_nothing() {
        let store = MemoryStore::new();
        seed(&store, 1, "web-app", |_| {});
        let s = Signed::new();
        let body = github_body(&[key(1).expose()]);
        let sig = s.signer.sign(&body);
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let impostor = TestSigner::new(8, "gh-key-1");
        let forged = [
            ("gh-key-1", impostor.sign(&body), body.clone()),
            ("gh-key-1", sig.clone(), tampered),
            ("gh-key-9", sig.clone(), body.clone()),
            ("gh-key-1", "not base64!".into(), body.clone()),
            ("", sig.clone(), body.clone()),
        ];
        let log_before = store.log().len();
        for (id, signature, body) in &forged {
            let err = s.send(&store, id, signature, body).unwrap_err();
            assert!(matches!(err, LeakError::Signature(_)), "{id}: {err}");
        }
        assert_eq!(
            store.log().len(),
            log_before,
            "nothing looked up, nothing written"
        );
        let done = s.send(&store, "gh-key-1", &sig, &body).unwrap();
        assert_eq!(labels(&done), [Label::TruePositive]);
        assert_eq!(record(&store, 1).revoked_at, Some(NOW));
    }

    #[test]
    fn an_oversized_github_body_is_refused_before_its_signature_is_checked() {
        let store = MemoryStore::new();
        let s = Signed::new();
        let body = vec![b' '; MAX_REPORT_BODY + 1];
        let err = s
            .send(&store, "gh-key-1", &s.signer.sign(&body), &body)
            .unwrap_err();
        assert!(matches!(err, LeakError::BodyTooLarge));
        assert_eq!(s.fetcher.fetches.get(), 0);
    }
}
