//! The HTTP contract without platform types: routing, admin authentication, request decoding
//! and JSON replies (serde_json). The worker shell turns the runtime's request into an
//! [`HttpRequest`], calls [`handle`] (or [`github_secret_scanning`]), and turns the [`Outcome`]
//! back into a response (or a forward to the origin).

use crate::admin::{self, Done, Issued, KeyFilter, KeyOptions, Keys};
use crate::changes::{self, ChangeFeed};
use crate::error::ApiError;
use crate::forward::{self, CanonicalPath};
use crate::json_object;
use crate::key::{is_well_formed, ApiKey, OrgAdminToken};
use crate::leaks::{self, Processed};
use crate::orgs::{
    self, Actor, IssuedToken, Scope, ScopedRevoker, TokenAuthority, TokenLeaks, Tokens,
};
use crate::record::{
    is_valid_project_id, normalize_environment, AdminTokenView, Grant, KeyRecord, KeyView, Quiet,
};
use crate::repo::Repo;
use crate::signature::{GitHubSignatures, KeysFetcher};
use crate::store::Store;
use crate::time::{parse_rfc3339, Millis};
use crate::usage::{Tally, UsageSource, UsageView};
use crate::verify;
use crate::verify::Refused;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::RefCell;

/// A configured `ADMIN_TOKEN` shorter than this (32 characters, 128 bits as hex) turns every
/// admin call away (see [`admin_auth`]); `openssl rand -hex 32` makes a 64-character one.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;
/// Admin request bodies larger than this are refused (400 `body_too_large`).
pub const MAX_ADMIN_BODY: usize = 16 * 1024;
/// Default rotation grace: 24 hours.
pub const DEFAULT_GRACE_SECONDS: u64 = 24 * 60 * 60;

const ADMIN_PREFIX: &str = "/admin/v1/";
/// GitHub's secret-scanning partner endpoint (see [`github_secret_scanning`]).
pub const GITHUB_ROUTE: &str = "/v1/secret-scanning/github";
const REPORT_LEAKED: &str = "/admin/v1/keys/report-leaked";
const VERIFY: &str = "/v1/auth/verify";

/// Deployment settings, read from the Worker's vars and secrets by the shell.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ADMIN_TOKEN`, as its digest; `None`, empty or shorter than [`MIN_ADMIN_TOKEN_CHARS`]
    /// turns every admin route away.
    pub admin_token: Option<AdminToken>,
    /// `ROTATION_GRACE_SECONDS`, in milliseconds.
    pub grace_ms: Millis,
    /// `CHANGES_REFRESH_SECONDS`, in milliseconds: how stale an isolate's overlay may get.
    pub refresh_ms: Millis,
    /// `USAGE_QUIET_SECONDS`, in milliseconds: how long a key in grace must see no use before
    /// it is called safe to revoke ([`crate::usage::DEFAULT_QUIET_MS`]).
    pub quiet_ms: Millis,
}

/// Key usage around a request: this isolate's [`Tally`] (the verify path counts into it, in
/// memory) and where admin reads find the reported usage.
pub struct Usage<'a, U> {
    pub tally: &'a RefCell<Tally>,
    pub source: &'a U,
}

/// The configured `ADMIN_TOKEN` as [`admin_auth`] checks it, without the token itself: the
/// shell hashes the secret once per isolate when it reads it, so the plaintext is not kept and
/// each admin call hashes only the token it presents.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// SHA-256 of the token's UTF-8 bytes, exactly as the secret holds them.
    pub sha256: [u8; 32],
    /// The token's length in characters (Unicode scalar values), for [`MIN_ADMIN_TOKEN_CHARS`];
    /// 0 counts as no token.
    pub chars: usize,
}

/// Debug output never shows the digest (it would let anyone who reads logs test guesses offline).
impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminToken({} chars)", self.chars)
    }
}

/// The parts of a request the contract looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// `X-LumiqTrace-Project-Id`: checked against an authorized key's project.
    pub project_header: Option<&'a str>,
    /// Read only for admin writes and leak reports (see [`body_limit`]); ingest bodies stream
    /// to the origin.
    pub body: &'a [u8],
    /// `Github-Public-Key-Identifier` and `Github-Public-Key-Signature` (GitHub's route only).
    pub github_key_id: Option<&'a str>,
    pub github_signature: Option<&'a str>,
}

/// A JSON answer. `log` carries what the operator should see (5xx causes, audit failures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub www_authenticate: Option<&'static str>,
    /// The `Allow` header of a 405.
    pub allow: Option<&'static str>,
    /// The `Retry-After` header of a 429, in seconds.
    pub retry_after: Option<u32>,
    pub log: Option<String>,
}

