//! Stored records (keys, projects, audit events), the rotate/revoke/grace state machine, the
//! authorize decision, and the JSON views the API shows. Plain data: no storage, no clock.
//!
//! JSON: field names and order are the stored format (KV values and metadata, the change log)
//! and the API's. Stored records read absent optional fields as `None` and ignore unknown ones
//! (an older worker reads a newer record); read them with [`crate::json_object`], which refuses
//! anything but a JSON object.

use crate::key::{ApiKey, KeyHash};
use crate::time::{rfc3339, Millis};
use serde::{Deserialize, Serialize};

/// A key as stored, under its hash. Never holds the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub hash: KeyHash,
    pub name: String,
    pub project_id: String,
    pub prefix: String,
    pub created_at: Millis,
    /// Set when the key is rotated: it keeps working until this instant.
    pub grace_expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// Why it was revoked, when known (a leak report names where the key was found). At most
    /// `leaks::MAX_REASON_BYTES` once JSON-escaped, so the record still fits KV metadata.
    /// Left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    pub rotated_from: Option<String>,
    pub rotated_to: Option<String>,
    /// Set at creation (or by the rotation that issued it): the key stops working at this
    /// instant, exclusive, as a rotated key does at the end of its grace. Left out of the JSON
    /// when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    /// A label for where the key is used ([`normalize_environment`]); a rotation's successor
    /// carries it over. Left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// What a key is at a given instant; in JSON `"active"`, `"grace"`, `"expired"`, `"revoked"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Grace,
    Expired,
    Revoked,
}

/// Why a known key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Revoked,
    Expired,
}

/// The key cannot be rotated in its current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRotatable(pub KeyStatus);

/// What an authorized request learns about its key (the body of `GET /v1/auth/verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    pub project_id: String,
    pub key_id: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name))]
    pub key_name: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::granted_status))]
    pub status: KeyStatus,
    #[cfg_attr(feature = "openapi", schema(required, format = DateTime))]
    pub grace_expires_at: Option<String>,
}

impl KeyRecord {
    /// A new active key record; `rotated_from` names the key it replaces, if any.
    pub fn new(
        id: String,
        key: &ApiKey,
        name: String,
        project_id: String,
        now: Millis,
        rotated_from: Option<String>,
    ) -> Self {
        Self {
            id,
            hash: key.hash(),
            name,
            project_id,
            prefix: key.display_prefix(),
            created_at: now,
            grace_expires_at: None,
            revoked_at: None,
            revoked_reason: None,
            rotated_from,
            rotated_to: None,
            expires_at: None,
            environment: None,
        }
    }

    /// Status at `now`. Revocation wins over everything, then an `expires_at` that has passed
    /// (expired, as a grace that has ended), then grace; both ends are exclusive.
    pub fn status(&self, now: Millis) -> KeyStatus {
        match (self.revoked_at, self.grace_expires_at) {
            (Some(_), _) => KeyStatus::Revoked,
            _ if self.expires_at.is_some_and(|end| now >= end) => KeyStatus::Expired,
            (None, Some(end)) if now < end => KeyStatus::Grace,
            (None, Some(_)) => KeyStatus::Expired,
            (None, None) => KeyStatus::Active,
        }
    }

    /// Starts the grace period of a rotation: only an active key can rotate.
    pub fn start_grace(
        &mut self,
        now: Millis,
        grace_ms: Millis,
        successor_id: &str,
    ) -> Result<(), NotRotatable> {
        match self.status(now) {
            KeyStatus::Active => {
                self.grace_expires_at = Some(now.saturating_add(grace_ms));
                self.rotated_to = Some(successor_id.to_owned());
                Ok(())
            }
            other => Err(NotRotatable(other)),
        }
    }

    /// Revokes at `now`; a key already revoked keeps its first `revoked_at`. Returns whether
    /// anything changed.
    pub fn revoke(&mut self, now: Millis) -> bool {
        if self.revoked_at.is_some() {
            return false;
        }
        self.revoked_at = Some(now);
        true
    }

