//! What the change log guarantees beside eventually consistent KV: a revoke or a creation is seen
//! at a stale location within two refresh intervals (`changes::revoke_bound`), through each layer
//! (background refresh, the location's copy, an isolate waking from idle), and racing admin
//! writes end in one deterministic, safe state. Each proof has a twin without the log or
//! without the layer's safeguard, to show it can fail.

use super::*;
use crate::changes::{
    before_verify, begin_background, refresh, revoke_bound, settle, Cached, MemoryCopy, MemoryFeed,
    NearbyCopy, NoFeed, Snapshot, CACHED_FOR_MS, KV_CONVERGENCE_MS, RENEW_AFTER_MS,
    SETTLE_AFTER_MS, WINDOW_MS,
};
use crate::key::{ApiKey, KeyHash};
use crate::record::{Grant, KeyStatus};
use crate::store::{MemoryStore, Op, Replica, StoreError, Yielding};
use crate::verify::{authenticate, renew};
use futures_util::future::{join as together, join_all};
use pollster::block_on;

const INTERVAL: Millis = 2_000;
const GRACE: Millis = 86_400_000;

/// One Cloudflare location: its view of KV, the shared change log, its isolate's overlay.
struct Location<'a, S, F> {
    store: &'a S,
    feed: &'a F,
    overlay: RefCell<Overlay>,
}

impl<'a, S: Store, F: ChangeFeed> Location<'a, S, F> {
    fn new(store: &'a S, feed: &'a F) -> Self {
        Self {
            store,
            feed,
            overlay: RefCell::default(),
        }
    }

    /// What the admin API works with here.
    fn keys(&self) -> Keys<'_, S, F> {
        Keys {
            repo: Repo::new(self.store),
            feed: self.feed,
            overlay: &self.overlay,
            actor: &crate::orgs::Actor::Operator,
        }
    }

    /// What an SDK call gets here at `now`.
    fn verify(&self, key: &str, now: Millis) -> Result<Grant, ApiError> {
        block_on(self.verify_async(key, now))
    }

    /// As the worker does: awaits a refresh only if the overlay is not live, answers, then runs
    /// the background refresh and the renewals of kept KV reads that are due, after the answer.
    async fn verify_async(&self, key: &str, now: Millis) -> Result<Grant, ApiError> {
        let answer = self.verify_unrenewed(key, now).await;
        let due = self.overlay.borrow_mut().take_renewals();
        assert_eq!(renew(self.store, &self.overlay, due, now).await, None);
        answer
    }

    /// Verifies `key` at `at`, keeping a read of it, and again when that read is due for
    /// renewal; returns when, and the one renewal claimed (not run).
    fn claim_a_renewal(&self, key: &str, at: Millis) -> (Millis, Vec<KeyHash>) {
        let claimed = at + RENEW_AFTER_MS;
        for now in [at, claimed] {
            assert!(
                block_on(self.verify_unrenewed(key, now)).is_ok(),
                "at {now}"
            );
        }
        let due = self.overlay.borrow_mut().take_renewals();
        assert_eq!(due.len(), 1, "the kept read asked for its renewal");
        (claimed, due)
    }

    /// [`Location::verify_async`] without the renewals (left for the test to take).
    async fn verify_unrenewed(&self, key: &str, now: Millis) -> Result<Grant, ApiError> {
        let bearer = format!("Bearer {key}");
        before_verify(&self.overlay, self.feed, now, INTERVAL).await;
        let answer = authenticate(self.store, &self.overlay, Some(&bearer), now).await;
        if begin_background(&self.overlay, self.feed, now, INTERVAL) {
            refresh(&self.overlay, self.feed, now, INTERVAL).await;
        }
        answer
    }
}

/// Creates project "p" and one key through `near`; returns (plaintext, id).
fn seed<S: Store, F: ChangeFeed>(near: &Location<'_, S, F>, now: Millis) -> (String, String) {
    block_on(async {
        create_project(
            &near.keys().repo,
            &crate::orgs::Actor::Operator,
            "default",
            "p",
            "P",
            None,
            now,
        )
        .await
        .unwrap();
        let issued = create_key(&near.keys(), "p", "k", KeyOptions::default(), now)
            .await
            .unwrap()
            .value;
        (issued.key.expose().to_owned(), issued.api_key.id)
    })
}

/// [`seed`], then the log's settle write of the new key, as its alarm makes 2 minutes later.
fn seed_settled(near: &Location<'_, MemoryStore, MemoryFeed>) -> (String, String) {
    let seeded = seed(near, 0);
    block_on(settle(&near.feed.log, &near.keys().repo, SETTLE_AFTER_MS));
    seeded
}

/// Revokes a key at one location and asks a distant one whose KV has not converged.
fn revoke_seen_far_away<F: ChangeFeed>(feed: F) -> Result<Grant, ApiError> {
    let kv = MemoryStore::new();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed(&near, 0);
    let far_kv = Replica::new(&kv);
    let far = Location::new(&far_kv, &feed);
    assert!(
        far.verify(&key, 1).is_ok(),
        "known everywhere before the revoke"
    );
    block_on(revoke_key(&near.keys(), &id, 1_000)).unwrap();
    assert_eq!(near.verify(&key, 1_001).unwrap_err().code(), "key_revoked");
    let stale = block_on(far.keys().repo.key_by_id(&id)).unwrap().unwrap();
    assert_eq!(
        stale.revoked_at, None,
        "the far location's KV still says active"
    );
    far.verify(&key, 1_000 + revoke_bound(INTERVAL))
}

#[test]
fn revoked_key_is_refused_far_away_within_the_bound() {
    let refused = revoke_seen_far_away(MemoryFeed::default()).unwrap_err();
    assert_eq!(refused.code(), "key_revoked");
}

#[test]
fn without_the_log_a_stale_location_still_accepts_a_revoked_key() {
    assert!(revoke_seen_far_away(NoFeed).is_ok());
}

/// Creates a key at one location and uses it at a distant one before KV converges there.
fn creation_seen_far_away<F: ChangeFeed>(feed: F) -> Result<Grant, ApiError> {
    let kv = MemoryStore::new();
    let far_kv = Replica::new(&kv);
    let near = Location::new(&kv, &feed);
    let far = Location::new(&far_kv, &feed);
    let (key, _) = seed(&near, 0);
    far.verify(&key, INTERVAL)
}

#[test]
fn created_key_is_accepted_far_away_before_kv_has_it() {
    let grant = creation_seen_far_away(MemoryFeed::default()).unwrap();
    assert_eq!(grant.project_id, "p");
}

#[test]
fn without_the_log_a_new_key_is_unknown_far_away_until_kv_converges() {
    let err = creation_seen_far_away(NoFeed).unwrap_err();
    assert_eq!(err.code(), "invalid_key");
}