/// `{"<field>": [...]}` as a one-entry map (serde's `collect_map`: a `BTreeMap` of one entry
/// would bring a sort and a tree builder into the wasm for each item type).
struct Listing<'a, T>(&'static str, &'a [T]);

impl<T: Serialize> Serialize for Listing<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map([(self.0, self.1)])
    }
}

/// What the worker does next.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    /// An authorized ingest call: forward it to the origin (or answer [`accepted`]); `log` is
    /// for the operator (an unreachable change log). `target` is the path and query the project
    /// check read: the forward sends exactly it.
    Forward {
        grant: Grant,
        target: CanonicalPath,
        log: Option<String>,
    },
}

impl Reply {
    /// `value` as the JSON body. serde_json refuses only values JSON cannot hold (none of ours):
    /// should it, the answer is a 500, not a panic.
    fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(body) => Self::body(status, body),
            Err(e) => Self::error(&ApiError::Internal(format!("JSON answer: {e}"))),
        }
    }

    fn body(status: u16, body: String) -> Self {
        Self {
            status,
            body,
            www_authenticate: None,
            allow: None,
            retry_after: None,
            log: None,
        }
    }

    /// `{"<field>": [...]}`: a list under its name.
    fn listing<T: Serialize>(status: u16, field: &'static str, items: &[T]) -> Self {
        Self::json(status, &Listing(field, items))
    }

    pub fn error(err: &ApiError) -> Self {
        Self {
            status: err.status(),
            body: err.body(),
            www_authenticate: err.www_authenticate(),
            allow: err.allow(),
            retry_after: err.retry_after(),
            log: err.log_detail(),
        }
    }

    fn done<T: Serialize>(status: u16, done: Done<T>) -> Self {
        Self {
            log: done.warning,
            ..Self::json(status, &done.value)
        }
    }
}

/// `{"accepted": true, "project_id", "key_id"}`: the answer to an authorized ingest call when
/// no `INGEST_ORIGIN` is configured (202).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct Accepted<'a> {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::always_true))]
    accepted: bool,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    project_id: &'a str,
    key_id: &'a str,
}

/// The answer to an authorized ingest call when no `INGEST_ORIGIN` is configured (202).
pub fn accepted(grant: &Grant) -> Reply {
    let body = Accepted {
        accepted: true,
        project_id: &grant.project_id,
        key_id: &grant.key_id,
    };
    Reply::json(202, &body)
}

/// Whether `path` is an admin API route (each needs the admin token, see [`admin_auth`]).
pub fn is_admin_route(path: &str) -> bool {
    path.starts_with(ADMIN_PREFIX)
}

/// How many bytes of body the shell must read before calling [`handle`] (or
/// [`github_secret_scanning`]); `None`: it reads none. Leak reports take up to 1 MiB. The shell
/// reads it only once the caller is authenticated (the admin token, or GitHub's two headers
/// and a known key id), refuses a declared `Content-Length` over it before keeping any, and
/// stops reading a body of unknown length as soon as it crosses it.
pub fn body_limit(method: &str, path: &str) -> Option<usize> {
    match (method, path) {
        ("POST", GITHUB_ROUTE | REPORT_LEAKED) => Some(leaks::MAX_REPORT_BODY),
        ("POST" | "PATCH", p) if p.starts_with(ADMIN_PREFIX) => Some(MAX_ADMIN_BODY),
        _ => None,
    }
}

/// The refusal for a body over [`body_limit`]: 413 for leak reports (nothing revoked), 400
/// `body_too_large` for other admin writes.
pub fn body_too_large(path: &str, limit: usize) -> ApiError {
    match path {
        GITHUB_ROUTE | REPORT_LEAKED => leaks::LeakError::BodyTooLarge.into(),
        _ => ApiError::BodyTooLarge(limit),
    }
}

/// `POST /v1/secret-scanning/github`: GitHub's signed report. The signature is checked before
/// anything is parsed or looked up; the answer is GitHub's feedback array. Two token types:
/// API keys (`keys`) and organization admin tokens (`tokens`), each revoked the same way.
pub async fn github_secret_scanning<S, F, K, T>(
    keys: &Keys<'_, S, F>,
    tokens: &Tokens<'_, T>,
    github: &GitHubSignatures<'_, K>,
    req: &HttpRequest<'_>,
    now: Millis,
) -> Reply
where
    S: Store,
    F: ChangeFeed,
    K: KeysFetcher,
    T: TokenAuthority,
{
    if req.method != "POST" {
        return Reply::error(&ApiError::MethodNotAllowed("POST"));
    }
    let (key_id, signature) = (req.github_key_id, req.github_signature);
    let admin_tokens = TokenLeaks {
        repo: &keys.repo,
        tokens,
    };
    let body = req.body;
    let done = leaks::github_report(keys, &admin_tokens, github, key_id, signature, body, now);
    leak_reply(done.await)
}