    /// Takes `other`'s revocation (its instant and reason) if `other` is revoked and this
    /// version is not: two versions of one key, one of them a revocation made while the change
    /// log was unreachable (KV only). Revocation only ever moves a key one way, so the revoked
    /// one wins whichever version is newer. Returns whether anything changed.
    pub fn adopt_revocation(&mut self, other: &KeyRecord) -> bool {
        match other.revoked_at {
            Some(at) if self.revoked_at.is_none() => {
                self.revoked_at = Some(at);
                self.revoked_reason.clone_from(&other.revoked_reason);
                true
            }
            _ => false,
        }
    }

    /// The instant this key stops working unless revoked first: the earlier of its
    /// `expires_at` and the end of its grace; `None`: it has no end.
    pub fn working_until(&self) -> Option<Millis> {
        match (self.expires_at, self.grace_expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When an active key falls due for rotation under a project's `rotation_period_days`:
    /// its creation plus the period. `None` without a period, or for a key that is no longer
    /// active (rotated, expired, revoked: nothing left to rotate).
    pub fn rotation_due_at(&self, period_days: Option<u32>, now: Millis) -> Option<Millis> {
        let period = Millis::from(period_days?).saturating_mul(crate::time::DAY_MS);
        (self.status(now) == KeyStatus::Active).then(|| self.created_at.saturating_add(period))
    }

    /// The admin view at `now`: never the key, never the hash. Rotation policy and usage are
    /// filled in by the caller that knows them ([`KeyView::rotation_policy`],
    /// [`KeyView::usage`]).
    pub fn view(&self, now: Millis) -> KeyView {
        KeyView {
            id: self.id.clone(),
            name: self.name.clone(),
            project_id: self.project_id.clone(),
            prefix: self.prefix.clone(),
            created_at: rfc3339(self.created_at),
            status: self.status(now),
            grace_expires_at: self.grace_expires_at.map(rfc3339),
            revoked_at: self.revoked_at.map(rfc3339),
            revoked_reason: self.revoked_reason.clone(),
            rotated_from: self.rotated_from.clone(),
            rotated_to: self.rotated_to.clone(),
            expires_at: self.expires_at.map(rfc3339),
            environment: self.environment.clone(),
            rotation_due: false,
            rotation_due_at: None,
            last_used_at: None,
            safe_to_revoke: false,
        }
    }
}

/// The authorize decision: active → allowed; in grace before its end → allowed;
/// grace over or `expires_at` passed → expired; revoked → revoked.
pub fn authorize(record: &KeyRecord, now: Millis) -> Result<Grant, Denied> {
    let status = record.status(now);
    match status {
        KeyStatus::Revoked => Err(Denied::Revoked),
        KeyStatus::Expired => Err(Denied::Expired),
        KeyStatus::Active | KeyStatus::Grace => Ok(Grant {
            project_id: record.project_id.clone(),
            key_id: record.id.clone(),
            key_name: record.name.clone(),
            status,
            grace_expires_at: record.grace_expires_at.map(rfc3339),
        }),
    }
}

/// A key as the admin API and the dashboard show it (absent values are `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyView {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    pub project_id: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::key_prefix))]
    pub prefix: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub status: KeyStatus,
    #[cfg_attr(feature = "openapi", schema(required, format = DateTime))]
    pub grace_expires_at: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required, format = DateTime))]
    pub revoked_at: Option<String>,
    /// Shown on the dashboard's revoked row ("Reason: …").
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::revoked_reason))]
    pub revoked_reason: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub rotated_from: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub rotated_to: Option<String>,
    /// When the key stops working (401 `key_expired`), if it was given an expiry.
    #[cfg_attr(feature = "openapi", schema(required, format = DateTime))]
    pub expires_at: Option<String>,
    /// Where the key is used: `development`, `staging`, `production` or a custom label.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::environment))]
    pub environment: Option<String>,
    /// The key is active and older than its project's `rotation_period_days`.
    pub rotation_due: bool,
    /// When the active key falls (or fell) due for rotation; `null` without a rotation period
    /// or once the key is no longer active.
    #[cfg_attr(feature = "openapi", schema(required, format = DateTime))]
    pub rotation_due_at: Option<String>,
    /// The last minute a request presenting this key was granted, as far as usage reports
    /// have arrived (docs/key-lifecycle.md states the bound); `null`: never used, or not yet reported.
    #[cfg_attr(feature = "openapi", schema(required, format = DateTime))]
    pub last_used_at: Option<String>,
    /// The key is in its rotation grace and has seen no traffic for the quiet time
    /// (`USAGE_QUIET_SECONDS`): revoking it now should break nobody.
    pub safe_to_revoke: bool,
}

