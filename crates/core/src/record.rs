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
        }
    }

    /// Status at `now`. Revocation wins over grace; a grace ends at its instant, exclusive.
    pub fn status(&self, now: Millis) -> KeyStatus {
        match (self.revoked_at, self.grace_expires_at) {
            (Some(_), _) => KeyStatus::Revoked,
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

    /// The admin view at `now`: never the key, never the hash.
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
        }
    }
}

/// The authorize decision: active → allowed; in grace before its end → allowed;
/// grace over → expired; revoked → revoked.
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
}

impl Project {
    pub fn view(&self) -> ProjectView {
        ProjectView {
            id: self.id.clone(),
            name: self.name.clone(),
            created_at: rfc3339(self.created_at),
            org_id: self.org_id.clone(),
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
}