/// 200 with the feedback array; a refusal; or 503 `report_incomplete` (send it again).
fn leak_reply(done: Result<Processed, leaks::LeakError>) -> Reply {
    let done = match done {
        Ok(done) => done,
        Err(e) => return Reply::error(&e.into()),
    };
    let log = done.log_line();
    let reply = match done.into_feedback() {
        Ok(feedback) => Reply::json(200, &feedback),
        Err(e) => Reply::error(&e.into()),
    };
    Reply {
        log: reply.log.or(log),
        ..reply
    }
}

/// Routes and answers one request at instant `now`. `keys` carries KV, the change log and this
/// isolate's overlay of recent changes; `usage` the isolate's tally of verifications and the
/// reported usage admin views show; `tokens` the organization admin tokens. An admin route
/// signs its caller in ([`sign_in`]) and acts as that [`Actor`], inside its [`Scope`].
pub async fn handle<S: Store, F: ChangeFeed, U: UsageSource, T: TokenAuthority>(
    keys: &Keys<'_, S, F>,
    usage: &Usage<'_, U>,
    config: &Config,
    tokens: &Tokens<'_, T>,
    req: &HttpRequest<'_>,
    now: Millis,
) -> Outcome {
    let routed = HttpRequest {
        method: routed_method(req.method),
        ..*req
    };
    let req = &routed;
    let result = if let Some(rest) = req.path.strip_prefix(ADMIN_PREFIX) {
        match sign_in(config, tokens, req.authorization, now).await {
            Ok(actor) => {
                let keys = Keys {
                    repo: Repo::new(keys.repo.store()),
                    feed: keys.feed,
                    overlay: keys.overlay,
                    actor: &actor,
                };
                admin_route(&keys, usage, config, tokens, req, rest, now).await
            }
            Err(e) => Err(e),
        }
    } else if let Some(key) = ingest_key(req.method, req.path, req.authorization) {
        // The one spelling of the path and query, decided before any lookup.
        let key = key.and_then(|key| Ok((key, CanonicalPath::parse(req.path, req.query)?)));
        let (verified, log) = match key {
            Ok((key, target)) => {
                let (granted, log) = verify_key(keys, config, req, &key, &target, now).await;
                count_use(usage.tally, &granted, now);
                let granted = granted.map_err(|refused| refused.error);
                (granted.map(|grant| (grant, target)), log)
            }
            Err(e) => (Err(e), None),
        };
        let reply = match verified {
            Ok((grant, target)) if req.path != VERIFY => {
                return Outcome::Forward { grant, target, log }
            }
            Ok((grant, _)) => Reply::json(200, &grant),
            Err(e) => Reply::error(&e),
        };
        return Outcome::Reply(Reply {
            log: reply.log.or(log),
            ..reply
        });
    } else {
        Err(ApiError::NotFound)
    };
    Outcome::Reply(result.unwrap_or_else(|e| Reply::error(&e)))
}

/// The method a request is routed by. `HEAD` is answered wherever `GET` is, as `GET` is: the
/// same status and header fields (RFC 9110 §9.3.2), here and in [`refused_at_once`]. The runtime
/// sends no body (nor a `Content-Length`) for a `HEAD`, so the answer is built as for `GET`
/// (workerd, checked on the wire by tests/e2e/authorizer.test.mjs). An authorized `HEAD` to
/// another ingest route is forwarded to the origin as `HEAD`.
fn routed_method(method: &str) -> &str {
    match method {
        "HEAD" => "GET",
        other => other,
    }
}