impl KeyView {
    /// Sets `rotation_due` and `rotation_due_at` from the project's `rotation_period_days`.
    pub fn rotation_policy(&mut self, record: &KeyRecord, period_days: Option<u32>, now: Millis) {
        let due_at = record.rotation_due_at(period_days, now);
        self.rotation_due = due_at.is_some_and(|at| now >= at);
        self.rotation_due_at = due_at.map(rfc3339);
    }

    /// Sets `last_used_at` (Unix ms, minute resolution) and `safe_to_revoke`: a key in grace
    /// that has seen no use for `quiet_ms`, counted from the later of its last use and the
    /// start of its grace (its end minus `grace_ms`), so a key is never called quiet sooner
    /// than `quiet_ms` after its rotation.
    pub fn usage(
        &mut self,
        record: &KeyRecord,
        last_used: Option<Millis>,
        quiet: Quiet,
        now: Millis,
    ) {
        self.last_used_at = last_used.map(rfc3339);
        let grace_start = record
            .grace_expires_at
            .map(|end| end.saturating_sub(quiet.grace_ms));
        let quiet_since = grace_start.map(|start| last_used.map_or(start, |used| used.max(start)));
        self.safe_to_revoke = record.status(now) == KeyStatus::Grace
            && quiet_since.is_some_and(|since| now.saturating_sub(since) >= quiet.quiet_ms);
    }
}

/// What decides `safe_to_revoke`, in milliseconds: the quiet time (`USAGE_QUIET_SECONDS`,
/// default 15 minutes) and the rotation grace (`ROTATION_GRACE_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    pub quiet_ms: Millis,
    pub grace_ms: Millis,
}

/// The organization of every project stored before organizations existed, and of projects the
/// operator creates without naming one. Created on first need (`orgs::ensure_default`).
pub const DEFAULT_ORG: &str = "default";

/// A project, as stored. A project written before organizations existed has no `org_id`: it
/// reads as [`DEFAULT_ORG`] (no migration step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    #[serde(default = "default_org")]
    pub org_id: String,
    /// Keys older than this many days are due for rotation. Left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period_days: Option<u32>,
}

fn default_org() -> String {
    DEFAULT_ORG.to_owned()
}

/// An organization, as stored: the scope above projects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
}

/// An organization as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Organization))]
#[serde(deny_unknown_fields)]
pub struct OrgView {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
}

impl Org {
    pub fn view(&self) -> OrgView {
        OrgView {
            id: self.id.clone(),
            name: self.name.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

/// An organization admin token as stored (in the `AdminTokens` Durable Object), under its
/// SHA-256. Never holds the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminTokenRecord {
    pub id: String,
    pub hash: KeyHash,
    pub name: String,
    pub org_id: String,
    /// `lqta_` + the first 8 hex characters.
    pub prefix: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    /// Why it was revoked, when known (GitHub secret scanning names where it was found), as on
    /// a key. Left out of the JSON when `None`: records stored before it read as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
}

/// An admin token's status: `"active"` or `"revoked"` (revocation is at once and final).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AdminTokenStatus {
    Active,
    Revoked,
}

/// An admin token as the API shows it: never the token, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AdminToken))]
#[serde(deny_unknown_fields)]
pub struct AdminTokenView {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    pub org_id: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::admin_token_prefix))]
    pub prefix: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub status: AdminTokenStatus,
    #[cfg_attr(feature = "openapi", schema(required, format = DateTime))]
    pub revoked_at: Option<String>,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::revoked_reason))]
    pub revoked_reason: Option<String>,
}

impl AdminTokenRecord {
    pub fn status(&self) -> AdminTokenStatus {
        match self.revoked_at {
            Some(_) => AdminTokenStatus::Revoked,
            None => AdminTokenStatus::Active,
        }
    }