#[test]
fn unreachable_log_falls_back_to_kv_and_keeps_known_revocations() {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed(&near, 0);
    block_on(revoke_key(&near.keys(), &id, 10)).unwrap();
    feed.unreachable.set(true);
    let empty = MemoryStore::new();
    let far_kv = Replica::new(&empty); // a location whose KV never saw the key
    let far = Location::new(&far_kv, &feed);
    assert_eq!(far.verify(&key, 20).unwrap_err().code(), "invalid_key");
    // The near isolate knew of the revoke before the log went away: it stays refused.
    assert_eq!(
        near.verify(&key, 20 + INTERVAL).unwrap_err().code(),
        "key_revoked"
    );
}

/// Reads of key records from `kv` so far.
fn key_reads(kv: &MemoryStore) -> usize {
    count_key_reads(&kv.log())
}

fn count_key_reads(log: &[(Op, String)]) -> usize {
    log.iter()
        .filter(|(op, name)| *op == Op::Get && name.starts_with("key/"))
        .count()
}

/// A key only KV knows (created before the log's window), used at `WINDOW_MS`, then again at
/// each of `later`.
fn reads_for_repeated_use<F: ChangeFeed>(feed: F, later: &[Millis]) -> usize {
    let kv = MemoryStore::new();
    let key = crate::repo::kv_only_key(&kv, 7);
    let here = Location::new(&kv, &feed);
    for at in std::iter::once(WINDOW_MS).chain(later.iter().map(|d| WINDOW_MS + d)) {
        assert_eq!(here.verify(&key, at).unwrap().project_id, "p");
    }
    key_reads(&kv)
}

#[test]
fn a_verified_key_is_answered_from_memory_while_the_log_is_live_renewed_after_50_s() {
    let feed = MemoryFeed::default();
    assert_eq!(reads_for_repeated_use(feed, &[1, RENEW_AFTER_MS - 1]), 1);
    let feed = MemoryFeed::default();
    assert_eq!(
        reads_for_repeated_use(feed, &[1, RENEW_AFTER_MS]),
        2,
        "renewed after the answer at 50 s"
    );
    let feed = MemoryFeed::default();
    assert_eq!(
        reads_for_repeated_use(feed, &[1, CACHED_FOR_MS]),
        2,
        "read again after a minute"
    );
}

#[test]
fn a_key_in_steady_use_is_read_again_only_in_the_background() {
    let kv = Yielding(MemoryStore::new()); // each read lets the other requests in flight run
    let key = crate::repo::kv_only_key(&kv.0, 7);
    let feed = MemoryFeed::default();
    let here = Location::new(&kv, &feed);
    // One request reads KV; then eight requests in flight every second for five minutes: one
    // renewal after the answer every RENEW_AFTER_MS, and no request finds its read expired.
    let start = WINDOW_MS;
    assert!(block_on(here.verify_unrenewed(&key, start)).is_ok());
    let minutes = 5;
    for second in 1..60 * minutes {
        let now = start + second * 1_000;
        let before = key_reads(&kv.0);
        let answers = block_on(join_all((0..8).map(|_| here.verify_unrenewed(&key, now))));
        assert!(answers.iter().all(Result::is_ok));
        let in_requests = key_reads(&kv.0) - before;
        assert_eq!(in_requests, 0, "at {second} s");
        let due = here.overlay.borrow_mut().take_renewals();
        assert!(due.len() <= 1, "one renewal at a time, not one per request");
        assert_eq!(block_on(renew(&kv, &here.overlay, due, now)), None);
    }
    let renewals = ((60 * minutes * 1_000 - 1) / RENEW_AFTER_MS) as usize;
    assert_eq!(key_reads(&kv.0), 1 + renewals);
}

#[test]
fn without_renewals_every_request_in_flight_when_the_read_expires_reads_kv() {
    let kv = Yielding(MemoryStore::new());
    let key = crate::repo::kv_only_key(&kv.0, 7);
    let feed = MemoryFeed::default();
    let here = Location::new(&kv, &feed);
    block_on(here.verify_unrenewed(&key, WINDOW_MS)).unwrap();
    let expired = WINDOW_MS + CACHED_FOR_MS;
    let _ = here.overlay.borrow_mut().take_renewals(); // and never run
    let answers = block_on(join_all(
        (0..8).map(|_| here.verify_unrenewed(&key, expired)),
    ));
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(key_reads(&kv.0), 1 + 8, "eight requests, eight reads");
}

#[test]
fn a_renewal_that_fails_is_logged_and_leaves_the_kept_read_to_expire() {
    let kv = MemoryStore::new();
    let key = crate::repo::kv_only_key(&kv, 7);
    let feed = MemoryFeed::default();
    let here = Location::new(&kv, &feed);
    let (claimed, due) = here.claim_a_renewal(&key, WINDOW_MS);
    kv.fail_from(0, Some(Op::Get));
    let logged = block_on(renew(&kv, &here.overlay, due, claimed)).unwrap();
    assert!(
        logged.starts_with("renewing 1 kept KV read(s) failed"),
        "{logged}"
    );
    // Still answered from memory until the minute is up; then KV is asked, and fails closed.
    assert!(block_on(here.verify_unrenewed(&key, WINDOW_MS + CACHED_FOR_MS - 1)).is_ok());
    let refused = block_on(here.verify_unrenewed(&key, WINDOW_MS + CACHED_FOR_MS));
    assert_eq!(refused.unwrap_err().code(), "unavailable");
}

/// An isolate keeps a read of an old key; its renewal is claimed and its KV read begins (the
/// key still active); then the isolate revokes the key in KV alone; then the renewal lands,
/// kept through [`Overlay::renewed`] or, with `unguarded`, as a plain read. See
/// [`granted_after_own_revoke_during_a_read`] for what is returned.
fn granted_after_own_revoke_during_a_renewal(unguarded: bool) -> Vec<Millis> {
    granted_after_own_revoke_during_a_read(|here, key, id, t| {
        let (claimed, due) = here.claim_a_renewal(key, t);
        let as_read_when_claimed = Replica::new(here.store);
        revoke_unlogged(here, id, claimed + 1);
        if unguarded {
            let repo = Repo::new(&as_read_when_claimed);
            let stale = block_on(repo.key_by_hash(&due[0])).unwrap().unwrap();
            let mut overlay = here.overlay.borrow_mut();
            overlay.remember(due[0].clone(), stale, claimed);
        } else {
            let renewed = renew(&as_read_when_claimed, &here.overlay, due, claimed);
            assert_eq!(block_on(renewed), None);
        }
    })
}

