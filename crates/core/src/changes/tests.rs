//! The change log's compare-and-set, settling and pruning, and the overlay's refresh.

use super::*;
use crate::json_object;
use crate::key::ApiKey;
use pollster::block_on;

fn record(byte: u8) -> KeyRecord {
    let key = ApiKey::from_secret_bytes(&[byte; 32]);
    KeyRecord::new(format!("key_{byte}"), &key, "k".into(), "p".into(), 0, None)
}

fn revoked(r: &KeyRecord, at: Millis) -> KeyRecord {
    let mut r = r.clone();
    r.revoke(at);
    r
}

fn write(prev: Option<&KeyRecord>, next: &KeyRecord) -> Write {
    Write {
        prev: prev.cloned(),
        next: next.clone(),
    }
}

#[test]
fn commit_accepts_a_write_based_on_the_standing_version() {
    let mut log = ChangeLog::default();
    let a = record(1);
    assert!(log.commit(&[write(None, &a)], 10).is_ok());
    assert!(log.commit(&[write(Some(&a), &revoked(&a, 11))], 11).is_ok());
    assert_eq!(log.recent(12)[0].record.revoked_at, Some(11));
}

#[test]
fn commit_based_on_a_stale_version_loses_and_learns_the_standing_one() {
    let mut log = ChangeLog::default();
    let a = record(1);
    let mut rotated = a.clone();
    rotated.start_grace(5, 1000, "key_2").unwrap();
    log.commit(&[write(Some(&a), &rotated)], 5).unwrap();
    let lost = log.commit(&[write(Some(&a), &revoked(&a, 6))], 6);
    assert_eq!(lost, Err(Conflict(vec![rotated.clone()])));
    // Decided again on the version that stands, the revoke wins.
    assert!(log
        .commit(&[write(Some(&rotated), &revoked(&rotated, 7))], 7)
        .is_ok());
}

#[test]
fn a_failed_commit_writes_nothing() {
    let mut log = ChangeLog::default();
    let (a, b) = (record(1), record(2));
    log.commit(&[write(None, &a)], 1).unwrap();
    let before = log.clone();
    // The second write is stale: neither lands.
    assert!(log
        .commit(&[write(None, &b), write(None, &revoked(&a, 2))], 2)
        .is_err());
    assert_eq!(log, before);
}

#[test]
fn changes_settle_after_the_settle_delay_then_leave_after_the_window() {
    let mut log = ChangeLog::default();
    let a = record(1);
    log.commit(&[write(None, &a)], 0).unwrap();
    assert!(log.due_for_settling(SETTLE_AFTER_MS - 1).is_empty());
    assert_eq!(log.next_wakeup(0), Some(SETTLE_AFTER_MS));
    assert_eq!(log.due_for_settling(SETTLE_AFTER_MS), vec![a.clone()]);
    assert!(log.mark_settled(&a, SETTLE_AFTER_MS));
    assert!(log.due_for_settling(SETTLE_AFTER_MS).is_empty());
    assert_eq!(log.recent(WINDOW_MS - 1).len(), 1);
    assert!(log.prune(WINDOW_MS - 1).is_empty());
    assert_eq!(log.prune(WINDOW_MS), vec![a.hash.clone()]);
    assert!(log.recent(WINDOW_MS).is_empty());
    assert_eq!(log.next_wakeup(WINDOW_MS), None);
}

#[test]
fn an_unsettled_latest_version_is_never_pruned_and_retried_every_few_seconds() {
    let mut log = ChangeLog::default();
    let a = record(1);
    log.commit(&[write(None, &a)], 0).unwrap();
    log.prune(WINDOW_MS * 10);
    assert_eq!(log.due_for_settling(WINDOW_MS * 10), vec![a]);
    assert_eq!(
        log.next_wakeup(WINDOW_MS * 10),
        Some(WINDOW_MS * 10 + RETRY_AFTER_MS),
        "not at once, over and over"
    );
}

