//! Authentication of API keys: from `Authorization: Bearer <key>` (and the project a request
//! names) to a [`Grant`] or a refusal. A malformed key is refused before any storage read.

use crate::changes::Overlay;
use crate::error::ApiError;
use crate::forward::CanonicalPath;
use crate::key::{ApiKey, KeyHash};
use crate::record::{authorize, Denied, Grant, KeyRecord, KeyStatus};
use crate::repo::Repo;
use crate::store::Store;
use crate::time::Millis;
use std::cell::RefCell;

/// The header a request may use to name its project.
pub const PROJECT_HEADER: &str = "x-lumiqtrace-project-id";

/// The key in an `Authorization: Bearer <key>` header, strictly parsed.
pub fn bearer_key(authorization: Option<&str>) -> Result<ApiKey, ApiError> {
    let value = authorization.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(ApiError::MissingKey);
    }
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::MalformedKey)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::MalformedKey);
    }
    ApiKey::parse(token.trim_start_matches(' ')).map_err(|_| ApiError::MalformedKey)
}

/// Parses the key, finds its record — in the overlay of recent changes or what it read from KV
/// lately (memory lookups), else by one KV read — and decides at `now`.
pub async fn authenticate<S: Store>(
    store: &S,
    overlay: &RefCell<Overlay>,
    authorization: Option<&str>,
    now: Millis,
) -> Result<Grant, ApiError> {
    authenticate_key(store, overlay, &bearer_key(authorization)?, now).await
}

/// [`authenticate`] for a key already parsed.
///
/// A recent change in the overlay that refuses the key (revoked, grace over) is trusted as it
/// is. One that grants it must agree with KV, whose word is kept for a minute while the log is
/// live (a record, or "no such key"): KV revoked refuses (a revoke made while the log could not
/// be reached exists in KV alone); KV without the key leaves the grant to a live overlay (a new
/// key KV has not converged on yet) and refuses it when the overlay is not live, since then
/// only KV may grant. Without a recent change, KV's record decides.
pub async fn authenticate_key<S: Store>(
    store: &S,
    overlay: &RefCell<Overlay>,
    key: &ApiKey,
    now: Millis,
) -> Result<Grant, ApiError> {
    let decided = authenticate_known(store, overlay, key, now).await;
    decided.map_err(|refused| refused.error)
}

/// A refusal, and the key it names when the key is known (revoked, expired): what usage
/// counts as that key's refusal.
#[derive(Debug)]
pub struct Refused {
    pub error: ApiError,
    /// `(project_id, key_id)` of a known key.
    pub key: Option<(String, String)>,
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Self { error, key: None }
    }
}

/// [`authenticate_key`], with the refused key's identity when it is known.
pub async fn authenticate_known<S: Store>(
    store: &S,
    overlay: &RefCell<Overlay>,
    key: &ApiKey,
    now: Millis,
) -> Result<Grant, Refused> {
    let hash = key.hash();
    let (logged, kept) = {
        let overlay = overlay.borrow();
        let logged = overlay.get(&hash, now);
        if let Some(record) = logged.filter(|r| !works(r, now)) {
            return decide(record, now);
        }
        let live = overlay.live(now);
        if let Some(stored) = overlay.cached(&hash, now) {
            (None, Some(judge(logged, Some(stored), live, now)))
        } else if overlay.known_absent(&hash, now) {
            (None, Some(judge(logged, None, live, now)))
        } else {
            (logged.cloned(), None)
        }
    };
    if let Some(decision) = kept {
        overlay.borrow_mut().claim_renewal(&hash, now);
        return decision;
    }
    let start = overlay.borrow().read_start(now);
    let stored = Repo::new(store).key_by_hash(&hash).await;
    let stored = stored.map_err(|e| Refused::from(ApiError::from(e)))?;
    let mut overlay = overlay.borrow_mut();
    let decision = judge(logged.as_ref(), stored.as_ref(), overlay.live(now), now);
    overlay.keep(hash, stored, start);
    decision
}