/// The first step of an ingest call (a `/v1/` route other than GitHub's, which the shell routes
/// to [`github_secret_scanning`]): the verify route's method, then the API key, from the request
/// line and `Authorization` alone. `None`: not an ingest route. A refusal here needs no I/O, no body
/// and no clock; see [`refused_at_once`].
fn ingest_key(
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> Option<Result<ApiKey, ApiError>> {
    if !path.starts_with("/v1/") || path == GITHUB_ROUTE {
        return None;
    }
    if path == VERIFY && routed_method(method) != "GET" {
        return Some(Err(ApiError::MethodNotAllowed("GET, HEAD")));
    }
    if path != VERIFY && !forward::is_forwarded_method(method) {
        return Some(Err(ApiError::MethodNotAllowed(forward::FORWARDED_METHODS)));
    }
    Some(verify::bearer_key(authorization))
}

/// The refusal [`handle`] gives a request from its method, path and `Authorization` alone (a
/// missing or malformed key, the verify route asked with a method other than `GET` or `HEAD`),
/// if it gives one: such a refusal reads no storage, no body and no clock.
pub fn refused_at_once(method: &str, path: &str, authorization: Option<&str>) -> Option<ApiError> {
    ingest_key(method, path, authorization)?.err()
}

/// Awaits a refresh of the overlay only if it is not live ([`changes::before_verify`]; the
/// shell keeps it live in the background with [`changes::begin_background`]), then looks the
/// (well-formed) key up. The second value is the log line of an unreachable change log.
async fn verify_key<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    config: &Config,
    req: &HttpRequest<'_>,
    key: &ApiKey,
    target: &CanonicalPath,
    now: Millis,
) -> (Result<Grant, Refused>, Option<String>) {
    let log = changes::before_verify(keys.overlay, keys.feed, now, config.refresh_ms).await;
    let store = keys.repo.store();
    let granted = match verify::authenticate_known(store, keys.overlay, key, now).await {
        Ok(grant) => match verify::check_project(&grant, target, req.project_header) {
            Ok(()) => Ok(grant),
            Err(error) => Err(Refused {
                error,
                key: Some((grant.project_id, grant.key_id)),
            }),
        },
        Err(e) => Err(e),
    };
    (granted, log)
}

/// Counts a verification of a known key in this isolate's tally (memory only; the shell
/// reports it later). Unknown and malformed keys name no key and are not counted.
fn count_use(tally: &RefCell<Tally>, decided: &Result<Grant, Refused>, now: Millis) {
    let (project, key, outcome) = match decided {
        Ok(grant) => (&grant.project_id, &grant.key_id, Ok(())),
        Err(Refused {
            error,
            key: Some((project, key)),
        }) => (project, key, Err(error.code())),
        Err(_) => return,
    };
    tally.borrow_mut().record(project, key, outcome, now);
}

/// Fills in each view's `last_used_at` and `safe_to_revoke` from the reported usage: one read
/// per project listed. Usage that cannot be read leaves them `null` and `false` (never "safe"
/// on missing facts); the log line says so.
async fn with_usage<U: UsageSource>(
    usage: &Usage<'_, U>,
    config: &Config,
    listed: &mut [(KeyRecord, KeyView)],
    now: Millis,
) -> Option<String> {
    let mut projects: Vec<&str> = listed.iter().map(|(r, _)| r.project_id.as_str()).collect();
    projects.sort_unstable();
    projects.dedup();
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for project in projects {
        match usage.source.project_usage(project, now).await {
            Ok(keys) => found.push((project.to_owned(), keys)),
            Err(e) => failures.push(format!("usage of project {project} unavailable: {e}")),
        }
    }
    let quiet = Quiet {
        quiet_ms: config.quiet_ms,
        grace_ms: config.grace_ms,
    };
    for (record, view) in listed.iter_mut() {
        let Some((_, keys)) = found.iter().find(|(p, _)| *p == record.project_id) else {
            continue;
        };
        let last_used = keys.get(&record.id).and_then(|u| u.last_used_at);
        view.usage(record, last_used, quiet, now);
    }
    (!failures.is_empty()).then(|| failures.join("; "))
}