#[test]
fn a_renewal_landing_after_the_isolates_own_revoke_is_dropped() {
    assert_eq!(
        granted_after_own_revoke_during_a_renewal(false),
        Vec::<Millis>::new()
    );
}

#[test]
fn a_renewal_kept_as_a_plain_read_after_the_isolates_own_revoke_grants_the_key_again() {
    assert!(!granted_after_own_revoke_during_a_renewal(true).is_empty());
}

/// A far location keeps a read of a key; its renewal is claimed, and its KV read, begun then
/// (the key still active), lands four and a half minutes later, stamped with when it began or,
/// with `stamp_landing`, with when it landed; meanwhile the key is revoked elsewhere, the log
/// settles it and the far location's KV converges as KV's bound says. The far location
/// verifies the key every second for two windows; returns the times it was granted after the
/// revoke was due everywhere ([`revoke_bound`]).
fn granted_after_revoke_with_a_slow_renewal(stamp_landing: bool) -> Vec<Millis> {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed_settled(&near);
    let far_kv = Replica::new(&kv);
    let far = Location::new(&far_kv, &feed);
    let (claimed, slow) = far.claim_a_renewal(&key, WINDOW_MS);
    let as_read_when_claimed = Replica::new(&kv);
    let revoked_at = claimed + 1;
    block_on(revoke_key(&near.keys(), &id, revoked_at)).unwrap();
    let landed = claimed + 270_000;
    let settled = revoked_at + SETTLE_AFTER_MS;
    let converged = settled + KV_CONVERGENCE_MS;
    let mut slow = Some(slow);
    let (mut settle_due, mut converge_due) = (true, true);
    let mut granted = Vec::new();
    for now in (claimed + 1_000..revoked_at + 2 * WINDOW_MS).step_by(1_000) {
        if settle_due && now >= settled {
            block_on(settle(&feed.log, &near.keys().repo, now));
            settle_due = false;
        }
        if converge_due && now >= converged {
            far_kv.catch_up();
            converge_due = false;
        }
        if now >= landed {
            if let Some(due) = slow.take() {
                let stamp = if stamp_landing { landed } else { claimed };
                let renewed = renew(&as_read_when_claimed, &far.overlay, due, stamp);
                assert_eq!(block_on(renewed), None);
            }
        }
        let answer = block_on(far.verify_unrenewed(&key, now));
        if answer.is_ok() && now >= revoked_at + revoke_bound(INTERVAL) {
            granted.push(now);
        }
        let due = far.overlay.borrow_mut().take_renewals();
        assert_eq!(block_on(renew(&far_kv, &far.overlay, due, now)), None);
    }
    granted
}

#[test]
fn a_renewed_read_never_grants_a_key_revoked_since() {
    assert_eq!(
        granted_after_revoke_with_a_slow_renewal(false),
        Vec::<Millis>::new()
    );
}

#[test]
fn a_renewal_stamped_when_it_lands_outlives_the_revoke_in_the_overlay() {
    // Stamped when it landed, the read begun before KV converged would be kept past the
    // revoke's place in the overlay.
    assert!(!granted_after_revoke_with_a_slow_renewal(true).is_empty());
}

#[test]
fn without_the_log_every_verify_reads_kv() {
    assert_eq!(reads_for_repeated_use(NoFeed, &[1, 2]), 3);
}

#[test]
fn a_rotated_key_answered_from_memory_stops_exactly_at_its_grace_end() {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let near = Location::new(&kv, &feed);
    let (old_key, id) = seed(&near, 0);
    let grace_end = WINDOW_MS + 30_000;
    block_on(rotate_key(&near.keys(), &id, grace_end - 1, None, 1)).unwrap();
    block_on(settle(&feed.log, &near.keys().repo, 1 + SETTLE_AFTER_MS));
    let far = Location::new(&kv, &feed);
    let before = key_reads(&kv);
    let at = |t: Millis| {
        far.verify(&old_key, t)
            .map(|g| g.status)
            .map_err(|e| e.code())
    };
    assert_eq!(at(WINDOW_MS + 1), Ok(KeyStatus::Grace));
    assert_eq!(at(grace_end - 1), Ok(KeyStatus::Grace));
    assert_eq!(at(grace_end), Err("key_expired"));
    assert_eq!(
        key_reads(&kv) - before,
        1,
        "one KV read; the rest from memory"
    );
}

/// A distant location verifies a key (reading KV at `WINDOW_MS`, after its creation left the
/// log); then the key is revoked elsewhere; then that location verifies it again at each of
/// `later`. With `log_down` the log stops answering just after the revoke, and the far KV has
/// converged by then; otherwise the far KV stays stale.
fn far_verifies_after_revoke(log_down: bool, later: &[Millis]) -> Vec<Result<Grant, ApiError>> {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed_settled(&near);
    let far_kv = Replica::new(&kv);
    let far = Location::new(&far_kv, &feed);
    assert!(far.verify(&key, WINDOW_MS).is_ok());
    block_on(revoke_key(&near.keys(), &id, WINDOW_MS + 1)).unwrap();
    if log_down {
        feed.unreachable.set(true);
        far_kv.catch_up();
    }
    later
        .iter()
        .map(|d| far.verify(&key, WINDOW_MS + d))
        .collect()
}

#[test]
fn a_read_kept_in_memory_gives_way_to_a_revoke_at_the_next_refresh() {
    let later = [2, INTERVAL, INTERVAL + 1, CACHED_FOR_MS - 1];
    let codes: Vec<_> = far_verifies_after_revoke(false, &later)
        .into_iter()
        .map(|r| r.err().map(|e| e.code()))
        .collect();
    // Until the next refresh lands the far location has not heard of the revoke: the request
    // that starts it (in the background) is still answered from before.
    assert_eq!(
        codes,
        [None, None, Some("key_revoked"), Some("key_revoked")]
    );
}

#[test]
fn with_the_log_unreachable_memory_answers_for_two_intervals_then_kv_alone() {
    let codes: Vec<_> = far_verifies_after_revoke(true, &[INTERVAL, 2 * INTERVAL])
        .into_iter()
        .map(|r| r.err().map(|e| e.code()))
        .collect();
    assert_eq!(codes, [None, Some("key_revoked")]);
}

#[test]
fn a_revoke_the_log_cannot_settle_stays_refused_far_away_past_the_window() {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed_settled(&near);
    let far_kv = Replica::new(&kv); // never sees the revoke below
    let far = Location::new(&far_kv, &feed);
    block_on(revoke_key(&near.keys(), &id, WINDOW_MS)).unwrap();
    kv.fail_from(0, Some(Op::Put)); // the log's own KV writes fail from now on
    let (_, failures) = block_on(settle(
        &feed.log,
        &near.keys().repo,
        WINDOW_MS + SETTLE_AFTER_MS,
    ));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        far.verify(&key, 3 * WINDOW_MS).unwrap_err().code(),
        "key_revoked"
    );
}

