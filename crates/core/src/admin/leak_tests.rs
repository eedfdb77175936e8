//! Leak reports through the admin layer's commit point: a leaked key is revoked with its reason
//! and an audit event naming who reported it; a key changed meanwhile is decided again on the
//! version that stands; the change log's recent versions win over KV's.

use super::*;
use crate::changes::{refresh, MemoryFeed};
use crate::leaks::{parse_admin_report, process, Label, NoTokens};
use crate::store::{MemoryStore, Op};
use pollster::block_on;

const DAY: Millis = 86_400_000;

struct World {
    kv: MemoryStore,
    feed: MemoryFeed,
    overlay: RefCell<Overlay>,
}

impl World {
    fn new() -> Self {
        Self {
            kv: MemoryStore::new(),
            feed: MemoryFeed::default(),
            overlay: RefCell::default(),
        }
    }

    fn keys(&self) -> Keys<'_, MemoryStore, MemoryFeed> {
        Keys {
            repo: Repo::new(&self.kv),
            feed: &self.feed,
            overlay: &self.overlay,
            actor: &crate::orgs::Actor::Operator,
        }
    }

    /// Project "p" and one key; returns (plaintext, id).
    fn seed(&self) -> (String, String) {
        block_on(async {
            create_project(
                &self.keys().repo,
                &crate::orgs::Actor::Operator,
                "default",
                "p",
                "P",
                None,
                0,
            )
            .await
            .unwrap();
            let issued = create_key(&self.keys(), "p", "k", KeyOptions::default(), 0)
                .await
                .unwrap()
                .value;
            (issued.key.expose().to_owned(), issued.api_key.id)
        })
    }

    fn report(&self, keys: &[&str], now: Millis) -> Vec<Label> {
        let body = serde_json::json!({ "keys": keys, "source": "incident INC-9" }).to_string();
        let report = parse_admin_report(body.as_bytes()).unwrap();
        let done = block_on(process(&self.keys(), None::<&NoTokens>, &report, now)).unwrap();
        done.into_feedback()
            .unwrap()
            .iter()
            .map(|f| f.label)
            .collect()
    }

    fn record(&self, id: &str, now: Millis) -> KeyRecord {
        block_on(find_key(&self.keys(), id, now)).unwrap()
    }
}

#[test]
fn a_reported_key_is_revoked_with_its_reason_and_audited_as_the_reporter() {
    let w = World::new();
    let (key, id) = w.seed();
    assert_eq!(w.report(&[&key], 1_000), [Label::TruePositive]);
    let record = w.record(&id, 1_001);
    assert_eq!(record.revoked_at, Some(1_000));
    let reason = record.revoked_reason.as_deref().unwrap();
    assert_eq!(reason, "Leaked: reported by incident INC-9");
    assert_eq!(record.view(1_001).revoked_reason.as_deref(), Some(reason));
    let stored = block_on(w.keys().repo.key_by_id(&id)).unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(1_000), "written to KV too");
    let events = block_on(audit_log(&w.keys().repo, Some("p"))).unwrap();
    let revoked = events.iter().find(|e| e.action == "key.revoked").unwrap();
    assert_eq!(revoked.actor, "operator");
    assert_eq!(revoked.reason.as_deref(), Some(reason));
    assert_eq!(w.report(&[&key], 2_000), [Label::TruePositive]);
    assert_eq!(w.record(&id, 2_001).revoked_at, Some(1_000), "unchanged");
}

#[test]
fn lookups_read_kv_in_bulk_and_prefer_the_change_logs_versions() {
    let w = World::new();
    let (key, id) = w.seed();
    // Revoked in the change log; KV's write failed and still says active.
    w.kv.fail_from(0, Some(Op::Put));
    block_on(revoke_key(&w.keys(), &id, 500)).unwrap();
    w.kv.heal();
    let kv_copy = block_on(w.keys().repo.key_by_id(&id)).unwrap().unwrap();
    assert_eq!(kv_copy.revoked_at, None);
    let hash = crate::key::ApiKey::parse(&key).unwrap().hash();
    let found = block_on(Revoker::lookup(&w.keys(), &[hash], 1_000)).unwrap();
    assert_eq!(found[0].as_ref().unwrap().revoked_at, Some(500));
    // Already revoked: a true positive, nothing written.
    let puts = w.kv.log().iter().filter(|(op, _)| *op == Op::Put).count();
    assert_eq!(w.report(&[&key], 1_000), [Label::TruePositive]);
    let after = w.kv.log().iter().filter(|(op, _)| *op == Op::Put).count();
    assert_eq!(puts, after);
}