async fn admin_route<S: Store, F: ChangeFeed, U: UsageSource, T: TokenAuthority>(
    keys: &Keys<'_, S, F>,
    usage: &Usage<'_, U>,
    config: &Config,
    tokens: &Tokens<'_, T>,
    req: &HttpRequest<'_>,
    rest: &str,
    now: Millis,
) -> Result<Reply, ApiError> {
    let repo = &keys.repo;
    let scope = Scope(keys.actor);
    let operator = *keys.actor == Actor::Operator;
    let segments: Vec<&str> = rest.split('/').collect();
    match (req.method, segments.as_slice()) {
        ("POST", ["orgs"]) if operator => {
            let NewOrg { id, name } = decode(req, NewOrg::FIELDS)?;
            let done = orgs::create_org(repo, keys.actor, &id, &name, now).await?;
            Ok(Reply::done(201, done))
        }
        ("GET", ["orgs"]) => {
            let listed = orgs::list_orgs(repo, scope, now).await?;
            Ok(Reply::listing(200, "orgs", &listed))
        }
        ("GET", ["orgs", id]) => {
            let org = orgs::get_org(repo, scope, id, now).await?;
            Ok(Reply::json(200, &org.view()))
        }
        ("POST", ["orgs", id, "admin-tokens"]) if operator => {
            let NewAdminToken { name } = decode(req, NewAdminToken::FIELDS)?;
            let made = orgs::create_admin_token(repo, keys.actor, tokens.authority, id, &name, now);
            let done = made.await?;
            let IssuedToken { token, admin_token } = &done.value;
            let token = token.expose();
            let reply = Reply::json(201, &IssuedAdminToken { token, admin_token });
            Ok(Reply {
                log: done.warning,
                ..reply
            })
        }
        ("GET", ["orgs", id, "admin-tokens"]) if operator => {
            let listed = orgs::list_admin_tokens(repo, tokens.authority, id, now).await?;
            Ok(Reply::listing(200, "admin_tokens", &listed))
        }
        ("POST", ["admin-tokens", id, "revoke"]) if operator => {
            decode_empty(req)?;
            let revoked = orgs::revoke_admin_token(repo, keys.actor, tokens, id, now);
            Ok(Reply::done(200, revoked.await?))
        }
        ("POST", ["projects"]) => {
            let NewProject {
                id,
                name,
                org_id,
                rotation_period_days,
            } = decode(req, NewProject::FIELDS)?;
            if !is_valid_project_id(&id) {
                return Err(ApiError::InvalidProjectId);
            }
            let org = orgs::project_org(repo, scope, org_id.as_deref(), now).await?;
            let (actor, days) = (keys.actor, rotation_period_days);
            let done = admin::create_project(repo, actor, &org, &id, &name, days, now).await?;
            Ok(Reply::done(201, done))
        }
        ("PATCH", ["projects", project_id]) => {
            let settings: ProjectSettings = decode(req, ProjectSettings::FIELDS)?;
            let days = settings.rotation_period_days;
            scope.project(repo, project_id).await?;
            let done = admin::set_rotation_period(repo, keys.actor, project_id, days, now).await?;
            Ok(Reply::done(200, done))
        }
        ("GET", ["projects"]) => {
            let org = id_filter(req.query, "org_id", ApiError::InvalidOrgId)?;
            let visible = scope.project_ids(repo, org.as_deref()).await?;
            let mut projects = admin::list_projects(repo).await?;
            projects.retain(|p| visible.contains(&p.id));
            Ok(Reply::listing(200, "projects", &projects))
        }
        ("POST", ["projects", project_id, "keys"]) => {
            let new: NewKey = decode(req, NewKey::FIELDS)?;
            scope.project(repo, project_id).await?;
            let options = KeyOptions {
                expires_at: expires_at(new.expires_at.as_deref())?,
                environment: match new.environment.as_deref() {
                    Some(raw) => {
                        Some(normalize_environment(raw).ok_or(ApiError::InvalidEnvironment)?)
                    }
                    None => None,
                },
            };
            let done = admin::create_key(keys, project_id, &new.name, options, now).await?;
            Ok(issued_reply(done))
        }
        ("GET", ["keys"]) => {
            let filter = key_filter(req.query)?;
            let visible = match &filter.project_id {
                Some(p) => [scope.project(repo, p).await?.id].into(),
                None => scope.project_ids(repo, None).await?,
            };
            let mut listed = admin::list_keys(keys, &filter, now).await?;
            if keys.actor.org().is_some() {
                listed.retain(|(record, _)| visible.contains(&record.project_id));
            }
            let log = with_usage(usage, config, &mut listed, now).await;
            let views: Vec<KeyView> = listed.into_iter().map(|(_, view)| view).collect();
            Ok(Reply {
                log,
                ..Reply::listing(200, "keys", &views)
            })
        }
        ("POST", ["keys", "report-leaked"]) => {
            require_json(req)?;
            let report = leaks::parse_admin_report(req.body)?;
            let projects = match keys.actor.org() {
                Some(_) => scope.project_ids(repo, None).await?,
                None => Default::default(),
            };
            let revoker = ScopedRevoker {
                keys,
                scope,
                projects,
            };
            // Keys only: admin tokens leaked are GitHub's to report (or the operator's to revoke).
            let no_tokens = None::<&leaks::NoTokens>;
            Ok(leak_reply(
                leaks::process(&revoker, no_tokens, &report, now).await,
            ))
        }
        ("GET", ["keys", id]) => {
            let mut one = [scope.key(keys, id, now).await?];
            let log = with_usage(usage, config, &mut one, now).await;
            let [(_, view)] = one;
            Ok(Reply {
                log,
                ..Reply::json(200, &view)
            })
        }
        ("GET", ["keys", id, "usage"]) => {
            let (record, _) = scope.key(keys, id, now).await?;
            let project = usage.source.project_usage(&record.project_id, now).await;
            let project = project.map_err(|e| ApiError::Unavailable(e.into()))?;
            Ok(Reply::json(
                200,
                &UsageView::new(&record.id, project.get(&record.id), now),
            ))
        }
        ("POST", ["keys", id, "rotate"]) => {
            let input = match req.body.iter().all(u8::is_ascii_whitespace) {
                true => RotateInput::default(),
                false => decode(req, RotateInput::FIELDS)?,
            };
            let expires_at = expires_at(input.expires_at.as_deref())?;
            scope.key(keys, id, now).await?;
            let done = admin::rotate_key(keys, id, config.grace_ms, expires_at, now).await?;
            Ok(issued_reply(done))
        }
        ("POST", ["keys", id, "revoke"]) => {
            decode_empty(req)?;
            scope.key(keys, id, now).await?;
            Ok(Reply::done(200, admin::revoke_key(keys, id, now).await?))
        }
        ("GET", ["audit"]) => {
            let project = project_filter(req.query)?;
            let org = id_filter(req.query, "org_id", ApiError::InvalidOrgId)?;
            if let Some(p) = &project {
                let found = scope.project(repo, p).await?;
                if org.as_ref().is_some_and(|o| *o != found.org_id) {
                    return Err(ApiError::ProjectNotFound);
                }
            }
            let mut events = admin::audit_log(repo, project.as_deref()).await?;
            if keys.actor.org().is_some() || org.is_some() {
                let visible = scope.project_ids(repo, org.as_deref()).await?;
                // A project's event by its project's organization; an organization's by its own.
                events.retain(|e| match (&e.project_id, &e.org_id) {
                    (Some(p), _) => visible.contains(p),
                    (None, Some(o)) => scope.sees_org(o) && org.as_ref().is_none_or(|f| f == o),
                    (None, None) => false,
                });
            }
            Ok(Reply::listing(200, "events", &events))
        }
        // Organizations and admin tokens are the operator's: to anyone else they do not exist.
        (_, ["orgs"] | ["orgs", _, "admin-tokens"] | ["admin-tokens", _, "revoke"])
            if !operator =>
        {
            Err(ApiError::NotFound)
        }
        (_, ["projects"] | ["orgs"]) => Err(ApiError::MethodNotAllowed("GET, HEAD, POST")),
        (_, ["orgs", _, "admin-tokens"]) => Err(ApiError::MethodNotAllowed("GET, HEAD, POST")),
        (_, ["projects", _]) => Err(ApiError::MethodNotAllowed("PATCH")),
        (_, ["projects", _, "keys"] | ["keys", _, "rotate" | "revoke"])
        | (_, ["admin-tokens", _, "revoke"]) => Err(ApiError::MethodNotAllowed("POST")),
        (_, ["keys"] | ["keys", _] | ["keys", _, "usage"] | ["audit"] | ["orgs", _]) => {
            Err(ApiError::MethodNotAllowed("GET, HEAD"))
        }
        _ => Err(ApiError::NotFound),
    }
}