/// Runs the renewals the overlay's kept reads asked for ([`Overlay::claim_renewal`]): one KV
/// read per hash, one after another, each kept by [`Overlay::renewed`] as read at `now` (ms
/// since the epoch, taken before the reads begin; so a renewed read expires no later than a
/// read made in a request would), and dropped if the isolate wrote a key since they began.
/// Meant for after the answer (the worker: `waitUntil`). A read that fails leaves the kept one
/// to expire; the returned log line names it.
pub async fn renew<S: Store>(
    store: &S,
    overlay: &RefCell<Overlay>,
    hashes: Vec<KeyHash>,
    now: Millis,
) -> Option<String> {
    let repo = Repo::new(store);
    let start = overlay.borrow().read_start(now);
    let mut failed = Vec::new();
    for hash in hashes {
        match repo.key_by_hash(&hash).await {
            Ok(read) => overlay.borrow_mut().renewed(hash, read, start),
            Err(e) => failed.push(e.to_string()),
        }
    }
    let n = failed.len();
    (n > 0).then(|| format!("renewing {n} kept KV read(s) failed: {}", failed.join("; ")))
}

fn works(record: &KeyRecord, now: Millis) -> bool {
    matches!(record.status(now), KeyStatus::Active | KeyStatus::Grace)
}

/// The decision from the overlay's working version (`logged`) and KV's record (`stored`).
fn judge(
    logged: Option<&KeyRecord>,
    stored: Option<&KeyRecord>,
    live: bool,
    now: Millis,
) -> Result<Grant, Refused> {
    let record = match (logged, stored) {
        (Some(logged), Some(stored)) => stricter(logged, stored),
        (Some(logged), None) if live => logged,
        (_, Some(stored)) => stored,
        (_, None) => return Err(ApiError::InvalidKey.into()),
    };
    decide(record, now)
}

/// Of two versions of one key, the one that stops working first (revoked: at once); the
/// overlay's (`a`) on a tie. A key only ever moves toward stopping, so this is also the newer.
fn stricter<'r>(a: &'r KeyRecord, b: &'r KeyRecord) -> &'r KeyRecord {
    let ends = |r: &KeyRecord| match r.revoked_at {
        Some(_) => 0,
        None => r.working_until().unwrap_or(Millis::MAX),
    };
    if ends(b) < ends(a) {
        b
    } else {
        a
    }
}

fn decide(record: &KeyRecord, now: Millis) -> Result<Grant, Refused> {
    authorize(record, now).map_err(|denied| Refused {
        error: match denied {
            Denied::Revoked => ApiError::KeyRevoked,
            Denied::Expired => ApiError::KeyExpired,
        },
        key: Some((record.project_id.clone(), record.id.clone())),
    })
}