fn revocation() -> Revocation {
    Revocation {
        actor: "github-secret-scanning",
        reason: "Leaked: found by GitHub secret scanning".into(),
    }
}

#[test]
fn a_key_rotated_meanwhile_is_revoked_on_the_version_that_stands() {
    let w = World::new();
    let (_, id) = w.seed();
    let seen = w.record(&id, 100);
    block_on(rotate_key(&w.keys(), &id, DAY, None, 200)).unwrap();
    let batch = [(seen, revocation())];
    block_on(Revoker::revoke(&w.keys(), &batch, 300)).unwrap();
    let record = w.record(&id, 301);
    assert_eq!(record.revoked_at, Some(300));
    assert!(record.rotated_to.is_some(), "the rotation is kept");
    assert_eq!(record.grace_expires_at, Some(200 + DAY));
}

#[test]
fn a_key_revoked_meanwhile_keeps_its_first_revocation() {
    let w = World::new();
    let (_, id) = w.seed();
    let seen = w.record(&id, 100);
    block_on(revoke_key(&w.keys(), &id, 200)).unwrap();
    let batch = [(seen, revocation())];
    assert_eq!(
        block_on(Revoker::revoke(&w.keys(), &batch, 300)).unwrap(),
        None
    );
    let record = w.record(&id, 301);
    assert_eq!(record.revoked_at, Some(200));
    assert_eq!(record.revoked_reason, None);
}

/// Issue 16 §4: GitHub's report still stops a leaked key while the change log is down. The key
/// is revoked in KV, with its reason and audit event, refused at once here, and the log takes
/// the revocation at this isolate's first refresh that reaches it.
#[test]
fn with_the_change_log_unreachable_a_reported_key_is_revoked_in_kv_and_logged_later() {
    let w = World::new();
    let (key, id) = w.seed();
    w.feed.unreachable.set(true);
    assert_eq!(w.report(&[&key], 1_000), [Label::TruePositive]);
    let stored = block_on(w.keys().repo.key_by_id(&id)).unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(1_000));
    let reason = stored.revoked_reason.clone().unwrap();
    let events = block_on(audit_log(&w.keys().repo, Some("p"))).unwrap();
    let audited = events.iter().find(|e| e.action == "key.revoked").unwrap();
    assert_eq!(audited.reason.as_deref(), Some(reason.as_str()));
    let header = format!("Bearer {key}");
    let verify = |at| {
        block_on(crate::verify::authenticate(
            &w.kv,
            &w.overlay,
            Some(&header),
            at,
        ))
    };
    assert_eq!(verify(1_001).unwrap_err().code(), "key_revoked");
    w.feed.unreachable.set(false);
    assert_eq!(block_on(refresh(&w.overlay, &w.feed, 2_000, 2_000)), None);
    let logged = w.feed.log.borrow().recent(2_001);
    let logged = logged.iter().find(|c| c.record.id == id).unwrap();
    assert_eq!(logged.record.revoked_at, Some(1_000));
    assert_eq!(
        logged.record.revoked_reason.as_deref(),
        Some(reason.as_str())
    );
    assert_eq!(verify(2_001).unwrap_err().code(), "key_revoked");
}

#[test]
fn a_key_named_twice_is_one_entry_one_revocation_and_the_source_as_its_reason() {
    let w = World::new();
    let (key, id) = w.seed();
    assert_eq!(w.report(&[&key, &key], 1_000), [Label::TruePositive]);
    let record = w.record(&id, 1_001);
    assert_eq!(record.revoked_at, Some(1_000));
    let reason = "Leaked: reported by incident INC-9";
    assert_eq!(record.revoked_reason.as_deref(), Some(reason));
    let events = block_on(audit_log(&w.keys().repo, Some("p"))).unwrap();
    let revoked: Vec<_> = events
        .iter()
        .filter(|e| e.action == "key.revoked")
        .collect();
    assert_eq!(revoked.len(), 1, "{events:?}");
    assert_eq!(revoked[0].reason.as_deref(), Some(reason));
}