/// The answer to creating an admin token: `{"token", "admin_token"}`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct IssuedAdminToken<'a> {
    /// The full admin token: shown in this response only
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::full_admin_token))]
    token: &'a str,
    admin_token: &'a AdminTokenView,
}

/// Signs in an admin caller: an `lqta_` token is an organization admin token, checked with the
/// authority (or this isolate's recent answer, see [`orgs::authenticate`]); anything else must be
/// the deployment's `ADMIN_TOKEN` ([`admin_auth`]).
pub async fn sign_in<T: TokenAuthority>(
    config: &Config,
    tokens: &Tokens<'_, T>,
    authorization: Option<&str>,
    now: Millis,
) -> Result<Actor, ApiError> {
    let presented = authorization
        .and_then(bearer_token)
        .and_then(OrgAdminToken::parse);
    match presented {
        Some(token) => {
            let ttl = config.refresh_ms;
            orgs::authenticate(tokens.authority, tokens.cache, &token, now, ttl).await
        }
        None => admin_auth(config, authorization).map(|()| Actor::Operator),
    }
}

/// The answer to create: `{"key", "api_key"}`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct IssuedKey<'a> {
    /// The full key: shown in this response only
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::full_key))]
    key: &'a str,
    api_key: &'a KeyView,
}

/// The answer to rotate: `{"key", "api_key", "previous"}`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RotatedKey<'a> {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::full_key))]
    key: &'a str,
    api_key: &'a KeyView,
    previous: &'a KeyView,
}

