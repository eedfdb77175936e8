//! The KV layout: which names hold which records, and their JSON encoding.
//!
//! | name                                | value                         | metadata          |
//! |-------------------------------------|-------------------------------|-------------------|
//! | `key/{sha256 hex}`                  | [`KeyRecord`] (the verify path reads only this) | same JSON, when it fits |
//! | `id/{key id}`                       | the key's SHA-256 hex         | none              |
//! | `org/{org id}`                      | [`Org`]                       | same JSON         |
//! | `project/{project id}`              | [`Project`] (no `org_id`: `default`) | same JSON  |
//! | `audit/{project id}/{ms:013}-{id}`  | [`AuditEvent`] of a project or its keys | same JSON |
//! | `audit/_org/{org id}/{ms:013}-{id}` | [`AuditEvent`] of an organization or its admin tokens (`_` never starts a project id) | same JSON |
//!
//! Organization admin tokens are not in KV: their source of truth is the `AdminTokens` Durable
//! Object (`orgs::TokenBook`), so a revocation holds everywhere at once.
//!
//! Metadata copies let one list call return whole records (KV caps metadata at 1024 bytes;
//! a record too large for it is read back with a get instead). Values are written with
//! serde_json and read with [`json_object`]: a stored value that is not a JSON object of the
//! record's shape is [`RepoError::Corrupt`].

use crate::json_object;
use crate::key::KeyHash;
use crate::record::{AuditEvent, KeyRecord, Org, Project};
use crate::store::{Store, StoreError, GET_MANY_MAX, METADATA_MAX_BYTES};
use serde::de::DeserializeOwned;
use serde::Serialize;

const KEY: &str = "key/";
const KEY_ID: &str = "id/";
const PROJECT: &str = "project/";
const ORG: &str = "org/";
const AUDIT: &str = "audit/";
/// After [`AUDIT`], the events of organizations and their admin tokens.
const AUDIT_ORG: &str = "_org/";
/// A longer name cannot name anything stored: KV refuses such names (an error, not a miss).
const KV_NAME_MAX_BYTES: usize = crate::store::KV_KEY_MAX_BYTES;

/// Storage failed, or holds something that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored value under {name} does not decode: {reason}")]
    Corrupt { name: String, reason: String },
    /// A record could not be written as JSON (serde_json fails only on values JSON cannot
    /// hold; ours never are, but a write fails closed rather than panics).
    #[error("value for {name} could not be encoded: {reason}")]
    Encode { name: String, reason: String },
}

/// Typed access to the layout above, over any [`Store`].
pub struct Repo<'s, S> {
    store: &'s S,
}