    pub fn view(&self) -> AdminTokenView {
        AdminTokenView {
            id: self.id.clone(),
            name: self.name.clone(),
            org_id: self.org_id.clone(),
            prefix: self.prefix.clone(),
            created_at: rfc3339(self.created_at),
            status: self.status(),
            revoked_at: self.revoked_at.map(rfc3339),
            revoked_reason: self.revoked_reason.clone(),
        }
    }
}

/// A project as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Project))]
#[serde(deny_unknown_fields)]
pub struct ProjectView {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    pub org_id: String,
    /// Active keys older than this many days show `rotation_due`; `null`: no policy.
    #[cfg_attr(feature = "openapi", schema(required, minimum = 1, maximum = 3650))]
    pub rotation_period_days: Option<u32>,
}

impl Project {
    pub fn view(&self) -> ProjectView {
        ProjectView {
            id: self.id.clone(),
            name: self.name.clone(),
            created_at: rfc3339(self.created_at),
            org_id: self.org_id.clone(),
            rotation_period_days: self.rotation_period_days,
        }
    }
}

/// An append-only audit entry for a create, rotate or revoke. `actor` is who acted:
/// `operator` (the deployment's `ADMIN_TOKEN`), `admin_token` (an organization admin token,
/// named by `actor_token_id` and `actor_token_name`) or `github-secret-scanning`; events written
/// before organizations existed say `admin` (the operator).
///
/// What it is about: a project and its keys (`project_id`, `key_id`), or an organization and
/// its admin tokens (`org_id`, `admin_token_id`, no `project_id`). Absent fields read as `None`
/// (every event stored before organizations has a `project_id` and none of the others).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub actor: String,
    /// The admin token that acted, when `actor` is `admin_token`. Left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_token_name: Option<String>,
    pub action: String,
    /// `None` for an organization's or an admin token's event. Left out of the JSON then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The organization, for an organization's or an admin token's event. Left out when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The admin token acted on (`admin_token.created`, `admin_token.revoked`). Left out when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_id: Option<String>,
    pub key_id: Option<String>,
    /// Why, for a leak revocation: who reported it and where it was found. Left out of the JSON
    /// when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: Millis,
}

/// An audit entry as the API shows it (absent fields left out, `key_id` always there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuditEvent))]
#[serde(deny_unknown_fields)]
pub struct AuditView {
    pub id: String,
    /// `operator`, `admin_token`, `github-secret-scanning` (or `admin`: the operator, before organizations)
    pub actor: String,
    /// The admin token that acted (with `actor` `admin_token`)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_token_id: Option<String>,
    /// The name of the admin token that acted (with `actor` `admin_token`)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_token_name: Option<String>,
    /// `project.created`, `key.created`, `key.rotated`, `key.revoked`, `org.created`, `admin_token.created`, `admin_token.revoked`
    pub action: String,
    /// The project (every `project.*` and `key.*` event; none for `org.*` and `admin_token.*`)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    pub project_id: Option<String>,
    /// The organization (`org.*` and `admin_token.*` events)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::project_id))]
    pub org_id: Option<String>,
    /// The admin token acted on (`admin_token.*` events)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub key_id: Option<String>,
    /// Why, for a leak revocation: who reported it and where it was found
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub at: String,
}

impl AuditEvent {
    pub fn view(&self) -> AuditView {
        AuditView {
            id: self.id.clone(),
            actor: self.actor.clone(),
            actor_token_id: self.actor_token_id.clone(),
            actor_token_name: self.actor_token_name.clone(),
            action: self.action.clone(),
            project_id: self.project_id.clone(),
            org_id: self.org_id.clone(),
            admin_token_id: self.admin_token_id.clone(),
            key_id: self.key_id.clone(),
            reason: self.reason.clone(),
            at: rfc3339(self.at),
        }
    }
}

/// The longest rotation period a project may set (ten years).
pub const MAX_ROTATION_PERIOD_DAYS: u32 = 3650;
/// An environment label: what [`normalize_environment`] accepts, as a regular expression.
pub const ENVIRONMENT_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,31}$";

/// An environment label (`development`, `staging`, `production`, or a custom one): trimmed
/// and lowercased, then 1 to 32 of `a-z`, `0-9` and `-`, not starting with `-`
/// ([`ENVIRONMENT_PATTERN`]).
pub fn normalize_environment(raw: &str) -> Option<String> {
    let label = raw.trim().to_ascii_lowercase();
    let bytes = label.as_bytes();
    let ok = (1..=32).contains(&bytes.len())
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'));
    ok.then_some(label)
}