/// The one place a plaintext key leaves the service: the answer to create and rotate.
fn issued_reply(done: Done<Issued>) -> Reply {
    let Issued {
        key,
        api_key,
        previous,
    } = &done.value;
    let key = key.expose();
    let reply = match previous {
        None => Reply::json(201, &IssuedKey { key, api_key }),
        Some(previous) => Reply::json(
            201,
            &RotatedKey {
                key,
                api_key,
                previous,
            },
        ),
    };
    Reply {
        log: done.warning,
        ..reply
    }
}

/// Admin routes need `Bearer <ADMIN_TOKEN>`, compared in constant time; never an API key.
/// No `Authorization` at all is [`ApiError::AdminMissingToken`] (its challenge names no error).
/// A deployment whose token is unset or shorter than [`MIN_ADMIN_TOKEN_CHARS`] refuses every
/// call: a caller without that token gets what any wrong token gets ([`ApiError::AdminDisabled`]
/// puts the reason in the log only); one that sends exactly the short token is told it is too
/// short and how to make another ([`ApiError::AdminTokenTooShort`]).
pub fn admin_auth(config: &Config, authorization: Option<&str>) -> Result<(), ApiError> {
    let Some(authorization) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
        return Err(ApiError::AdminMissingToken);
    };
    let expected = config.admin_token.as_ref().filter(|t| t.chars > 0);
    let Some(expected) = expected else {
        return Err(ApiError::AdminDisabled(
            "ADMIN_TOKEN is not set; make one with `openssl rand -hex 32`",
        ));
    };
    let presented = bearer_token(authorization);
    let matches = presented.is_some_and(|p| !is_well_formed(p) && digest_matches(p, expected));
    let long_enough = expected.chars >= MIN_ADMIN_TOKEN_CHARS;
    match (matches, long_enough) {
        (true, true) => Ok(()),
        (true, false) => Err(ApiError::AdminTokenTooShort),
        (false, true) => Err(ApiError::AdminUnauthorized),
        (false, false) => Err(ApiError::AdminDisabled(
            "ADMIN_TOKEN is shorter than 32 characters; make one with `openssl rand -hex 32`",
        )),
    }
}

/// The token of an admin `Authorization: Bearer <token>` (scheme in any case, surrounding spaces
/// trimmed); `None` for any other value. Both kinds of admin credential are read with it.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Compares the SHA-256 digest of the presented token with the configured one without an early
/// exit: the time taken does not depend on where they differ, nor on the expected token's length.
fn digest_matches(presented: &str, expected: &AdminToken) -> bool {
    let digest = Sha256::digest(presented.as_bytes());
    let diff = digest
        .iter()
        .zip(expected.sha256.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
impl AdminToken {
    /// What the shell makes of the secret `token` (tests only: the shell hashes it itself).
    pub(crate) fn of(token: &str) -> Self {
        Self {
            sha256: Sha256::digest(token.as_bytes()).into(),
            chars: token.chars().count(),
        }
    }
}

fn project_filter(query: Option<&str>) -> Result<Option<String>, ApiError> {
    id_filter(query, "project_id", ApiError::InvalidProjectId)
}

/// The query parameter `name`, an id (of a project or an organization); `invalid` if malformed.
/// The one value both the organization check and the filter use.
fn id_filter(
    query: Option<&str>,
    name: &str,
    invalid: ApiError,
) -> Result<Option<String>, ApiError> {
    match query_param(query, name) {
        None => Ok(None),
        Some(id) if is_valid_project_id(&id) => Ok(Some(id)),
        Some(_) => Err(invalid),
    }
}

/// `GET /admin/v1/keys?project_id=…&environment=…&rotation_due=true|false`.
fn key_filter(query: Option<&str>) -> Result<KeyFilter, ApiError> {
    let environment = match query_param(query, "environment") {
        Some(raw) => Some(normalize_environment(&raw).ok_or(ApiError::InvalidEnvironment)?),
        None => None,
    };
    let rotation_due = match query_param(query, "rotation_due").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ApiError::InvalidQuery("rotation_due must be true or false")),
    };
    Ok(KeyFilter {
        project_id: project_filter(query)?,
        environment,
        rotation_due,
    })
}

/// The first value of query parameter `name`, read as a browser's `URLSearchParams` reads it
/// (`application/x-www-form-urlencoded`: `+` is a space, names and values percent-decoded; a
/// name without `=` has the empty value). Bytes that are not UTF-8 once decoded become U+FFFD,
/// which no value we read takes: the caller's check refuses it (400), rather than the filter
/// being dropped.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes());
    pairs
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.into_owned())
}

/// An `expires_at` as sent: RFC 3339, or absent.
fn expires_at(raw: Option<&str>) -> Result<Option<Millis>, ApiError> {
    raw.map(|text| parse_rfc3339(text).ok_or(ApiError::InvalidExpiresAt))
        .transpose()
}