#[test]
fn settling_an_outdated_version_does_not_mark_the_latest() {
    let mut log = ChangeLog::default();
    let a = record(1);
    log.commit(&[write(None, &a)], 0).unwrap();
    log.commit(&[write(Some(&a), &revoked(&a, 1))], 1).unwrap();
    assert!(!log.mark_settled(&a, SETTLE_AFTER_MS));
    assert_eq!(
        log.due_for_settling(SETTLE_AFTER_MS + 1)[0].revoked_at,
        Some(1)
    );
}

#[test]
fn log_round_trips_through_its_persisted_entries() {
    let mut log = ChangeLog::default();
    let (a, b) = (record(1), record(2));
    log.commit(&[write(None, &a), write(None, &b)], 3).unwrap();
    let entries = [&a, &b].map(|r| log.entry(&r.hash).unwrap().clone());
    assert_eq!(ChangeLog::from_entries(entries), log);
}

fn hash(n: u32) -> KeyHash {
    KeyHash::from_hex(&format!("{n:064x}")).unwrap()
}

#[test]
fn touched_keys_come_sorted_and_once_each() {
    assert_eq!(sorted_unique(Vec::new()), Vec::<KeyHash>::new());
    let touched = vec![hash(2), hash(9), hash(1), hash(2), hash(9)];
    assert_eq!(sorted_unique(touched), [hash(1), hash(2), hash(9)]);
}

#[test]
fn log_rebuilt_from_entries_in_any_order_is_the_same_log() {
    let mut log = ChangeLog::default();
    let records: Vec<KeyRecord> = (1..=5).map(record).collect();
    for (at, r) in (1..).zip(&records) {
        log.commit(&[write(None, r)], at).unwrap();
    }
    let entries = records
        .iter()
        .rev()
        .map(|r| log.entry(&r.hash).unwrap().clone());
    assert_eq!(ChangeLog::from_entries(entries), log);
}

/// What a verify does to the overlay at `now`: awaits a refresh if not live, then runs the
/// background refresh if one is due (after its answer, in the worker).
fn serve<F: ChangeFeed>(overlay: &RefCell<Overlay>, feed: &F, now: Millis, interval: Millis) {
    block_on(async {
        before_verify(overlay, feed, now, interval).await;
        if begin_background(overlay, feed, now, interval) {
            refresh(overlay, feed, now, interval).await;
        }
    })
}

#[test]
fn overlay_refreshes_at_most_once_per_interval() {
    let feed = MemoryFeed::default();
    let overlay = RefCell::new(Overlay::default());
    let a = record(1);
    serve(&overlay, &feed, 0, 2_000);
    feed.log.borrow_mut().commit(&[write(None, &a)], 1).unwrap();
    serve(&overlay, &feed, 1_999, 2_000);
    assert!(
        overlay.borrow().get(&a.hash, 1_999).is_none(),
        "not due yet"
    );
    assert!(overlay.borrow().live(1_999), "answered from memory");
    serve(&overlay, &feed, 2_000, 2_000);
    assert_eq!(overlay.borrow().get(&a.hash, 2_000), Some(&a));
    assert!(
        overlay.borrow().get(&a.hash, 1 + WINDOW_MS).is_none(),
        "aged out"
    );
}

/// A log whose answer takes a moment to arrive (one pending poll): the answer is what the log
/// held when asked. Counts the questions.
#[derive(Default)]
struct SlowFeed {
    inner: MemoryFeed,
    asked: std::cell::Cell<u32>,
}