impl<'s, S: Store> Repo<'s, S> {
    pub fn new(store: &'s S) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &'s S {
        self.store
    }

    /// The verify path: one read.
    pub async fn key_by_hash(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, RepoError> {
        self.get_json(&format!("{KEY}{}", hash.as_str())).await
    }

    /// Several keys by hash, in order: one bulk read per [`GET_MANY_MAX`] hashes.
    pub async fn keys_by_hash(
        &self,
        hashes: &[KeyHash],
    ) -> Result<Vec<Option<KeyRecord>>, RepoError> {
        let mut out = Vec::with_capacity(hashes.len());
        for batch in hashes.chunks(GET_MANY_MAX) {
            let names: Vec<String> = batch
                .iter()
                .map(|h| format!("{KEY}{}", h.as_str()))
                .collect();
            for (name, text) in names.iter().zip(self.store.get_many(&names).await?) {
                out.push(text.map(|t| decode(name, &t)).transpose()?);
            }
        }
        Ok(out)
    }

    pub async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, RepoError> {
        let name = format!("{KEY_ID}{id}");
        if name.len() > KV_NAME_MAX_BYTES {
            return Ok(None);
        }
        let Some(hex) = self.store.get(&name).await? else {
            return Ok(None);
        };
        let hash = KeyHash::from_hex(&hex).ok_or_else(|| RepoError::Corrupt {
            name,
            reason: "not a key hash".into(),
        })?;
        self.key_by_hash(&hash).await
    }

    /// Writes the id → hash pointer. Harmless on its own: it points at nothing usable until
    /// [`Repo::put_key`] writes the record.
    pub async fn put_key_id(&self, record: &KeyRecord) -> Result<(), RepoError> {
        let name = format!("{KEY_ID}{}", record.id);
        Ok(self.store.put(&name, record.hash.as_str(), None).await?)
    }

    pub async fn put_key(&self, record: &KeyRecord) -> Result<(), RepoError> {
        self.put_json(&format!("{KEY}{}", record.hash.as_str()), record)
            .await
    }

    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, RepoError> {
        self.list_json(KEY).await
    }

    pub async fn project(&self, id: &str) -> Result<Option<Project>, RepoError> {
        self.get_json(&format!("{PROJECT}{id}")).await
    }

    pub async fn put_project(&self, project: &Project) -> Result<(), RepoError> {
        self.put_json(&format!("{PROJECT}{}", project.id), project)
            .await
    }

    pub async fn list_projects(&self) -> Result<Vec<Project>, RepoError> {
        self.list_json(PROJECT).await
    }

    pub async fn org(&self, id: &str) -> Result<Option<Org>, RepoError> {
        self.get_json(&format!("{ORG}{id}")).await
    }

    pub async fn put_org(&self, org: &Org) -> Result<(), RepoError> {
        self.put_json(&format!("{ORG}{}", org.id), org).await
    }

    pub async fn list_orgs(&self) -> Result<Vec<Org>, RepoError> {
        self.list_json(ORG).await
    }

    pub async fn append_audit(&self, event: &AuditEvent) -> Result<(), RepoError> {
        let subject = match (&event.project_id, &event.org_id) {
            (Some(project), _) => project.clone(),
            (None, org) => format!("{AUDIT_ORG}{}", org.as_deref().unwrap_or_default()),
        };
        let name = format!("{AUDIT}{subject}/{:013}-{}", event.at, event.id);
        self.put_json(&name, event).await
    }

    /// Audit events of one project (its own only, no organization's), or all of them, in name
    /// order (oldest first within each project or organization).
    pub async fn list_audit(&self, project_id: Option<&str>) -> Result<Vec<AuditEvent>, RepoError> {
        match project_id {
            Some(id) => self.list_json(&format!("{AUDIT}{id}/")).await,
            None => self.list_json(AUDIT).await,
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, RepoError> {
        if name.len() > KV_NAME_MAX_BYTES {
            return Ok(None);
        }
        match self.store.get(name).await? {
            Some(text) => decode(name, &text).map(Some),
            None => Ok(None),
        }
    }

    async fn put_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), RepoError> {
        let text = serde_json::to_string(value).map_err(|e| RepoError::Encode {
            name: name.into(),
            reason: e.to_string(),
        })?;
        let metadata = (text.len() <= METADATA_MAX_BYTES).then_some(text.as_str());
        Ok(self.store.put(name, &text, metadata).await?)
    }

    async fn list_json<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>, RepoError> {
        let mut out = Vec::new();
        for entry in self.store.list(prefix).await? {
            match entry.metadata {
                Some(meta) => out.push(decode(&entry.name, &meta)?),
                // Written without metadata (too large for it): read the value.
                None => out.extend(self.get_json(&entry.name).await?),
            }
        }
        Ok(out)
    }
}

fn decode<T: DeserializeOwned>(name: &str, text: &str) -> Result<T, RepoError> {
    json_object::from_str(text).map_err(|e| RepoError::Corrupt {
        name: name.into(),
        reason: e.to_string(),
    })
}

/// Stores a key only KV knows, as if created before the change log's window (tests); returns
/// its plaintext.
#[cfg(test)]
pub fn kv_only_key<S: Store>(store: &S, byte: u8) -> String {
    let key = crate::key::ApiKey::from_secret_bytes(&[byte; 32]);
    let record = KeyRecord::new(format!("key_{byte}"), &key, "k".into(), "p".into(), 0, None);
    pollster::block_on(Repo::new(store).put_key(&record)).unwrap();
    key.expose().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ApiKey;
    use crate::store::MemoryStore;
    use pollster::block_on;

    fn record(byte: u8, name: &str) -> KeyRecord {
        let key = ApiKey::from_secret_bytes(&[byte; 32]);
        KeyRecord::new(
            format!("key_{byte}"),
            &key,
            name.into(),
            "p".into(),
            1,
            None,
        )
    }

    #[test]
    fn key_is_found_by_hash_and_by_id() {
        let store = MemoryStore::new();
        let repo = Repo::new(&store);
        let rec = record(1, "a");
        block_on(async {
            repo.put_key_id(&rec).await.unwrap();
            repo.put_key(&rec).await.unwrap();
            assert_eq!(
                repo.key_by_hash(&rec.hash).await.unwrap(),
                Some(rec.clone())
            );
            assert_eq!(repo.key_by_id("key_1").await.unwrap(), Some(rec));
            assert_eq!(repo.key_by_id("key_2").await.unwrap(), None);
        });
    }

    #[test]
    fn listing_reads_metadata_and_falls_back_to_values() {
        let store = MemoryStore::new();
        let repo = Repo::new(&store);
        let small = record(1, "small");
        // A name of 64 four-byte characters still fits; force the fallback with a raw write.
        let big = record(2, "big");
        block_on(async {
            repo.put_key(&small).await.unwrap();
            let text = serde_json::to_string(&big).unwrap();
            store
                .put(&format!("key/{}", big.hash.as_str()), &text, None)
                .await
                .unwrap();
            let mut listed = repo.list_keys().await.unwrap();
            listed.sort_by(|a, b| a.id.cmp(&b.id));
            assert_eq!(listed, vec![small, big]);
        });
    }

    #[test]
    fn largest_valid_record_fits_in_metadata() {
        let mut rec = record(1, &"\u{10FFFF}".repeat(64));
        rec.project_id = "p".repeat(63);
        rec.rotated_from = Some("key_".to_owned() + &"f".repeat(24));
        rec.rotated_to = rec.rotated_from.clone();
        rec.grace_expires_at = Some(u64::MAX);
        rec.revoked_at = Some(u64::MAX);
        // A leak reason at its bound (`leaks::MAX_REASON_BYTES` once JSON-escaped).
        rec.revoked_reason = Some("\u{10FFFF}".repeat(crate::leaks::MAX_REASON_BYTES / 4));
        assert!(serde_json::to_string(&rec).unwrap().len() <= METADATA_MAX_BYTES);
    }

    #[test]
    fn corrupt_record_is_an_error_not_a_miss() {
        let store = MemoryStore::new();
        let rec = record(1, "a");
        block_on(async {
            let name = format!("key/{}", rec.hash.as_str());
            let as_array = crate::record::tests::as_field_array(&rec);
            for corrupt in ["{not json", "[]", as_array.as_str()] {
                store.put(&name, corrupt, None).await.unwrap();
                let err = Repo::new(&store).key_by_hash(&rec.hash).await;
                assert!(matches!(err, Err(RepoError::Corrupt { .. })), "{corrupt}");
            }
        });
    }

    #[test]
    fn audit_is_listed_per_project() {
        let store = MemoryStore::new();
        let repo = Repo::new(&store);
        let event = |project: &str, at| AuditEvent {
            id: format!("{project}{at}"),
            actor: "admin".into(),
            actor_token_id: None,
            actor_token_name: None,
            action: "key.created".into(),
            project_id: Some(project.into()),
            org_id: None,
            admin_token_id: None,
            key_id: None,
            reason: None,
            at,
        };
        block_on(async {
            for e in [event("a", 2), event("b", 1), event("a", 10)] {
                repo.append_audit(&e).await.unwrap();
            }
            let org_event = AuditEvent {
                project_id: None,
                org_id: Some("a".into()),
                ..event("a", 5)
            };
            repo.append_audit(&org_event).await.unwrap();
            let a = repo.list_audit(Some("a")).await.unwrap();
            assert_eq!(a.iter().map(|e| e.at).collect::<Vec<_>>(), [2, 10]);
            assert_eq!(repo.list_audit(None).await.unwrap().len(), 4);
            assert!(store
                .dump()
                .iter()
                .any(|(k, _, _)| k.starts_with("audit/_org/a/")));
        });
    }
}