/// Admin writes are sent as `application/json`.
fn require_json(req: &HttpRequest<'_>) -> Result<(), ApiError> {
    let media_type = req.content_type.unwrap_or_default().split(';').next();
    match media_type.is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")) {
        true => Ok(()),
        false => Err(ApiError::UnsupportedContentType),
    }
}

/// `POST /admin/v1/projects`. `org_id`: the organization (the operator's default: `default`;
/// an organization admin's: its own, the only one it may name).
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct NewProject {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    id: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::new_name))]
    name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    org_id: Option<String>,
    /// Active keys older than this many days are due for rotation (90 is the documented
    /// advice); left out or `null`: no policy
    #[serde(default, deserialize_with = "json_object::whole_u32")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3650))]
    rotation_period_days: Option<u32>,
}

impl NewProject {
    const FIELDS: &'static [&'static str] = &["id", "name", "org_id", "rotation_period_days"];
}

/// `POST /admin/v1/orgs`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrg {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    id: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::new_name))]
    name: String,
}

impl NewOrg {
    const FIELDS: &'static [&'static str] = &["id", "name"];
}

/// `PATCH /admin/v1/projects/{id}`: the project's settings as a whole (a field left out is
/// `null`).
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct ProjectSettings {
    /// Active keys older than this many days are due for rotation; `null` (or left out)
    /// removes the policy
    #[serde(default, deserialize_with = "json_object::whole_u32")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3650))]
    rotation_period_days: Option<u32>,
}

impl ProjectSettings {
    const FIELDS: &'static [&'static str] = &["rotation_period_days"];
}

/// `POST /admin/v1/projects/{id}/keys` and `POST /admin/v1/orgs/{id}/admin-tokens`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::new_name))]
    name: String,
    /// When the key stops working (401 `key_expired`), RFC 3339; a past instant is accepted
    /// and the key is refused from the start
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    expires_at: Option<String>,
    /// `development`, `staging`, `production` or a custom label: trimmed, lowercased, then
    /// 1 to 32 of a-z, 0-9 and `-`, not starting with `-`
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::environment_input))]
    environment: Option<String>,
}

impl NewKey {
    const FIELDS: &'static [&'static str] = &["name", "expires_at", "environment"];
}

/// `POST /admin/v1/orgs/{id}/admin-tokens`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAdminToken {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::new_name))]
    name: String,
}

impl NewAdminToken {
    const FIELDS: &'static [&'static str] = &["name"];
}

/// `POST /admin/v1/keys/{id}/rotate`: nothing, `{}`, or the new key's `expires_at`.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateInput {
    /// When the new key stops working, RFC 3339 (the old key's expiry is not carried over)
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    expires_at: Option<String>,
}

impl RotateInput {
    const FIELDS: &'static [&'static str] = &["expires_at"];
}

/// Revoke takes no input: `{}` (or an empty body).
#[derive(Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(max_properties = 0)
)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoInput {}

/// Decodes a JSON body: at most [`MAX_ADMIN_BODY`] bytes, `application/json`, then in this
/// order, so that each refusal names the first thing wrong: valid JSON (else `invalid_json`);
/// a JSON object (an array is refused: serde's derive alone would read a struct from the array
/// of its fields) with no field outside `fields` (else `unknown_field`, even when a known one
/// is also missing or wrong); then `T` from it (else `invalid_body`: a missing field, a wrong
/// type, a field given twice).
fn decode<T: DeserializeOwned>(req: &HttpRequest<'_>, fields: &[&str]) -> Result<T, ApiError> {
    if req.body.len() > MAX_ADMIN_BODY {
        return Err(ApiError::BodyTooLarge(MAX_ADMIN_BODY));
    }
    require_json(req)?;
    let value: serde_json::Value =
        serde_json::from_slice(req.body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::InvalidBody("expected a JSON object".into()));
    };
    if let Some(name) = object.keys().find(|name| !fields.contains(&name.as_str())) {
        return Err(ApiError::UnknownField(format!("unknown field `{name}`")));
    }
    // From the text again, not the `Value`: serde_json's map keeps only the last of a field
    // given twice, the derive refuses it.
    json_object::from_slice(req.body).map_err(|e| ApiError::InvalidBody(e.to_string()))
}

/// Revoke takes no input: an empty body, or `{}` as JSON.
fn decode_empty(req: &HttpRequest<'_>) -> Result<(), ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    decode::<NoInput>(req, &[]).map(|NoInput {}| ())
}

#[cfg(test)]
mod tests;