impl ChangeFeed for SlowFeed {
    fn durable(&self) -> bool {
        true
    }
    async fn commit(
        &self,
        writes: &[Write],
        now: Millis,
    ) -> Result<Result<(), Conflict>, StoreError> {
        self.inner.commit(writes, now).await
    }
    async fn recent(&self, now: Millis) -> Result<Vec<Change>, StoreError> {
        self.asked.set(self.asked.get() + 1);
        let answer = self.inner.recent(now).await;
        let mut waited = false;
        std::future::poll_fn(|cx| match std::mem::replace(&mut waited, true) {
            false => {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
            true => std::task::Poll::Ready(()),
        })
        .await;
        answer
    }
}

#[test]
fn own_write_during_a_refresh_outlives_the_answer_that_lacks_it() {
    let feed = SlowFeed::default();
    let overlay = RefCell::new(Overlay::default());
    let a = record(1);
    let revoke = [write(Some(&a), &revoked(&a, 10))];
    let meanwhile = async {
        // While the refresh waits for an answer taken before this commit.
        feed.inner.log.borrow_mut().commit(&revoke, 10).unwrap();
        overlay.borrow_mut().observe(&revoke, 10);
    };
    block_on(futures_util::future::join(
        refresh(&overlay, &feed, 10, 2_000),
        meanwhile,
    ));
    assert_eq!(feed.asked.get(), 1);
    assert_eq!(
        overlay.borrow().get(&a.hash, 11).unwrap().revoked_at,
        Some(10)
    );
}

/// An overlay that stays live: what it reads from KV is kept.
fn live_overlay() -> Overlay {
    Overlay {
        live_until: Millis::MAX,
        ..Overlay::default()
    }
}

#[test]
fn own_write_forgets_the_read_of_that_key() {
    let mut overlay = live_overlay();
    let a = record(1);
    overlay.remember(a.hash.clone(), a.clone(), 0);
    assert!(overlay.cached(&a.hash, 1).is_some());
    overlay.observe(&[write(Some(&a), &revoked(&a, 2))], 2);
    assert!(overlay.cached(&a.hash, 3).is_none());
}

#[test]
fn requests_during_a_background_refresh_do_not_each_ask_the_log() {
    let feed = SlowFeed::default();
    let overlay = RefCell::new(Overlay::default());
    let a = record(1);
    serve(&overlay, &feed, 0, 2_000);
    feed.inner
        .log
        .borrow_mut()
        .commit(&[write(None, &a)], 1)
        .unwrap();
    assert!(begin_background(&overlay, &feed, 2_000, 2_000));
    assert!(
        !begin_background(&overlay, &feed, 2_001, 2_000),
        "one under way"
    );
    let waiting = before_verify(&overlay, &feed, 2_001, 2_000);
    let (first, second) = block_on(futures_util::future::join(
        refresh(&overlay, &feed, 2_000, 2_000),
        waiting,
    ));
    assert_eq!((first, second), (None, None));
    assert_eq!(feed.asked.get(), 2, "the live overlay answered the second");
    assert_eq!(overlay.borrow().get(&a.hash, 2_001), Some(&a));
}

#[test]
fn every_request_finding_the_overlay_not_live_awaits_a_snapshot_of_its_own() {
    let feed = SlowFeed::default();
    let overlay = RefCell::new(Overlay::default());
    let a = record(1);
    let logged = [write(None, &a)];
    feed.inner.log.borrow_mut().commit(&logged, 1).unwrap();
    let seen = || async {
        before_verify(&overlay, &feed, 10, 2_000).await;
        overlay.borrow().get(&a.hash, 10).cloned()
    };
    let (first, second) = block_on(futures_util::future::join(seen(), seen()));
    assert_eq!((first.as_ref(), second.as_ref()), (Some(&a), Some(&a)));
    assert_eq!(feed.asked.get(), 2);
}

#[test]
fn an_older_snapshot_landing_late_does_not_replace_a_newer_one() {
    let overlay = RefCell::new(Overlay::default());
    let a = record(1);
    let newer = Snapshot {
        as_of: 5_000,
        changes: vec![Change {
            record: revoked(&a, 4_000),
            at: 4_000,
            settled_at: None,
        }],
    };
    overlay.borrow_mut().apply(newer, 2_000);
    let older = Snapshot {
        as_of: 3_000,
        changes: Vec::new(),
    };
    overlay.borrow_mut().apply(older, 2_000);
    let held = overlay.borrow().get(&a.hash, 5_001).cloned();
    assert_eq!(held.unwrap().revoked_at, Some(4_000));
    assert!(overlay.borrow().live(8_999) && !overlay.borrow().live(9_000));
}

#[test]
fn unreachable_log_keeps_what_the_overlay_knew_and_says_so() {
    let feed = MemoryFeed::default();
    let overlay = RefCell::new(Overlay::default());
    let a = record(1);
    feed.log
        .borrow_mut()
        .commit(&[write(None, &revoked(&a, 1))], 1)
        .unwrap();
    assert_eq!(block_on(refresh(&overlay, &feed, 1, 2_000)), None);
    feed.unreachable.set(true);
    let line = block_on(refresh(&overlay, &feed, 5_000, 2_000)).unwrap();
    assert!(line.contains("KV alone"), "{line}");
    assert_eq!(
        overlay.borrow().get(&a.hash, 5_000).unwrap().revoked_at,
        Some(1)
    );
}

#[test]
fn no_feed_never_refreshes_and_always_commits() {
    let overlay = RefCell::new(Overlay::default());
    assert_eq!(block_on(refresh(&overlay, &NoFeed, 0, 1)), None);
    let a = record(1);
    let committed = block_on(NoFeed.commit(&[write(Some(&a), &a)], 0)).unwrap();
    assert!(committed.is_ok());
    assert!(!NoFeed.durable());
}

fn numbered(n: u32) -> KeyRecord {
    let mut r = record(1);
    r.hash = hash(n);
    r
}

#[test]
fn a_read_is_kept_only_while_the_log_was_heard_from_in_the_last_two_intervals() {
    let overlay = RefCell::new(Overlay::default());
    let a = record(1);
    overlay.borrow_mut().remember(a.hash.clone(), a.clone(), 0);
    block_on(refresh(&overlay, &MemoryFeed::default(), 10, 2_000));
    assert!(
        overlay.borrow().cached(&a.hash, 10).is_none(),
        "not kept while never live"
    );
    overlay.borrow_mut().remember(a.hash.clone(), a.clone(), 11);
    assert_eq!(overlay.borrow().cached(&a.hash, 4_009), Some(&a));
    assert!(
        overlay.borrow().cached(&a.hash, 4_010).is_none(),
        "no refresh since"
    );
}

#[test]
fn the_cache_holds_at_most_cache_max_records_dropping_expired_ones_first() {
    let mut overlay = live_overlay();
    let max = CACHE_MAX as u32;
    for n in 0..max - 1 {
        overlay.remember(hash(n), numbered(n), 0);
    }
    overlay.remember(hash(max - 1), numbered(max - 1), CACHED_FOR_MS);
    assert_eq!(overlay.read.len(), CACHE_MAX);
    overlay.remember(hash(max), numbered(max), CACHED_FOR_MS);
    assert_eq!(overlay.read.len(), 2, "the expired ones went");
    assert!(overlay.cached(&hash(max - 1), CACHED_FOR_MS).is_some());
    for n in max + 1..max + CACHE_MAX as u32 - 1 {
        overlay.remember(hash(n), numbered(n), CACHED_FOR_MS);
    }
    assert_eq!(overlay.read.len(), CACHE_MAX);
    overlay.remember(hash(0), numbered(0), CACHED_FOR_MS);
    assert_eq!(overlay.read.len(), 1, "none had expired: all went");
    assert!(overlay.cached(&hash(0), CACHED_FOR_MS).is_some());
}

#[test]
fn the_negative_cache_holds_at_most_absent_max_hashes_dropping_expired_then_the_oldest() {
    let mut overlay = live_overlay();
    let max = ABSENT_MAX as u32;
    overlay.remember_absent(hash(0), 0);
    for n in 1..max {
        overlay.remember_absent(hash(n), CACHED_FOR_MS + Millis::from(n));
    }
    let now = CACHED_FOR_MS + Millis::from(max);
    assert!(!overlay.known_absent(&hash(0), now), "expired");
    overlay.remember_absent(hash(max), now);
    assert_eq!(overlay.absent.len(), ABSENT_MAX, "the expired one went");
    overlay.remember_absent(hash(max + 1), now);
    assert_eq!(overlay.absent.len(), ABSENT_MAX, "then the oldest");
    assert!(!overlay.known_absent(&hash(1), now));
    for n in [2, max, max + 1] {
        assert!(overlay.known_absent(&hash(n), now), "{n}");
    }
}

#[test]
fn a_kept_miss_gives_way_to_a_read_record_and_to_an_own_write() {
    let mut overlay = live_overlay();
    let a = record(1);
    overlay.remember_absent(a.hash.clone(), 0);
    assert!(overlay.known_absent(&a.hash, 1));
    overlay.remember(a.hash.clone(), a.clone(), 1);
    assert!(!overlay.known_absent(&a.hash, 2));
    overlay.remember_absent(a.hash.clone(), 2);
    assert!(overlay.cached(&a.hash, 3).is_none());
    overlay.observe(&[write(None, &a)], 3);
    assert!(!overlay.known_absent(&a.hash, 4));
}

#[test]
fn an_overlay_refreshed_every_request_is_live_at_the_instant_of_its_refresh() {
    let overlay = RefCell::new(Overlay::default());
    block_on(refresh(&overlay, &MemoryFeed::default(), 10, 0));
    assert!(overlay.borrow().live(10));
    assert!(
        !overlay.borrow().live(11),
        "until the next request refreshes it"
    );
}

#[test]
fn an_unsettled_change_is_shown_past_the_window_then_two_minutes_after_its_late_settle() {
    let mut log = ChangeLog::default();
    let a = revoked(&record(1), 0);
    log.commit(&[write(None, &a)], 0).unwrap();
    let late = 3 * WINDOW_MS; // the log's own KV writes failed until now
    assert_eq!(log.recent(late).len(), 1, "unsettled: still shown");
    assert!(log.prune(late).is_empty());
    assert!(log.mark_settled(&a, late));
    let gone = late + KV_CONVERGENCE_MS + CACHED_FOR_MS;
    assert_eq!(log.next_wakeup(late), Some(gone));
    assert_eq!(log.recent(gone - 1).len(), 1);
    assert!(log.prune(gone - 1).is_empty());
    assert!(log.recent(gone).is_empty());
    assert_eq!(log.prune(gone), vec![a.hash.clone()]);
}

#[test]
fn past_the_window_an_overlay_shows_a_change_only_while_the_log_vouches_for_it() {
    let feed = MemoryFeed::default();
    let overlay = RefCell::new(Overlay::default());
    let a = revoked(&record(1), 0);
    feed.log.borrow_mut().commit(&[write(None, &a)], 0).unwrap();
    let late = 3 * WINDOW_MS;
    block_on(refresh(&overlay, &feed, late, 2_000));
    assert_eq!(overlay.borrow().get(&a.hash, late), Some(&a));
    assert!(
        overlay.borrow().get(&a.hash, late + 4_000).is_none(),
        "no answer from the log since: the window alone decides"
    );
}

#[test]
fn a_change_stored_before_settled_at_existed_reads_as_settled_on_time() {
    let a = serde_json::to_string(&record(1)).unwrap();
    let stored = |settled: bool| format!(r#"{{"record":{a},"at":5,"settled":{settled}}}"#);
    let old: Change = json_object::from_str(&stored(true)).unwrap();
    assert_eq!(old.settled_at, Some(5 + SETTLE_AFTER_MS));
    let pending: Change = json_object::from_str(&stored(false)).unwrap();
    assert_eq!(pending.settled_at, None);
    let now = Change {
        settled_at: Some(9),
        ..old
    };
    let text = serde_json::to_string(&now).unwrap();
    assert!(
        text.contains(r#""settled":true"#),
        "older code still reads it: {text}"
    );
    assert_eq!(json_object::from_str::<Change>(&text).unwrap(), now);
}

#[test]
fn the_log_protocol_round_trips_and_reads_records_only_from_objects() {
    let (a, b) = (record(1), record(2));
    let writes = vec![write(None, &a), write(Some(&a), &revoked(&a, 3))];
    let text = serde_json::to_string(&writes).unwrap();
    assert!(
        text.starts_with(r#"[{"prev":null,"next":{"id":"key_1""#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<Vec<Write>>(&text).unwrap(), writes);
    let conflict = Conflict(vec![a.clone(), b]);
    let text = serde_json::to_string(&conflict).unwrap();
    assert!(text.starts_with(r#"[{"id":"key_1""#), "{text}");
    assert_eq!(serde_json::from_str::<Conflict>(&text).unwrap(), conflict);
    // A record written as the array of its fields (which serde's derive alone would read) is
    // not a record, at any depth.
    let array = crate::record::tests::as_field_array(&a);
    assert!(serde_json::from_str::<KeyRecord>(&array).is_ok());
    for text in [
        format!(r#"{{"prev":null,"next":{array}}}"#),
        format!(
            r#"{{"prev":{array},"next":{}}}"#,
            serde_json::to_string(&a).unwrap()
        ),
        format!("[{array}]"),
    ] {
        let write = json_object::from_str::<Write>(&text);
        let conflict = serde_json::from_str::<Conflict>(&text);
        assert!(write.is_err() && conflict.is_err(), "{text}");
    }
    let change = format!(r#"{{"record":{array},"at":5}}"#);
    assert!(json_object::from_str::<Change>(&change).is_err());
    // Nor is a change or a write written as the array of its fields, inside a list.
    let record = serde_json::to_string(&a).unwrap();
    let changes = format!("[[{record},5,true,9]]");
    assert!(serde_json::from_str::<Vec<Change>>(&changes).is_err());
    let writes = format!("[[null,{record}]]");
    assert!(serde_json::from_str::<Vec<Write>>(&writes).is_err());
    let good = format!(r#"[{{"prev":null,"next":{record}}}]"#);
    assert!(serde_json::from_str::<Vec<Write>>(&good).is_ok());
}

/// A log that counts the snapshots it is asked for.
#[derive(Default)]
struct Counted {
    inner: MemoryFeed,
    asked: std::cell::Cell<u32>,
}

impl ChangeFeed for Counted {
    fn durable(&self) -> bool {
        true
    }
    async fn commit(
        &self,
        writes: &[Write],
        now: Millis,
    ) -> Result<Result<(), Conflict>, StoreError> {
        self.inner.commit(writes, now).await
    }
    async fn recent(&self, now: Millis) -> Result<Vec<Change>, StoreError> {
        self.asked.set(self.asked.get() + 1);
        self.inner.recent(now).await
    }
}

#[test]
fn isolates_of_one_location_ask_the_log_about_once_per_lifetime_through_its_copy() {
    let log = Counted::default();
    let cached = Cached {
        feed: &log,
        copy: MemoryCopy::default(),
        lifetime: 2_000,
    };
    let overlays: Vec<RefCell<Overlay>> = (0..50).map(|_| RefCell::default()).collect();
    // 20 s, each isolate serving a request every 100 ms (staggered).
    for tick in 0..200u64 {
        for (i, overlay) in overlays.iter().enumerate() {
            serve(overlay, &cached, tick * 100 + i as Millis, 2_000);
        }
        // The marker lasts a moment (the Cache API's max-age), not forever.
        if tick % 10 == 0 {
            cached.copy.claimed.set(false);
        }
    }
    // One fetch per 2 s lifetime, some a quarter early (refresh-ahead): 10 to 14 in 20 s, not
    // one per isolate per interval (500).
    let asked = log.asked.get();
    assert!((10..=14).contains(&asked), "{asked}");
    assert!(overlays.iter().all(|o| o.borrow().live(20_000)));
}

#[test]
fn a_copy_past_its_lifetime_is_not_used() {
    let log = Counted::default();
    let cached = Cached {
        feed: &log,
        copy: MemoryCopy::default(),
        lifetime: 2_000,
    };
    let a = record(1);
    *cached.copy.held.borrow_mut() = Some(Snapshot {
        as_of: 0,
        changes: Vec::new(),
    });
    log.inner
        .log
        .borrow_mut()
        .commit(&[write(None, &a)], 1)
        .unwrap();
    let fresh = block_on(cached.snapshot(2_000)).unwrap();
    assert_eq!((fresh.as_of, fresh.changes.len()), (2_000, 1));
    assert_eq!(log.asked.get(), 1);
    assert_eq!(cached.copy.puts.get(), 1, "the answer becomes the copy");
    let again = block_on(cached.snapshot(2_001)).unwrap();
    assert_eq!((again.as_of, log.asked.get()), (2_000, 1), "from the copy");
}

#[test]
fn a_waiting_request_takes_the_copy_as_it_is_and_a_background_refresh_fetches_the_next() {
    let log = Counted::default();
    let cached = Cached {
        feed: &log,
        copy: MemoryCopy::default(),
        lifetime: 2_000,
    };
    *cached.copy.held.borrow_mut() = Some(Snapshot {
        as_of: 0,
        changes: Vec::new(),
    });
    let waiting = block_on(cached.snapshot_now(1_900)).unwrap();
    assert_eq!((waiting.as_of, log.asked.get()), (0, 0));
    let background = block_on(cached.snapshot(1_900)).unwrap();
    assert_eq!(
        (background.as_of, log.asked.get()),
        (1_900, 1),
        "refresh-ahead"
    );
    assert_eq!(block_on(cached.snapshot(1_950)).unwrap().as_of, 1_900);
}

#[test]
fn admin_reads_through_a_location_copy_see_the_log_itself() {
    // An admin call reads `recent` to show what it just committed (a rotation's grace row right
    // after the rotate): the location's copy, up to a lifetime old, would not have it yet.
    let log = Counted::default();
    let cached = Cached {
        feed: &log,
        copy: MemoryCopy::default(),
        lifetime: 2_000,
    };
    *cached.copy.held.borrow_mut() = Some(Snapshot {
        as_of: 0,
        changes: Vec::new(),
    });
    let a = record(1);
    block_on(cached.commit(&[write(None, &a)], 10))
        .unwrap()
        .unwrap();
    let recent = block_on(cached.recent(20)).unwrap();
    assert_eq!(recent.len(), 1, "the commit of 10 ms is shown at 20 ms");
    assert_eq!(log.asked.get(), 1);
}

#[test]
fn a_kept_read_asks_for_its_renewal_once_it_is_fifty_seconds_old_then_once_per_retry_delay() {
    let mut overlay = live_overlay();
    let (a, b) = (record(1), record(2));
    overlay.remember(a.hash.clone(), a.clone(), 0);
    overlay.remember_absent(b.hash.clone(), 0);
    let mut claims_at = |now: Millis| {
        overlay.claim_renewal(&a.hash, now);
        overlay.claim_renewal(&b.hash, now);
        overlay.take_renewals().len()
    };
    assert_eq!(claims_at(RENEW_AFTER_MS - 1), 0, "young");
    assert_eq!(claims_at(RENEW_AFTER_MS), 2, "the record and the miss");
    assert_eq!(claims_at(RENEW_AFTER_MS + 1), 0, "claimed already");
    assert_eq!(
        claims_at(RENEW_AFTER_MS + RENEW_RETRY_MS),
        2,
        "not landed: again"
    );
    assert_eq!(
        claims_at(CACHED_FOR_MS),
        0,
        "expired: the next request reads KV"
    );
}

#[test]
fn a_renewal_that_lands_makes_the_read_young_again() {
    let mut overlay = live_overlay();
    let a = record(1);
    overlay.remember(a.hash.clone(), a.clone(), 0);
    overlay.claim_renewal(&a.hash, RENEW_AFTER_MS);
    assert_eq!(overlay.take_renewals(), std::slice::from_ref(&a.hash));
    overlay.remember(a.hash.clone(), a.clone(), RENEW_AFTER_MS);
    overlay.claim_renewal(&a.hash, RENEW_AFTER_MS + RENEW_RETRY_MS);
    assert!(overlay.take_renewals().is_empty());
    assert!(overlay
        .cached(&a.hash, RENEW_AFTER_MS + CACHED_FOR_MS - 1)
        .is_some());
}

#[test]
fn renewals_waiting_for_the_shell_are_bounded() {
    let mut overlay = live_overlay();
    let n = RENEWALS_MAX as u32 + 10;
    for i in 0..n {
        overlay.remember(hash(i), numbered(i), 0);
        overlay.claim_renewal(&hash(i), RENEW_AFTER_MS);
    }
    assert_eq!(overlay.take_renewals().len(), RENEWALS_MAX);
}

#[test]
fn a_renewal_is_kept_only_over_the_older_read_it_renews() {
    let mut overlay = live_overlay();
    let a = record(1);
    let newer = revoked(&a, 5);
    // Kept read at 0, renewal begun at 10: kept.
    overlay.remember(a.hash.clone(), a.clone(), 0);
    let start = overlay.read_start(10);
    overlay.renewed(a.hash.clone(), Some(newer.clone()), start);
    assert_eq!(overlay.cached(&a.hash, 11), Some(&newer));
    // A read at 20 is newer than a renewal begun at 15: the renewal goes.
    overlay.remember(a.hash.clone(), newer.clone(), 20);
    let start = overlay.read_start(15);
    overlay.renewed(a.hash.clone(), Some(a.clone()), start);
    assert_eq!(overlay.cached(&a.hash, 21), Some(&newer));
    // An own write dropped the kept read: a renewal landing after it goes too.
    let start = overlay.read_start(25);
    overlay.observe(&[write(Some(&a), &newer)], 30);
    overlay.renewed(a.hash.clone(), Some(a.clone()), start);
    assert_eq!(overlay.cached(&a.hash, 31), None);
    overlay.renewed(a.hash.clone(), None, start);
    assert!(!overlay.known_absent(&a.hash, 31));
    // Read again, then an own write during a renewal begun after that read: the renewal goes.
    overlay.remember(a.hash.clone(), newer.clone(), 40);
    let start = overlay.read_start(50);
    overlay.observe(&[write(Some(&newer), &newer)], 51);
    overlay.remember(a.hash.clone(), newer.clone(), 45);
    overlay.renewed(a.hash.clone(), Some(a.clone()), start);
    assert_eq!(overlay.cached(&a.hash, 52), Some(&newer));
}

#[test]
fn a_request_read_is_kept_unless_an_own_write_came_while_it_was_in_flight() {
    let mut overlay = live_overlay();
    let (a, b) = (record(1), record(2));
    let start = overlay.read_start(0);
    overlay.keep(a.hash.clone(), Some(a.clone()), start);
    assert_eq!(overlay.cached(&a.hash, 1), Some(&a));
    let start = overlay.read_start(1);
    overlay.observe(&[write(None, &b)], 2);
    overlay.keep(a.hash.clone(), None, start);
    assert!(
        !overlay.known_absent(&a.hash, 3),
        "a read in flight across an own write"
    );
    assert_eq!(overlay.cached(&a.hash, 3), Some(&a));
}