/// Two admin calls at once, interleaving at every storage step.
fn race<A, B>(a: A, b: B) -> (A::Output, B::Output)
where
    A: std::future::Future,
    B: std::future::Future,
{
    block_on(together(a, b))
}

#[test]
fn two_rotations_of_one_key_at_once_issue_exactly_one_successor() {
    let kv = Yielding(MemoryStore::new());
    let feed = MemoryFeed::default();
    let here = Location::new(&kv, &feed);
    let (old_key, id) = seed(&here, 0);
    let (a, b) = race(
        rotate_key(&here.keys(), &id, GRACE, None, 5),
        rotate_key(&here.keys(), &id, GRACE, None, 5),
    );
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won.value, lost),
        other => panic!("exactly one rotation must win: {other:?}"),
    };
    assert_eq!(lost.code(), "key_not_rotatable");
    let previous = won.previous.unwrap();
    assert_eq!(
        previous.rotated_to.as_deref(),
        Some(won.api_key.id.as_str())
    );
    assert_eq!(
        here.verify(won.key.expose(), 6).unwrap().key_id,
        won.api_key.id
    );
    assert_eq!(here.verify(&old_key, 6).unwrap().status, KeyStatus::Grace);
}

#[test]
fn rotate_and_revoke_at_once_leave_the_key_revoked_in_either_order() {
    for revoke_first in [true, false] {
        let kv = Yielding(MemoryStore::new());
        let feed = MemoryFeed::default();
        let here = Location::new(&kv, &feed);
        let (old_key, id) = seed(&here, 0);
        let (rotated, revoked) = if revoke_first {
            let (r, v) = race(
                revoke_key(&here.keys(), &id, 5),
                rotate_key(&here.keys(), &id, GRACE, None, 5),
            );
            (v, r)
        } else {
            race(
                rotate_key(&here.keys(), &id, GRACE, None, 5),
                revoke_key(&here.keys(), &id, 5),
            )
        };
        assert_eq!(revoked.unwrap().value.status, KeyStatus::Revoked);
        if let Err(e) = &rotated {
            assert_eq!(e.code(), "key_not_rotatable");
        }
        assert_eq!(here.verify(&old_key, 6).unwrap_err().code(), "key_revoked");
        // Whatever order the KV writes landed in, the log's settle writes the winner to KV.
        block_on(settle(&feed.log, &here.keys().repo, 5 + SETTLE_AFTER_MS));
        let in_kv = block_on(here.keys().repo.key_by_id(&id)).unwrap().unwrap();
        assert!(
            in_kv.revoked_at.is_some(),
            "KV ends revoked (revoke_first={revoke_first})"
        );
    }
}

#[test]
fn concurrent_creates_all_land_work_and_are_listed() {
    let kv = Yielding(MemoryStore::new());
    let feed = MemoryFeed::default();
    let here = Location::new(&kv, &feed);
    seed(&here, 0);
    let keys = here.keys();
    let creates = (0..20).map(|i| create_key(&keys, "p", "burst", KeyOptions::default(), i));
    let issued: Vec<_> = block_on(join_all(creates))
        .into_iter()
        .map(|done| done.unwrap().value)
        .collect();
    let listed = block_on(list_keys(&here.keys(), &KeyFilter::project("p"), 100)).unwrap();
    let listed: Vec<KeyView> = listed.into_iter().map(|(_, view)| view).collect();
    assert_eq!(listed.len(), 21);
    for key in &issued {
        assert!(listed.iter().any(|k| k.id == key.api_key.id));
        assert!(here.verify(key.key.expose(), 100).is_ok());
    }
}

#[test]
fn kv_failure_after_the_commit_is_served_from_the_log_and_settled_later() {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let here = Location::new(&kv, &feed);
    seed(&here, 0);
    kv.fail_from(0, Some(crate::store::Op::Put));
    let done = block_on(create_key(
        &here.keys(),
        "p",
        "late",
        KeyOptions::default(),
        10,
    ))
    .unwrap();
    assert!(done.warning.unwrap().contains("settle"));
    let key = done.value.key.expose().to_owned();
    let listed = block_on(list_keys(&here.keys(), &KeyFilter::project("p"), 11)).unwrap();
    let listed: Vec<KeyView> = listed.into_iter().map(|(_, view)| view).collect();
    assert!(
        listed.iter().any(|k| k.id == done.value.api_key.id),
        "listed from the log"
    );
    let far = Location::new(&kv, &feed);
    assert!(far.verify(&key, 11).is_ok(), "served from the log");
    kv.heal();
    block_on(settle(&feed.log, &here.keys().repo, 10 + SETTLE_AFTER_MS));
    let hash = ApiKey::parse(&key).unwrap().hash();
    assert!(
        block_on(here.keys().repo.key_by_hash(&hash))
            .unwrap()
            .is_some(),
        "now in KV"
    );
}

// Issue 16 §3: an overlay the log has stopped answering may only refuse, never grant against KV.

/// A far isolate learned a key from the log (its creation: "active"); the key is revoked near
/// at 60 s; the log stops answering; the far KV catches up. From 70 s on the far overlay is
/// not live, and its "active" must not win over KV's "revoked" until the change leaves its
/// window.
#[test]
fn a_stale_overlay_does_not_grant_a_key_kv_says_is_revoked() {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed(&near, 0);
    let far_kv = Replica::new(&kv);
    let far = Location::new(&far_kv, &feed);
    assert!(
        far.verify(&key, INTERVAL).is_ok(),
        "the far overlay learns the key"
    );
    block_on(revoke_key(&near.keys(), &id, 60_000)).unwrap();
    feed.unreachable.set(true);
    far_kv.catch_up();
    for at in [70_000, WINDOW_MS / 2, WINDOW_MS - 1] {
        let refused = far.verify(&key, at).unwrap_err();
        assert_eq!(refused.code(), "key_revoked", "at {at}");
    }
}

/// The twin for creations: a key only the log knows (its KV write failed after the commit, and
/// the log, which would write it to KV, stopped answering) is granted while the far overlay is
/// live, and refused as unknown once it is not: KV alone decides, and KV has never seen it.
#[test]
fn a_stale_overlay_does_not_grant_a_key_kv_has_never_seen() {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let near = Location::new(&kv, &feed);
    seed(&near, 0);
    kv.fail_from(0, Some(Op::Put));
    let done = block_on(create_key(
        &near.keys(),
        "p",
        "log only",
        KeyOptions::default(),
        10,
    ))
    .unwrap();
    assert!(done.warning.is_some(), "KV did not take it");
    let key = done.value.key.expose().to_owned();
    let far = Location::new(&kv, &feed);
    assert!(
        far.verify(&key, INTERVAL).is_ok(),
        "granted from the live overlay"
    );
    feed.unreachable.set(true);
    for at in [70_000, WINDOW_MS - 1] {
        let refused = far.verify(&key, at).unwrap_err();
        assert_eq!(refused.code(), "invalid_key", "at {at}");
    }
}