/// A project id: what [`is_valid_project_id`] accepts, as a regular expression.
pub const PROJECT_ID_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,62}$";
/// A display name (of a project or a key): at most this many characters, after trimming.
pub const MAX_NAME_CHARS: usize = 64;

/// `^[a-z0-9][a-z0-9-]{0,62}$` ([`PROJECT_ID_PATTERN`])
pub fn is_valid_project_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// A display name: trimmed, then 1 to [`MAX_NAME_CHARS`] characters, none of them control
/// characters.
pub fn normalize_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let count = name.chars().count();
    ((1..=MAX_NAME_CHARS).contains(&count) && !name.chars().any(char::is_control))
        .then(|| name.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::json_object::from_str;

    /// `record`'s fields as a JSON array in declaration order: what serde's derive would also
    /// read as a record.
    pub(crate) fn as_field_array(record: &KeyRecord) -> String {
        serde_json::json!([
            record.id,
            record.hash,
            record.name,
            record.project_id,
            record.prefix,
            record.created_at,
            record.grace_expires_at,
            record.revoked_at,
            record.revoked_reason,
            record.rotated_from,
            record.rotated_to,
        ])
        .to_string()
    }

    const HOUR: Millis = 3_600_000;
    const DAY: Millis = 24 * HOUR;

    fn record(now: Millis) -> KeyRecord {
        KeyRecord::new(
            "key_1".into(),
            &ApiKey::from_secret_bytes(&[7; 32]),
            "production-web".into(),
            "web-app".into(),
            now,
            None,
        )
    }

    #[test]
    fn active_key_is_authorized() {
        let grant = authorize(&record(0), 5).unwrap();
        assert_eq!(grant.status, KeyStatus::Active);
        assert_eq!(grant.project_id, "web-app");
        assert_eq!(grant.key_id, "key_1");
        assert_eq!(grant.grace_expires_at, None);
    }

    #[test]
    fn rotated_key_is_authorized_until_grace_end_then_expired() {
        let mut rec = record(0);
        rec.start_grace(HOUR, DAY, "key_2").unwrap();
        let end = HOUR + DAY;
        let grant = authorize(&rec, end - 1).unwrap();
        assert_eq!(grant.status, KeyStatus::Grace);
        assert_eq!(
            grant.grace_expires_at.as_deref(),
            Some("1970-01-02T01:00:00.000Z")
        );
        assert_eq!(authorize(&rec, end), Err(Denied::Expired));
        assert_eq!(rec.status(end + DAY), KeyStatus::Expired);
        assert_eq!(rec.rotated_to.as_deref(), Some("key_2"));
    }

    #[test]
    fn revoked_key_is_rejected() {
        let mut rec = record(0);
        assert!(rec.revoke(10));
        assert_eq!(authorize(&rec, 10), Err(Denied::Revoked));
        assert_eq!(rec.status(11), KeyStatus::Revoked);
    }

    #[test]
    fn revoking_a_key_in_grace_stops_it_at_once() {
        let mut rec = record(0);
        rec.start_grace(0, DAY, "key_2").unwrap();
        rec.revoke(5);
        assert_eq!(authorize(&rec, 6), Err(Denied::Revoked));
    }

    #[test]
    fn revoking_twice_keeps_the_first_revoked_at() {
        let mut rec = record(0);
        assert!(rec.revoke(10));
        assert!(!rec.revoke(20));
        assert_eq!(rec.revoked_at, Some(10));
    }

    #[test]
    fn only_active_keys_can_rotate() {
        let mut rotating = record(0);
        rotating.start_grace(0, DAY, "key_2").unwrap();
        assert_eq!(
            rotating.clone().start_grace(1, DAY, "key_3"),
            Err(NotRotatable(KeyStatus::Grace))
        );
        assert_eq!(
            rotating.start_grace(DAY, DAY, "key_3"),
            Err(NotRotatable(KeyStatus::Expired))
        );
        let mut revoked = record(0);
        revoked.revoke(1);
        assert_eq!(
            revoked.start_grace(2, DAY, "key_3"),
            Err(NotRotatable(KeyStatus::Revoked))
        );
    }

    #[test]
    fn view_shows_prefix_and_dates_but_never_key_or_hash() {
        let rec = record(1_795_689_954_123);
        let json = serde_json::to_string(&rec.view(1_795_689_954_123)).unwrap();
        assert!(json.contains(r#""prefix":"lqt_07070707""#), "{json}");
        assert!(json.contains(r#""created_at":"2026-11-26T10:45:54.123Z""#));
        assert!(json.contains(r#""status":"active""#));
        assert!(!json.contains(rec.hash.as_str()));
        assert!(!json.contains(&"07".repeat(32)));
    }

    #[test]
    fn record_round_trips_through_json_without_plaintext() {
        let key = ApiKey::from_secret_bytes(&[7; 32]);
        let rec = record(3);
        let json = serde_json::to_string(&rec).unwrap();
        assert!(!json.contains(key.expose()));
        assert_eq!(from_str::<KeyRecord>(&json).unwrap(), rec);
    }

    #[test]
    fn record_with_bad_hash_does_not_decode() {
        let mut value = serde_json::to_value(record(3)).unwrap();
        value["hash"] = "not-a-hash".into();
        let err = from_str::<KeyRecord>(&value.to_string()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("a key hash is 64 lowercase hex characters"),
            "{err}"
        );
    }

    #[test]
    fn stored_json_keeps_its_field_names_order_and_nulls() {
        let mut rec = record(3);
        rec.start_grace(4, 5, "key_2").unwrap();
        let json = serde_json::to_string(&rec).unwrap();
        let expected = format!(
            r#"{{"id":"key_1","hash":"{}","name":"production-web","project_id":"web-app","prefix":"lqt_07070707","created_at":3,"grace_expires_at":9,"revoked_at":null,"rotated_from":null,"rotated_to":"key_2"}}"#,
            rec.hash.as_str()
        );
        assert_eq!(json, expected, "no revoked_reason until there is one");
        rec.revoked_reason = Some("r".into());
        let json = serde_json::to_string(&rec).unwrap();
        assert!(json.contains(r#""revoked_at":null,"revoked_reason":"r","rotated_from""#));
        let event = AuditEvent {
            id: "evt_1".into(),
            actor: "admin".into(),
            actor_token_id: None,
            actor_token_name: None,
            action: "key.created".into(),
            project_id: Some("p".into()),
            org_id: None,
            admin_token_id: None,
            key_id: None,
            reason: None,
            at: 7,
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"id":"evt_1","actor":"admin","action":"key.created","project_id":"p","key_id":null,"at":7}"#
        );
        let org_event = AuditEvent {
            action: "org.created".into(),
            project_id: None,
            org_id: Some("acme".into()),
            ..event
        };
        let json = serde_json::to_string(&org_event).unwrap();
        assert_eq!(
            json,
            r#"{"id":"evt_1","actor":"admin","action":"org.created","org_id":"acme","key_id":null,"at":7}"#
        );
        assert_eq!(from_str::<AuditEvent>(&json).unwrap(), org_event);
    }

    #[test]
    fn stored_records_read_older_and_newer_versions_but_only_objects() {
        let rec = record(3);
        let mut value = serde_json::to_value(&rec).unwrap();
        let fields = value.as_object_mut().unwrap();
        for optional in [
            "grace_expires_at",
            "revoked_at",
            "rotated_from",
            "rotated_to",
        ] {
            fields.remove(optional);
        }
        fields.insert("added_later".into(), serde_json::json!({ "x": [1] }));
        assert_eq!(from_str::<KeyRecord>(&value.to_string()).unwrap(), rec);
        let as_array = as_field_array(&rec);
        assert_eq!(serde_json::from_str::<KeyRecord>(&as_array).unwrap(), rec);
        let err = from_str::<KeyRecord>(&as_array).unwrap_err();
        assert!(err.to_string().contains("expected a JSON object"), "{err}");
        let negative = serde_json::to_string(&rec)
            .unwrap()
            .replace(r#""created_at":3"#, r#""created_at":-3"#);
        assert!(from_str::<KeyRecord>(&negative).is_err());
        let twice = serde_json::to_string(&rec)
            .unwrap()
            .replace(r#""name":"#, r#""name":"a","name":"#);
        assert!(from_str::<KeyRecord>(&twice).is_err());
    }

    #[test]
    fn project_ids_follow_the_pattern() {
        for ok in ["web-app", "a", "0", &"a".repeat(63), "a-"] {
            assert!(is_valid_project_id(ok), "{ok}");
        }
        for bad in ["", "-a", "Web", "a_b", "a b", &"a".repeat(64), "é"] {
            assert!(!is_valid_project_id(bad), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            normalize_name("  production-web \n").as_deref(),
            Some("production-web")
        );
        assert_eq!(
            normalize_name(&"é".repeat(64)).map(|n| n.chars().count()),
            Some(64)
        );
        assert_eq!(normalize_name(&"x".repeat(65)), None);
        assert_eq!(normalize_name("   "), None);
        assert_eq!(normalize_name("a\u{0007}b"), None);
    }

    #[test]
    fn expiry_stops_a_key_at_its_instant_and_revocation_still_wins() {
        let mut rec = record(0);
        rec.expires_at = Some(DAY);
        assert_eq!(
            authorize(&rec, DAY - 1).map(|g| g.status),
            Ok(KeyStatus::Active)
        );
        assert_eq!(authorize(&rec, DAY), Err(Denied::Expired));
        rec.start_grace(HOUR, 2 * DAY, "key_2").unwrap();
        assert_eq!(rec.status(DAY - 1), KeyStatus::Grace);
        assert_eq!(
            rec.status(DAY),
            KeyStatus::Expired,
            "expiry before grace's end"
        );
        assert_eq!(rec.working_until(), Some(DAY));
        rec.revoke(5);
        assert_eq!(authorize(&rec, 6), Err(Denied::Revoked));
    }

    #[test]
    fn new_fields_stay_out_of_stored_json_until_set() {
        let mut rec = record(3);
        let before = serde_json::to_string(&rec).unwrap();
        assert!(!before.contains(r#""expires_at""#) && !before.contains("environment"));
        rec.expires_at = Some(9);
        rec.environment = Some("staging".into());
        let json = serde_json::to_string(&rec).unwrap();
        assert!(json.ends_with(r#""rotated_to":null,"expires_at":9,"environment":"staging"}"#));
        assert_eq!(from_str::<KeyRecord>(&json).unwrap(), rec);
    }

    #[test]
    fn environments_are_lowercased_and_bounded() {
        assert_eq!(
            normalize_environment(" Staging ").as_deref(),
            Some("staging")
        );
        assert_eq!(normalize_environment("eu-1").as_deref(), Some("eu-1"));
        for bad in ["", "-x", "a_b", "a b", "é", &"x".repeat(33)] {
            assert_eq!(normalize_environment(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn safe_to_revoke_needs_grace_and_the_quiet_time_since_the_later_of_use_and_rotation() {
        const MIN: Millis = 60_000;
        let quiet = Quiet {
            quiet_ms: 15 * MIN,
            grace_ms: DAY,
        };
        let mut rec = record(0);
        let mut view = rec.view(HOUR);
        view.usage(&rec, Some(0), quiet, HOUR);
        assert!(
            !view.safe_to_revoke,
            "an active key is never called safe to revoke"
        );
        rec.start_grace(HOUR, DAY, "key_2").unwrap();
        let mut at = |used: Option<Millis>, now: Millis| {
            view.usage(&rec, used, quiet, now);
            (view.safe_to_revoke, view.last_used_at.clone())
        };
        // Last used before the rotation: quiet counts from the rotation.
        assert!(!at(Some(0), HOUR + 15 * MIN - 1).0);
        assert_eq!(at(Some(0), HOUR + 15 * MIN), (true, Some(rfc3339(0))));
        // Still used during grace: quiet counts from the last use.
        assert!(!at(Some(HOUR + 10 * MIN), HOUR + 24 * MIN).0);
        assert!(at(Some(HOUR + 10 * MIN), HOUR + 25 * MIN).0);
        assert_eq!(at(None, HOUR + 15 * MIN), (true, None));
        assert!(!at(None, HOUR + DAY).0, "grace over: expired, not in grace");
    }
}