/// A key never ingests into another project: every project the canonical path names
/// (`…/projects/{id}/…`, see [`CanonicalPath::named_projects`]) and the
/// `X-LumiqTrace-Project-Id` header, if sent, must be the key's own.
pub fn check_project(
    grant: &Grant,
    path: &CanonicalPath,
    header: Option<&str>,
) -> Result<(), ApiError> {
    let named = path.named_projects().chain(header.map(str::trim));
    for project in named {
        if project != grant.project_id {
            return Err(ApiError::ProjectMismatch);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{KeyRecord, KeyStatus};
    use crate::store::{MemoryStore, Op};
    use pollster::block_on;

    const DAY: Millis = 86_400_000;

    fn seeded(mutate: impl FnOnce(&mut KeyRecord)) -> (MemoryStore, ApiKey) {
        let store = MemoryStore::new();
        let key = ApiKey::from_secret_bytes(&[9; 32]);
        let mut rec = KeyRecord::new("key_9".into(), &key, "ci".into(), "web-app".into(), 0, None);
        mutate(&mut rec);
        block_on(Repo::new(&store).put_key(&rec)).unwrap();
        (store, key)
    }

    fn bearer(key: &ApiKey) -> String {
        format!("Bearer {}", key.expose())
    }

    #[test]
    fn active_key_is_granted_its_project() {
        let (store, key) = seeded(|_| {});
        let grant = block_on(authenticate(
            &store,
            &Default::default(),
            Some(&bearer(&key)),
            1,
        ))
        .unwrap();
        assert_eq!(
            (grant.project_id.as_str(), grant.key_id.as_str()),
            ("web-app", "key_9")
        );
        assert_eq!(grant.status, KeyStatus::Active);
    }

    #[test]
    fn missing_header_is_missing_key() {
        let (store, _) = seeded(|_| {});
        for header in [None, Some(""), Some("   ")] {
            let err = block_on(authenticate(&store, &Default::default(), header, 1)).unwrap_err();
            assert_eq!(err.code(), "missing_key");
        }
    }

    #[test]
    fn malformed_key_is_rejected_without_a_storage_read() {
        let (store, key) = seeded(|_| {});
        let reads_before = store.log().len();
        let upper = format!("Bearer {}", key.expose().to_uppercase());
        let basic = format!("Basic {}", key.expose());
        for header in ["Bearer", "Bearer lqt_123", &upper, &basic, "lqt_abc"] {
            let err =
                block_on(authenticate(&store, &Default::default(), Some(header), 1)).unwrap_err();
            assert_eq!(err.code(), "malformed_key", "{header}");
        }
        assert_eq!(store.log().len(), reads_before);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let (store, key) = seeded(|_| {});
        let header = format!("bearer  {}", key.expose());
        assert!(block_on(authenticate(&store, &Default::default(), Some(&header), 1)).is_ok());
    }

    #[test]
    fn unknown_key_is_invalid_key() {
        let (store, _) = seeded(|_| {});
        let other = ApiKey::from_secret_bytes(&[1; 32]);
        let err = block_on(authenticate(
            &store,
            &Default::default(),
            Some(&bearer(&other)),
            1,
        ))
        .unwrap_err();
        assert_eq!(err.code(), "invalid_key");
    }

    #[test]
    fn revoked_key_is_rejected() {
        let (store, key) = seeded(|r| r.revoked_at = Some(5));
        let err = block_on(authenticate(
            &store,
            &Default::default(),
            Some(&bearer(&key)),
            6,
        ))
        .unwrap_err();
        assert_eq!((err.status(), err.code()), (401, "key_revoked"));
    }

    #[test]
    fn key_in_grace_is_accepted_then_expires() {
        let (store, key) = seeded(|r| r.grace_expires_at = Some(DAY));
        let grant = block_on(authenticate(
            &store,
            &Default::default(),
            Some(&bearer(&key)),
            DAY - 1,
        ))
        .unwrap();
        assert_eq!(grant.status, KeyStatus::Grace);
        let err = block_on(authenticate(
            &store,
            &Default::default(),
            Some(&bearer(&key)),
            DAY,
        ))
        .unwrap_err();
        assert_eq!(err.code(), "key_expired");
    }

    #[test]
    fn storage_failure_fails_closed_with_503() {
        let (store, key) = seeded(|_| {});
        store.fail_from(0, Some(Op::Get));
        let err = block_on(authenticate(
            &store,
            &Default::default(),
            Some(&bearer(&key)),
            1,
        ))
        .unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "unavailable"));
    }

    #[test]
    fn corrupt_record_fails_closed() {
        let (store, key) = seeded(|_| {});
        let name = format!("key/{}", key.hash().as_str());
        block_on(store.put(&name, "[]", None)).unwrap();
        let err = block_on(authenticate(
            &store,
            &Default::default(),
            Some(&bearer(&key)),
            1,
        ))
        .unwrap_err();
        assert!(err.status() >= 500);
    }

    #[test]
    fn another_projects_path_or_header_is_project_mismatch() {
        let (store, key) = seeded(|_| {});
        let grant = block_on(authenticate(
            &store,
            &Default::default(),
            Some(&bearer(&key)),
            1,
        ))
        .unwrap();
        let path = |path| CanonicalPath::parse(path, None).unwrap();
        assert!(check_project(&grant, &path("/v1/ingest"), None).is_ok());
        let own = path("/v1/projects/web-app/traces");
        assert!(check_project(&grant, &own, Some("web-app")).is_ok());
        for (path, header) in [
            (path("/v1/projects/mobile/traces"), None),
            (path("/v1/ingest"), Some("mobile")),
            (own, Some("mobile")),
            (path("/v1/projects/web-app/projects/mobile"), None),
            (path("/v1/x/projects/mobile/y"), None),
        ] {
            let err = check_project(&grant, &path, header).unwrap_err();
            assert_eq!(
                (err.status(), err.code()),
                (403, "project_mismatch"),
                "{path:?}"
            );
        }
    }
}