// Issue 16 §4: a revocation does not depend on the change log being reachable.

/// The isolate that made an admin call, about to be evicted: nothing it holds in memory
/// survives, so only what it wrote to KV and the log counts.
fn revoke_from_a_passing_isolate<S: Store, F: ChangeFeed>(
    store: &S,
    feed: &F,
    id: &str,
    now: Millis,
) -> Done<crate::record::KeyView> {
    let passing = Location::new(store, feed);
    block_on(revoke_key(&passing.keys(), id, now)).unwrap()
}

/// The version of key `id` the log holds now, if it holds one.
fn logged(feed: &MemoryFeed, id: &str, now: Millis) -> Option<KeyRecord> {
    let recent = feed.log.borrow().recent(now);
    recent.into_iter().map(|c| c.record).find(|r| r.id == id)
}

#[test]
fn with_the_log_unreachable_a_revoke_lands_in_kv_while_create_and_rotate_refuse() {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed(&near, 0);
    let other = block_on(create_key(
        &near.keys(),
        "p",
        "other",
        KeyOptions::default(),
        0,
    ))
    .unwrap();
    feed.unreachable.set(true);
    let done = block_on(revoke_key(&near.keys(), &id, 10)).unwrap();
    assert_eq!(done.value.status, KeyStatus::Revoked);
    let line = done.warning.unwrap();
    assert!(line.contains("change log unreachable"), "{line}");
    assert!(
        line.contains(&id),
        "the operator's log names the key: {line}"
    );
    assert_eq!(near.verify(&key, 11).unwrap_err().code(), "key_revoked");
    let stored = block_on(near.keys().repo.key_by_id(&id)).unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(10));
    let events = block_on(audit_log(&near.keys().repo, Some("p"))).unwrap();
    assert!(events.iter().any(|e| e.action == "key.revoked"));
    let created = block_on(create_key(
        &near.keys(),
        "p",
        "new",
        KeyOptions::default(),
        12,
    ));
    assert_eq!(
        created.unwrap_err().status(),
        503,
        "no commit point, no new key"
    );
    let rotated = block_on(rotate_key(
        &near.keys(),
        &other.value.api_key.id,
        GRACE,
        None,
        12,
    ));
    assert_eq!(rotated.unwrap_err().status(), 503);
}

/// Asserts that `key` is refused as revoked at `here` at `at`.
fn refused<S: Store, F: ChangeFeed>(key: &str, at: Millis, here: &Location<'_, S, F>, who: &str) {
    let answer = here.verify(key, at).map(|g| g.status).map_err(|e| e.code());
    assert_eq!(answer, Err("key_revoked"), "{who} at {at}");
}

/// A key created at 0 (its creation, "active", is in the log until settled), revoked at 10 s
/// while the log cannot be reached, by an isolate that is then evicted (`isolate_stays`:
/// false) or that keeps serving. KV converges everywhere; the log answers again at 20 s.
/// Whatever comes after — overlays refreshed from the log, the log's settle, a rotation, the
/// window passing — the key is never granted again.
fn revoke_outside_the_log_then_everything_after(isolate_stays: bool) {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed(&near, 0);
    let far_kv = Replica::new(&kv);
    let far = Location::new(&far_kv, &feed);
    assert!(
        far.verify(&key, INTERVAL).is_ok(),
        "known far away, read kept"
    );
    feed.unreachable.set(true);
    let revoking = Location::new(&kv, &feed);
    if isolate_stays {
        block_on(revoke_key(&revoking.keys(), &id, 10_000)).unwrap();
    } else {
        revoke_from_a_passing_isolate(&kv, &feed, &id, 10_000);
    }
    far_kv.catch_up();
    feed.unreachable.set(false);
    // The revoking isolate (if it is still there) commits the revocation at its next refresh.
    refused(&key, 20_000, &revoking, "the revoking isolate");
    let in_log = logged(&feed, &id, 20_001).unwrap();
    assert_eq!(in_log.revoked_at.is_some(), isolate_stays, "{in_log:?}");
    // A fresh isolate: the log still says "active" unless told, KV says revoked.
    refused(&key, 20_000, &Location::new(&kv, &feed), "a fresh isolate");
    // Far away, once the read it kept from before the revoke has expired.
    refused(&key, INTERVAL + CACHED_FOR_MS, &far, "far away");
    let rotated = block_on(rotate_key(&near.keys(), &id, GRACE, None, 30_000));
    assert_eq!(rotated.unwrap_err().code(), "key_not_rotatable");
    assert!(
        logged(&feed, &id, 30_001).unwrap().revoked_at.is_some(),
        "the log took it"
    );
    let (_, failures) = block_on(settle(
        &feed.log,
        &near.keys().repo,
        SETTLE_AFTER_MS + 30_000,
    ));
    assert_eq!(failures, Vec::<String>::new());
    let stored = block_on(near.keys().repo.key_by_id(&id)).unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(10_000), "KV stays revoked");
    far_kv.catch_up();
    for at in [SETTLE_AFTER_MS + 30_001, WINDOW_MS + 30_000, 3 * WINDOW_MS] {
        refused(&key, at, &far, "far away");
        refused(&key, at, &Location::new(&kv, &feed), "a fresh isolate");
    }
}

#[test]
fn a_revoke_made_while_the_log_is_unreachable_is_never_undone() {
    revoke_outside_the_log_then_everything_after(false);
}

#[test]
fn a_revoke_made_while_the_log_is_unreachable_reaches_it_from_the_revoking_isolate() {
    revoke_outside_the_log_then_everything_after(true);
}

#[test]
fn the_logs_settle_never_writes_a_working_version_over_a_revocation_in_kv() {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed(&near, 0);
    feed.unreachable.set(true);
    revoke_from_a_passing_isolate(&kv, &feed, &id, 10);
    feed.unreachable.set(false);
    assert_eq!(
        logged(&feed, &id, 11).unwrap().revoked_at,
        None,
        "the log never heard"
    );
    let listed = block_on(list_keys(&near.keys(), &KeyFilter::project("p"), 12)).unwrap();
    let listed: Vec<KeyView> = listed.into_iter().map(|(_, view)| view).collect();
    let shown = listed.iter().find(|k| k.id == id).unwrap();
    assert_eq!(
        shown.status,
        KeyStatus::Revoked,
        "the list shows KV's revocation"
    );
    let (_, failures) = block_on(settle(&feed.log, &near.keys().repo, SETTLE_AFTER_MS));
    assert_eq!(failures, Vec::<String>::new());
    let stored = block_on(near.keys().repo.key_by_id(&id)).unwrap().unwrap();
    assert_eq!(
        stored.revoked_at,
        Some(10),
        "not overwritten by the creation"
    );
    let adopted = logged(&feed, &id, SETTLE_AFTER_MS + 1).unwrap();
    assert_eq!(
        adopted.revoked_at,
        Some(10),
        "the log adopted the revocation"
    );
    let fresh = Location::new(&kv, &feed);
    assert_eq!(
        fresh.verify(&key, SETTLE_AFTER_MS + 1).unwrap_err().code(),
        "key_revoked"
    );
}

/// A change log that stops answering once it has taken `commits` more commits.
struct GoesAway {
    log: MemoryFeed,
    commits: std::cell::Cell<usize>,
}

impl ChangeFeed for GoesAway {
    fn durable(&self) -> bool {
        true
    }

    async fn commit(
        &self,
        writes: &[Write],
        now: Millis,
    ) -> Result<Result<(), crate::changes::Conflict>, crate::store::StoreError> {
        let done = self.log.commit(writes, now).await;
        if matches!(done, Ok(Ok(()))) {
            self.commits.set(self.commits.get().saturating_sub(1));
            self.log.unreachable.set(self.commits.get() == 0);
        }
        done
    }

    async fn recent(
        &self,
        now: Millis,
    ) -> Result<Vec<crate::changes::Change>, crate::store::StoreError> {
        self.log.recent(now).await
    }
}

#[test]
fn a_rotation_racing_a_revoke_as_the_log_goes_away_never_revives_the_key() {
    for revoke_first in [true, false] {
        let kv = Yielding(MemoryStore::new());
        let feed = GoesAway {
            log: MemoryFeed::default(),
            commits: std::cell::Cell::new(usize::MAX),
        };
        let here = Location::new(&kv, &feed);
        let (old_key, id) = seed(&here, 0);
        feed.commits.set(1); // the first of the two commits below is the log's last
        let (rotated, revoked) = if revoke_first {
            let (r, v) = race(
                revoke_key(&here.keys(), &id, 5),
                rotate_key(&here.keys(), &id, GRACE, None, 5),
            );
            (v, r)
        } else {
            race(
                rotate_key(&here.keys(), &id, GRACE, None, 5),
                revoke_key(&here.keys(), &id, 5),
            )
        };
        let label = format!(
            "revoke_first={revoke_first}, rotated: {:?}",
            rotated.is_ok()
        );
        assert_eq!(revoked.unwrap().value.status, KeyStatus::Revoked, "{label}");
        assert_eq!(
            here.verify(&old_key, 6).unwrap_err().code(),
            "key_revoked",
            "{label}"
        );
        feed.log.unreachable.set(false);
        feed.commits.set(usize::MAX);
        for at in [
            INTERVAL + 6,
            SETTLE_AFTER_MS + 6,
            WINDOW_MS + 6,
            3 * WINDOW_MS,
        ] {
            block_on(settle(&feed.log.log, &here.keys().repo, at));
            let anywhere = Location::new(&kv, &feed);
            for (who, place) in [("here", &here), ("a fresh isolate", &anywhere)] {
                let answer = place.verify(&old_key, at).map_err(|e| e.code());
                assert_eq!(answer.err(), Some("key_revoked"), "{label}: {who} at {at}");
            }
        }
        let stored = block_on(here.keys().repo.key_by_id(&id)).unwrap().unwrap();
        assert!(stored.revoked_at.is_some(), "{label}: KV ends revoked");
    }
}

// Issue 16 §6: a well-formed key KV does not hold costs one KV read about every 50 s per isolate.

/// Verifies `key` (unknown to KV) at `WINDOW_MS + d` for each `d`; returns KV reads made.
fn reads_for_an_unknown_key<F: ChangeFeed>(feed: F, later: &[Millis]) -> usize {
    let kv = MemoryStore::new();
    let here = Location::new(&kv, &feed);
    let unknown = ApiKey::from_secret_bytes(&[0x77; 32]);
    for d in later {
        let refused = here.verify(unknown.expose(), WINDOW_MS + d).unwrap_err();
        assert_eq!(refused.code(), "invalid_key");
    }
    key_reads(&kv)
}

#[test]
fn an_unknown_key_costs_one_kv_read_every_50_s_while_the_log_is_live() {
    let repeated = [0, 1, 2, INTERVAL * 3, RENEW_AFTER_MS - 1];
    assert_eq!(
        reads_for_an_unknown_key(MemoryFeed::default(), &repeated),
        1
    );
    let renewed = [0, RENEW_AFTER_MS, CACHED_FOR_MS];
    assert_eq!(
        reads_for_an_unknown_key(MemoryFeed::default(), &renewed),
        2,
        "renewed after the answer at 50 s, so still kept at 60 s"
    );
    let again = [0, 1, CACHED_FOR_MS];
    assert_eq!(reads_for_an_unknown_key(MemoryFeed::default(), &again), 2);
}

#[test]
fn without_a_live_log_every_request_for_an_unknown_key_reads_kv() {
    let down = MemoryFeed::default();
    down.unreachable.set(true);
    assert_eq!(reads_for_an_unknown_key(down, &[0, 1, 2]), 3);
    assert_eq!(reads_for_an_unknown_key(NoFeed, &[0, 1, 2]), 3);
}

#[test]
fn a_key_created_after_its_miss_was_kept_is_granted_from_the_overlay() {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let far_kv = Replica::new(&kv); // never sees the key below
    let far = Location::new(&far_kv, &feed);
    let key = ApiKey::from_secret_bytes(&[0x78; 32]);
    assert_eq!(
        far.verify(key.expose(), 0).unwrap_err().code(),
        "invalid_key"
    );
    let record = KeyRecord::new("key_late".into(), &key, "k".into(), "p".into(), 1, None);
    let created = [Write {
        prev: None,
        next: record,
    }];
    feed.log.borrow_mut().commit(&created, 1).unwrap(); // created elsewhere
                                                        // The request due for a refresh starts it in the background and answers from before.
    let due = far.verify(key.expose(), INTERVAL).unwrap_err();
    assert_eq!(due.code(), "invalid_key");
    for at in [INTERVAL + 1, RENEW_AFTER_MS - 1] {
        assert_eq!(
            far.verify(key.expose(), at).unwrap().key_id,
            "key_late",
            "at {at}"
        );
    }
    assert_eq!(
        count_key_reads(&far_kv.log()),
        1,
        "the miss, kept: nothing read since"
    );
}

// Issue 20: the refresh of an isolate waking from idle, and the requests that arrive during it.

/// A change log whose answers take a moment (one pending poll) to arrive.
struct Slow(MemoryFeed);

impl ChangeFeed for Slow {
    fn durable(&self) -> bool {
        true
    }

    async fn commit(
        &self,
        writes: &[Write],
        now: Millis,
    ) -> Result<Result<(), crate::changes::Conflict>, crate::store::StoreError> {
        self.0.commit(writes, now).await
    }

    async fn recent(
        &self,
        now: Millis,
    ) -> Result<Vec<crate::changes::Change>, crate::store::StoreError> {
        let answer = self.0.recent(now).await;
        crate::store::yield_once().await;
        answer
    }
}

/// A far location verified a key (KV's record kept), then idled while the key was revoked
/// elsewhere; its KV has not converged. Two requests arrive at once as it wakes: the first
/// finds the overlay no longer live and refreshes it; the second arrives during that refresh.
fn two_requests_as_an_isolate_wakes(feed: Slow) -> [Result<Grant, ApiError>; 2] {
    let kv = MemoryStore::new();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed_settled(&Location::new(&kv, &feed.0));
    let far_kv = Replica::new(&kv);
    let far = Location::new(&far_kv, &feed);
    assert!(far.verify(&key, WINDOW_MS).is_ok());
    block_on(revoke_key(&near.keys(), &id, WINDOW_MS + 1_000)).unwrap();
    let wake = WINDOW_MS + 5 * INTERVAL;
    let (first, second) = block_on(together(
        far.verify_async(&key, wake),
        far.verify_async(&key, wake),
    ));
    [first, second]
}

#[test]
fn requests_during_the_refresh_of_an_isolate_waking_from_idle_refuse_a_revoked_key() {
    let answers = two_requests_as_an_isolate_wakes(Slow(MemoryFeed::default()));
    let codes = answers.map(|r| r.err().map(|e| e.code()));
    assert_eq!(codes, [Some("key_revoked"), Some("key_revoked")]);
}

#[test]
fn without_awaiting_a_snapshot_a_request_during_the_wake_refresh_is_granted_from_kv() {
    // The twin: the second request answers from what the isolate holds, as it did before.
    let feed = Slow(MemoryFeed::default());
    let kv = MemoryStore::new();
    let near = Location::new(&kv, &feed);
    let (key, id) = seed_settled(&Location::new(&kv, &feed.0));
    let far_kv = Replica::new(&kv);
    let far = Location::new(&far_kv, &feed);
    assert!(far.verify(&key, WINDOW_MS).is_ok());
    block_on(revoke_key(&near.keys(), &id, WINDOW_MS + 1_000)).unwrap();
    let wake = WINDOW_MS + 5 * INTERVAL;
    let bearer = format!("Bearer {key}");
    let (first, second) = block_on(together(
        far.verify_async(&key, wake),
        authenticate(far.store, &far.overlay, Some(&bearer), wake),
    ));
    assert_eq!(first.unwrap_err().code(), "key_revoked");
    assert!(second.is_ok(), "KV alone, stale here, grants");
}

/// A key revoked at `revoked_at` (settled in KV long before, so only the log and KV know it);
/// a far location whose KV never converges verifies it every `every` ms from `WINDOW_MS`, its
/// isolate(s) served by `far_feed`. Returns the last instant the far location granted it.
fn last_grant_far_away<F: ChangeFeed>(
    log: &MemoryFeed,
    far_feed: &F,
    every: Millis,
    revoked_at: Millis,
) -> Option<Millis> {
    let kv = MemoryStore::new();
    let near = Location::new(&kv, log);
    let (key, id) = seed_settled(&near);
    let far_kv = Replica::new(&kv);
    let far = Location::new(&far_kv, far_feed);
    let mut last = None;
    let mut revoked = false;
    let mut at = WINDOW_MS;
    while at < revoked_at + 4 * revoke_bound(INTERVAL) {
        if !revoked && at >= revoked_at {
            block_on(revoke_key(&near.keys(), &id, revoked_at)).unwrap();
            revoked = true;
        }
        if far.verify(&key, at).is_ok() {
            last = Some(at);
        }
        at += every;
    }
    last
}

/// Request spacings: busy, every interval, just over, between one and two intervals (the
/// background refresh's worst case), idle spells.
const SPACINGS: [Millis; 8] = [7, 500, 1_999, 2_001, 3_001, 3_999, 4_001, 9_000];

#[test]
fn a_revoke_is_refused_far_away_within_two_intervals_whatever_the_request_spacing() {
    let mut worst = 0;
    for every in SPACINGS {
        for offset in [0, 1, 999, 1_500] {
            let log = MemoryFeed::default();
            let revoked_at = WINDOW_MS + 10_000 + offset;
            let last = last_grant_far_away(&log, &&log, every, revoked_at);
            let late = last.map_or(0, |t| t.saturating_sub(revoked_at));
            assert!(late < revoke_bound(INTERVAL), "every {every} ms: {last:?}");
            worst = worst.max(late);
        }
    }
    // The twin: one interval is not the bound (background refresh answers from before).
    assert!(worst >= INTERVAL, "worst {worst} ms");
}

/// The far location's copy of the log (the Cache API's, per data center): shared by its
/// isolates, each with its own overlay.
fn cached<C: NearbyCopy>(log: &MemoryFeed, copy: C) -> Cached<&MemoryFeed, C> {
    Cached {
        feed: log,
        copy,
        lifetime: INTERVAL,
    }
}

#[test]
fn a_revoke_is_refused_within_two_intervals_through_the_location_copy() {
    let mut worst = 0;
    for every in SPACINGS {
        for offset in [0, 1, 999, 1_500] {
            let log = MemoryFeed::default();
            let copy = cached(&log, MemoryCopy::default());
            let revoked_at = WINDOW_MS + 10_000 + offset;
            // Another isolate of the location fills the copy just before the revoke.
            let before = Snapshot {
                as_of: revoked_at - 1,
                changes: log.log.borrow().recent(revoked_at - 1),
            };
            *copy.copy.held.borrow_mut() = Some(before);
            let last = last_grant_far_away(&log, &copy, every, revoked_at);
            let late = last.map_or(0, |t| t.saturating_sub(revoked_at));
            assert!(late < revoke_bound(INTERVAL), "every {every} ms: {last:?}");
            worst = worst.max(late);
        }
    }
    assert!(worst >= INTERVAL, "worst {worst} ms");
}

/// A location copy that loses its snapshot's stamp: what it holds looks taken when it is read.
#[derive(Default)]
struct Unstamped(MemoryCopy);

impl NearbyCopy for Unstamped {
    async fn get(&self) -> Option<crate::changes::Snapshot> {
        let held = self.0.get().await?;
        Some(crate::changes::Snapshot {
            as_of: Millis::MAX, // read as "now" by `Cached`
            ..held
        })
    }

    async fn put(&self, snapshot: &crate::changes::Snapshot, lifetime: Millis) {
        self.0.put(snapshot, lifetime).await
    }

    async fn claim(&self, _for_ms: Millis) -> bool {
        false
    }
}

#[test]
fn a_location_copy_without_its_stamp_grants_a_revoked_key_indefinitely() {
    let log = MemoryFeed::default();
    let copy = cached(&log, Unstamped::default());
    let revoked_at = WINDOW_MS + 10_000;
    *copy.copy.0.held.borrow_mut() = Some(Snapshot {
        as_of: revoked_at - 1,
        changes: Vec::new(),
    });
    let last = last_grant_far_away(&log, &copy, 500, revoked_at).unwrap();
    assert!(last - revoked_at > 3 * revoke_bound(INTERVAL), "{last}");
}

/// A background refresh that never lands (the log slow): started at `INTERVAL` after a
/// refresh, it is still under way when the overlay stops being live.
#[test]
fn a_background_refresh_still_under_way_does_not_extend_what_the_overlay_vouches_for() {
    let log = MemoryFeed::default();
    let kv = MemoryStore::new();
    let near = Location::new(&kv, &log);
    let (key, id) = seed_settled(&near);
    let far_kv = Replica::new(&kv);
    let far = Location::new(&far_kv, &log);
    assert!(far.verify(&key, WINDOW_MS).is_ok());
    // Due: marked started, its answer never comes.
    assert!(begin_background(
        &far.overlay,
        &log,
        WINDOW_MS + INTERVAL,
        INTERVAL
    ));
    block_on(revoke_key(&near.keys(), &id, WINDOW_MS + INTERVAL + 1)).unwrap();
    let lapsed = WINDOW_MS + revoke_bound(INTERVAL);
    let bearer = format!("Bearer {key}");
    let unchecked = authenticate(far.store, &far.overlay, Some(&bearer), lapsed);
    assert!(
        block_on(unchecked).is_ok(),
        "the twin: without the live check, the kept read of KV grants"
    );
    assert_eq!(
        far.verify(&key, lapsed).unwrap_err().code(),
        "key_revoked",
        "not live: the request awaits a snapshot of its own"
    );
}

// Reads in flight across the isolate's own write: a request's read, and a renewal's.

/// A store whose KV read answers what `began` held when it began, and runs `during` before it
/// lands (the isolate's other work meanwhile).
struct ReadAcross<'a, G: Fn()> {
    began: Replica<'a>,
    during: G,
}

impl<G: Fn()> Store for ReadAcross<'_, G> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let held = self.began.get(key).await;
        (self.during)();
        held
    }

    async fn put(&self, key: &str, value: &str, meta: Option<&str>) -> Result<(), StoreError> {
        self.began.put(key, value, meta).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<crate::store::Listed>, StoreError> {
        self.began.list(prefix).await
    }
}

/// An isolate's old key (out of the log's window) at `t`; `read(here, key, id, t)` has a request
/// or a renewal read the key while the isolate revokes it in KV alone (the log unreachable:
/// [`revoke_unlogged`]). Then the log answers again; returns the times in the minute after the
/// renewal was due that the isolate granted the key.
fn granted_after_own_revoke_during_a_read(
    read: impl Fn(&Location<'_, MemoryStore, MemoryFeed>, &str, &str, Millis),
) -> Vec<Millis> {
    let kv = MemoryStore::new();
    let feed = MemoryFeed::default();
    let here = Location::new(&kv, &feed);
    let (key, id) = seed_settled(&here);
    let t = 3 * WINDOW_MS;
    block_on(settle(&feed.log, &here.keys().repo, t)); // the creation leaves the log
    read(&here, &key, &id, t);
    feed.unreachable.set(false);
    let later = (t + RENEW_AFTER_MS + 500..t + RENEW_AFTER_MS + CACHED_FOR_MS).step_by(500);
    later
        .filter(|&now| here.verify(&key, now).is_ok())
        .collect()
}

/// The revoke of key `id` at `here`, at `at`, in KV alone (the log made unreachable).
fn revoke_unlogged(here: &Location<'_, MemoryStore, MemoryFeed>, id: &str, at: Millis) {
    here.feed.unreachable.set(true);
    block_on(revoke_key(&here.keys(), id, at)).unwrap();
}

#[test]
fn a_request_read_in_flight_across_the_isolates_own_revoke_is_not_kept() {
    let granted = granted_after_own_revoke_during_a_read(|here, key, id, t| {
        block_on(before_verify(&here.overlay, here.feed, t, INTERVAL));
        let store = ReadAcross {
            began: Replica::new(here.store),
            during: || revoke_unlogged(here, id, t + 1),
        };
        let bearer = format!("Bearer {key}");
        // In flight when the revoke came: this one answer may still grant.
        assert!(block_on(authenticate(&store, &here.overlay, Some(&bearer), t)).is_ok());
    });
    assert_eq!(granted, Vec::<Millis>::new());
}

#[test]
fn a_renewal_in_flight_across_the_isolates_own_revoke_is_not_kept_over_a_later_read() {
    let granted = granted_after_own_revoke_during_a_read(|here, key, id, t| {
        let (claimed, due) = here.claim_a_renewal(key, t);
        // The renewal is run late, after a request that began before it found the overlay not
        // live (its read, once it begins, is stamped earlier than the renewal).
        let request_began = claimed + 2 * INTERVAL;
        let renewal_began = request_began + 10;
        let store = ReadAcross {
            began: Replica::new(here.store),
            during: || {
                revoke_unlogged(here, id, renewal_began + 10);
                here.feed.unreachable.set(false);
                // A refresh for another key: its snapshot drops the own change.
                let refreshed =
                    before_verify(&here.overlay, here.feed, renewal_began + 20, INTERVAL);
                assert_eq!(block_on(refreshed), None);
                let bearer = format!("Bearer {key}");
                let read = authenticate(here.store, &here.overlay, Some(&bearer), request_began);
                assert_eq!(block_on(read).unwrap_err().code(), "key_revoked");
            },
        };
        let renewed = renew(&store, &here.overlay, due, renewal_began);
        assert_eq!(block_on(renewed), None);
    });
    assert_eq!(granted, Vec::<Millis>::new());
}
