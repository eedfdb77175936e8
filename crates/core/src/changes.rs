//! Recent key changes, strongly consistent beside eventually consistent KV: the change log a
//! Durable Object keeps, the feed trait the worker talks to it through, and the per-isolate
//! overlay the verify path consults before trusting KV (and the KV reads it keeps for a minute
//! while the log is live). Pure: time is passed in.
//!
//! Every admin write of a key record is committed here first (compare-and-set: the commit point,
//! which also serializes racing admin writes), then written to KV. Each isolate refreshes its
//! overlay in the background every `CHANGES_REFRESH_SECONDS` ([`begin_background`],
//! [`refresh`]) from the nearest copy of the log ([`Cached`]: the location's copy, one fetch of
//! the log per location per interval), and answers from what it holds while that is live: the
//! log's state at most [`LIVE_INTERVALS`] intervals old. A request that finds it older (an idle
//! spell) awaits a fresh copy itself ([`before_verify`]). So a revoke, creation or rotation is
//! seen everywhere within [`revoke_bound`] (2 intervals), not KV's ~60 s.
//! A revocation is the one write that also lands while the log cannot be reached (KV alone);
//! the log takes it afterwards (see [`refresh`] and [`settle`]).

use crate::json_object::{self, Object};
use crate::key::KeyHash;
use crate::record::KeyRecord;
use crate::store::StoreError;
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// How long a change stays in the log and the overlays: KV's documented ~60 s convergence after
/// the settle write below, with margin.
pub const WINDOW_MS: Millis = 5 * 60 * 1000;
/// After this the log rewrites each changed key's latest record to KV itself, so KV ends with
/// the committed version whatever order racing writers' KV puts landed in. It has converged
/// everywhere (~60 s) well before the change leaves the window: 120 + 60 < 300 s.
pub const SETTLE_AFTER_MS: Millis = 2 * 60 * 1000;
/// Default overlay refresh interval (`CHANGES_REFRESH_SECONDS`).
pub const DEFAULT_REFRESH_MS: Millis = 2_000;
/// An overlay answers on its own (no await, kept KV reads honoured) while the log's state it
/// holds is under this many refresh intervals old: one interval between background refreshes,
/// one for the refresh to land (and for a copy of the log to be up to an interval old).
pub const LIVE_INTERVALS: Millis = 2;

/// Where a revoke, creation or rotation committed at `t` takes effect in every isolate that
/// refreshes every `interval` ms: no answer after `t + revoke_bound(interval)` misses it. An
/// overlay answers from a snapshot of the log stamped no later than the log's state it holds
/// ([`Snapshot::as_of`]), and only while that stamp is under [`LIVE_INTERVALS`] intervals old;
/// after that a request awaits a new snapshot. Round trips and the location copy's age are
/// inside the stamp, so they add nothing (clock skew between a location's machines aside).
pub fn revoke_bound(interval: Millis) -> Millis {
    interval.saturating_mul(LIVE_INTERVALS).max(1)
}
/// The soonest the log's alarm runs again after it ran or took a commit.
pub const RETRY_AFTER_MS: Millis = 5_000;
/// KV's documented bound for a write to be seen everywhere (~60 s).
pub const KV_CONVERGENCE_MS: Millis = 60_000;
/// How long a record the verify path read from KV answers again from the isolate's memory: KV's
/// own default `cacheTtl` (60 s). Only while the overlay is live (see [`Overlay::cached`]).
pub const CACHED_FOR_MS: Millis = 60_000;
/// A kept read (record or "no such key") is renewed from KV in the background once it is this
/// old, so a key in steady use never waits on KV again after its first request, and its
/// requests in flight when the read expires do not each read KV ([`Overlay::claim_renewal`]).
pub const RENEW_AFTER_MS: Millis = CACHED_FOR_MS - 10_000;
/// A claimed renewal that has not landed (its KV read failed, or is slow) may be claimed again
/// after this long: one renewal read per key in flight, unless KV takes longer than this.
pub const RENEW_RETRY_MS: Millis = 5_000;
/// At most this many renewals wait for the shell to run them ([`Overlay::take_renewals`]);
/// past it a kept read simply expires and the next request reads KV itself.
pub const RENEWALS_MAX: usize = 64;
/// At most this many cached records per isolate (~400 bytes each: under 2 MB of its 128 MB).
pub const CACHE_MAX: usize = 4096;
/// At most this many hashes of keys KV does not hold, per isolate (~40 bytes each, 160 KB): a
/// client retrying with a wrong key costs one KV read about every 50 s, not one per request.
pub const ABSENT_MAX: usize = 4096;
/// At most this many revocations an isolate wrote to KV alone (the log unreachable) wait for the
/// log; past it the oldest are left to the log's settle and to the next admin write of the key.
pub const UNLOGGED_MAX: usize = 4096;

// A cached read may predate a change until KV holds the change everywhere (settle, then
// convergence); the overlay keeps that change until the cached read has expired.
const _: () = assert!(SETTLE_AFTER_MS + KV_CONVERGENCE_MS + CACHED_FOR_MS <= WINDOW_MS);

/// One committed version of a key record. In JSON (the Durable Object's storage entries and its
/// `recent` answer): `{"record", "at", "settled", "settled_at"}`, see [`StoredChange`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Object<StoredChange>", into = "StoredChange")]
pub struct Change {
    pub record: KeyRecord,
    pub at: Millis,
    /// When the log itself wrote this version to KV, if it has.
    pub settled_at: Option<Millis>,
}

impl Change {
    /// Until when overlays must hold this change, the latest of its key. Unsettled: until it is
    /// settled, since KV may still hold an older version anywhere. Settled: for the window, or
    /// until KV has converged on the settle write and reads kept from before it have expired,
    /// whichever is later (the later one only when the settle write was late, e.g. KV failed).
    fn shown_until(&self) -> Millis {
        match self.settled_at {
            None => Millis::MAX,
            Some(settled) => self
                .at
                .saturating_add(WINDOW_MS)
                .max(settled.saturating_add(KV_CONVERGENCE_MS + CACHED_FOR_MS)),
        }
    }

    /// Until when the log keeps this change: the window, or while shown if it is the latest
    /// of its key (never earlier than the window: see [`Change::shown_until`]).
    fn kept_until(&self, latest: bool) -> Millis {
        match latest {
            true => self.shown_until(),
            false => self.at.saturating_add(WINDOW_MS),
        }
    }
}

/// A conditional write: `next` replaces `prev` (`None`: a new key). In JSON (the Durable
/// Object's `commit` request) `{"prev": record or null, "next": record}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Object<SentWrite>")]
pub struct Write {
    pub prev: Option<KeyRecord>,
    pub next: KeyRecord,
}

/// A [`Write`] as read: from an object, each record an object too.
#[derive(Deserialize)]
struct SentWrite {
    #[serde(default, deserialize_with = "json_object::optional")]
    prev: Option<KeyRecord>,
    #[serde(deserialize_with = "json_object::object")]
    next: KeyRecord,
}

impl From<Object<SentWrite>> for Write {
    fn from(Object(sent): Object<SentWrite>) -> Self {
        Self {
            prev: sent.prev,
            next: sent.next,
        }
    }
}

/// A commit lost a race: the records as they stand now, for the caller to decide again. In
/// JSON, the array of records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Conflict(#[serde(deserialize_with = "json_object::list")] pub Vec<KeyRecord>);

/// A [`Change`] as JSON (read from an object only). `settled` is still written for older code,
/// which reads only it; entries stored before `settled_at` existed were settled on time, by the
/// alarm.
#[derive(Serialize, Deserialize)]
struct StoredChange {
    #[serde(deserialize_with = "json_object::object")]
    record: KeyRecord,
    at: Millis,
    #[serde(default)]
    settled: bool,
    #[serde(default)]
    settled_at: Option<Millis>,
}

impl From<Object<StoredChange>> for Change {
    fn from(Object(stored): Object<StoredChange>) -> Self {
        let on_time = stored.at.saturating_add(SETTLE_AFTER_MS);
        Self {
            record: stored.record,
            at: stored.at,
            settled_at: stored.settled_at.or(stored.settled.then_some(on_time)),
        }
    }
}

impl From<Change> for StoredChange {
    fn from(change: Change) -> Self {
        Self {
            record: change.record,
            at: change.at,
            settled: change.settled_at.is_some(),
            settled_at: change.settled_at,
        }
    }
}

/// `hashes` in order, each once.
fn sorted_unique(mut hashes: Vec<KeyHash>) -> Vec<KeyHash> {
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// The log the Durable Object holds: recent versions of each changed key, by hash.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChangeLog {
    by_hash: BTreeMap<KeyHash, Vec<Change>>,
}

impl ChangeLog {
    /// Rebuilds the log from persisted per-key entries.
    pub fn from_entries(entries: impl IntoIterator<Item = Vec<Change>>) -> Self {
        let keyed = entries
            .into_iter()
            .filter_map(|changes| Some((changes.first()?.record.hash.clone(), changes)));
        let mut by_hash = BTreeMap::new();
        by_hash.extend(keyed);
        Self { by_hash }
    }

    /// The persisted form of one key's entry (`None`: delete it).
    pub fn entry(&self, hash: &KeyHash) -> Option<&Vec<Change>> {
        self.by_hash.get(hash)
    }

    fn latest(&self, hash: &KeyHash) -> Option<&Change> {
        self.by_hash.get(hash).and_then(|c| c.last())
    }

    /// All writes or none. Each `prev` must be the version that stands: the log's latest if it
    /// has one (it has every change of the last [`WINDOW_MS`]), else the caller's read of KV,
    /// which has converged for anything older. Returns the keys it touched.
    pub fn commit(&mut self, writes: &[Write], now: Millis) -> Result<Vec<KeyHash>, Conflict> {
        let mut standing = Vec::new();
        let mut lost = false;
        for w in writes {
            let known = self.latest(&w.next.hash).map(|c| &c.record);
            let stands = known.or(w.prev.as_ref());
            lost |= stands != w.prev.as_ref();
            standing.extend(stands.cloned());
        }
        if lost {
            return Err(Conflict(standing));
        }
        for w in writes {
            let change = Change {
                record: w.next.clone(),
                at: now,
                settled_at: None,
            };
            let changes = self.by_hash.entry(w.next.hash.clone()).or_default();
            changes.push(change);
        }
        Ok(writes.iter().map(|w| w.next.hash.clone()).collect())
    }

    /// The latest version of every key changed lately (see [`Change::shown_until`]): what
    /// overlays hold.
    pub fn recent(&self, now: Millis) -> Vec<Change> {
        let latest = self.by_hash.values().filter_map(|c| c.last());
        latest.filter(|c| now < c.shown_until()).cloned().collect()
    }

    /// Latest versions not yet written to KV by the log, whose settle time has come.
    pub fn due_for_settling(&self, now: Millis) -> Vec<KeyRecord> {
        let latest = self.by_hash.values().filter_map(|c| c.last());
        latest
            .filter(|c| c.settled_at.is_none() && c.at.saturating_add(SETTLE_AFTER_MS) <= now)
            .map(|c| c.record.clone())
            .collect()
    }

    /// Marks `record` (if still the latest of its key) as written to KV at `now`.
    pub fn mark_settled(&mut self, record: &KeyRecord, now: Millis) -> bool {
        let latest = self
            .by_hash
            .get_mut(&record.hash)
            .and_then(|c| c.last_mut());
        match latest {
            Some(change) if change.record == *record && change.settled_at.is_none() => {
                change.settled_at = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Drops what left the window; the latest version of a key stays while it is shown (see
    /// [`Change::shown_until`]). Returns the keys whose entry changed.
    pub fn prune(&mut self, now: Millis) -> Vec<KeyHash> {
        // In hash order, each hash once.
        let mut touched = Vec::new();
        for (hash, changes) in &mut self.by_hash {
            let last = changes.len().saturating_sub(1);
            let before = changes.len();
            let mut i = 0;
            changes.retain(|c| {
                let keep = now < c.kept_until(i == last);
                i += 1;
                keep
            });
            if changes.len() != before {
                touched.push(hash.clone());
            }
        }
        self.by_hash.retain(|_, changes| !changes.is_empty());
        touched
    }

    /// When the log next has work (settling or pruning), if ever; at the earliest
    /// [`RETRY_AFTER_MS`] after `now`, so a settle write that keeps failing (KV down) is tried
    /// again every few seconds rather than in a tight loop of alarms.
    pub fn next_wakeup(&self, now: Millis) -> Option<Millis> {
        let latest = self.by_hash.values().filter_map(|c| c.last());
        let settle = latest
            .filter(|c| c.settled_at.is_none())
            .map(|c| c.at + SETTLE_AFTER_MS);
        let expiry = self.by_hash.values().flat_map(|changes| {
            let last = changes.len().saturating_sub(1);
            let kept = changes.iter().enumerate();
            kept.map(move |(i, c)| c.kept_until(i == last))
        });
        let next = settle.chain(expiry.filter(|&t| t != Millis::MAX)).min()?;
        Some(next.max(now.saturating_add(RETRY_AFTER_MS)))
    }
}

/// The worker's view of the change log.
#[allow(async_fn_in_trait)] // single-threaded Workers runtime: no `Send` bound wanted
pub trait ChangeFeed {
    /// Whether commits are durable here (a log exists). Without one, KV alone decides.
    fn durable(&self) -> bool;
    /// Commits all writes or none; `Ok(Err(conflict))` when another writer got there first.
    async fn commit(
        &self,
        writes: &[Write],
        now: Millis,
    ) -> Result<Result<(), Conflict>, StoreError>;
    /// The latest version of every key changed in the window, from the log itself (strongly
    /// consistent: admin calls read their own commits here).
    async fn recent(&self, now: Millis) -> Result<Vec<Change>, StoreError>;
    /// The nearest copy of [`ChangeFeed::recent`], stamped: asked at `now`, the log itself
    /// answers with its state at or after `now`. [`Cached`] answers from the location's copy.
    async fn snapshot(&self, now: Millis) -> Result<Snapshot, StoreError> {
        let changes = self.recent(now).await?;
        Ok(Snapshot {
            as_of: now,
            changes,
        })
    }
    /// [`ChangeFeed::snapshot`] for a request waiting on it: [`Cached`] skips refresh-ahead
    /// (the next copy is fetched by a background refresh, not by a waiting request).
    async fn snapshot_now(&self, now: Millis) -> Result<Snapshot, StoreError> {
        self.snapshot(now).await
    }
}

/// The log's `recent` answer and a stamp no later than the state it shows: every commit before
/// `as_of` (ms since the epoch) is in it. In JSON (a location copy's body)
/// `{"as_of": ms, "changes": [Change]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub as_of: Millis,
    pub changes: Vec<Change>,
}

/// A per-location copy of the log's [`Snapshot`] (the worker: the Cache API, one copy per data
/// center). Failures are the implementation's to log: a copy that cannot be read is a miss,
/// one that cannot be written is skipped, and the log answers.
#[allow(async_fn_in_trait)] // single-threaded Workers runtime: no `Send` bound wanted
pub trait NearbyCopy {
    /// The copy the location holds, if any.
    async fn get(&self) -> Option<Snapshot>;
    /// Replaces the copy; it may be dropped after `lifetime` ms.
    async fn put(&self, snapshot: &Snapshot, lifetime: Millis);
    /// Takes the location's refresh-ahead marker for `for_ms` ms: `true` if no other isolate
    /// holds it (a race may let a few through; each only adds one fetch of the log).
    async fn claim(&self, for_ms: Millis) -> bool;
}

/// A [`ChangeFeed`] whose snapshots come from the location's copy while it is under `lifetime`
/// ms old, else from the log (put back in the copy): one fetch of the log per location per
/// lifetime, whatever the number of isolates. Refresh-ahead: a reader that finds the copy in
/// the last quarter of its lifetime takes the marker and fetches the next one, so a busy
/// location's copy never lapses (only in background refreshes: a request waiting for a snapshot
/// takes the copy as it is). Commits go to the log, the one commit point.
pub struct Cached<F, C> {
    pub feed: F,
    pub copy: C,
    pub lifetime: Millis,
}

impl<F: ChangeFeed, C: NearbyCopy> Cached<F, C> {
    async fn ask_log(&self, now: Millis) -> Result<Snapshot, StoreError> {
        let snapshot = self.feed.snapshot(now).await?;
        self.copy.put(&snapshot, self.lifetime).await;
        Ok(snapshot)
    }
}

impl<F: ChangeFeed, C: NearbyCopy> ChangeFeed for Cached<F, C> {
    fn durable(&self) -> bool {
        self.feed.durable()
    }

    async fn commit(
        &self,
        writes: &[Write],
        now: Millis,
    ) -> Result<Result<(), Conflict>, StoreError> {
        self.feed.commit(writes, now).await
    }

    /// The log itself, never the copy: admin calls read `recent` to show what they have just
    /// committed (read-your-writes); only the verify path's snapshots may be a lifetime old.
    async fn recent(&self, now: Millis) -> Result<Vec<Change>, StoreError> {
        self.feed.recent(now).await
    }

    async fn snapshot(&self, now: Millis) -> Result<Snapshot, StoreError> {
        self.nearest(now, true).await
    }

    async fn snapshot_now(&self, now: Millis) -> Result<Snapshot, StoreError> {
        self.nearest(now, false).await
    }
}

impl<F: ChangeFeed, C: NearbyCopy> Cached<F, C> {
    /// The copy while it is under its lifetime old (with refresh-ahead if `ahead`), else the
    /// log's answer, which becomes the copy.
    async fn nearest(&self, now: Millis, ahead: bool) -> Result<Snapshot, StoreError> {
        if !self.durable() || self.lifetime == 0 {
            return self.feed.snapshot(now).await;
        }
        let held = self.copy.get().await.map(|mut copy| {
            // A stamp ahead of this clock (another machine's) counts from this clock.
            copy.as_of = copy.as_of.min(now);
            copy
        });
        let Some(copy) = held.filter(|c| now < c.as_of.saturating_add(self.lifetime)) else {
            return self.ask_log(now).await;
        };
        let early = self.lifetime / 4;
        let ending = ahead && now >= copy.as_of.saturating_add(self.lifetime - early);
        if ending && self.copy.claim(early.max(1)).await {
            if let Ok(next) = self.ask_log(now).await {
                return Ok(next);
            }
        }
        Ok(copy)
    }
}

/// An in-memory location copy (tests, the simulation of a stale copy): what was put, and how
/// many times each operation ran.
#[derive(Default)]
pub struct MemoryCopy {
    pub held: RefCell<Option<Snapshot>>,
    pub claimed: std::cell::Cell<bool>,
    pub puts: std::cell::Cell<u32>,
}

impl NearbyCopy for MemoryCopy {
    async fn get(&self) -> Option<Snapshot> {
        self.held.borrow().clone()
    }

    async fn put(&self, snapshot: &Snapshot, _lifetime: Millis) {
        self.puts.set(self.puts.get() + 1);
        *self.held.borrow_mut() = Some(snapshot.clone());
    }

    async fn claim(&self, _for_ms: Millis) -> bool {
        !self.claimed.replace(true)
    }
}

/// A shared feed (tests: one log behind several locations' copies).
impl<T: ChangeFeed> ChangeFeed for &T {
    fn durable(&self) -> bool {
        (**self).durable()
    }

    async fn commit(
        &self,
        writes: &[Write],
        now: Millis,
    ) -> Result<Result<(), Conflict>, StoreError> {
        (**self).commit(writes, now).await
    }

    async fn recent(&self, now: Millis) -> Result<Vec<Change>, StoreError> {
        (**self).recent(now).await
    }

    async fn snapshot(&self, now: Millis) -> Result<Snapshot, StoreError> {
        (**self).snapshot(now).await
    }

    async fn snapshot_now(&self, now: Millis) -> Result<Snapshot, StoreError> {
        (**self).snapshot_now(now).await
    }
}

/// The overlay switched off: nothing is logged, every commit passes, KV's last write wins.
pub struct NoFeed;

impl ChangeFeed for NoFeed {
    fn durable(&self) -> bool {
        false
    }

    async fn commit(&self, _: &[Write], _: Millis) -> Result<Result<(), Conflict>, StoreError> {
        Ok(Ok(()))
    }

    async fn recent(&self, _: Millis) -> Result<Vec<Change>, StoreError> {
        Ok(Vec::new())
    }
}

/// An in-memory change log (tests), able to become unreachable.
#[derive(Default)]
pub struct MemoryFeed {
    pub log: RefCell<ChangeLog>,
    pub unreachable: std::cell::Cell<bool>,
}

impl MemoryFeed {
    fn reach(&self) -> Result<(), StoreError> {
        match self.unreachable.get() {
            true => Err(StoreError("change log unreachable".into())),
            false => Ok(()),
        }
    }
}

impl ChangeFeed for MemoryFeed {
    fn durable(&self) -> bool {
        true
    }

    async fn commit(
        &self,
        writes: &[Write],
        now: Millis,
    ) -> Result<Result<(), Conflict>, StoreError> {
        self.reach()?;
        Ok(self.log.borrow_mut().commit(writes, now).map(drop))
    }

    async fn recent(&self, now: Millis) -> Result<Vec<Change>, StoreError> {
        self.reach()?;
        Ok(self.log.borrow().recent(now))
    }
}

/// One isolate's copy of the recent changes, and what it read from KV while that copy was live
/// (records, and keys KV does not hold). Looking a key up is an in-memory map read.
#[derive(Debug, Default)]
pub struct Overlay {
    records: BTreeMap<KeyHash, Change>,
    /// When the latest refresh was started (marked before it is awaited).
    refreshed_at: Option<Millis>,
    /// Whether the latest refresh that ended failed (the log could not be reached).
    failed: bool,
    /// The stamp of the snapshot `records` came from ([`Snapshot::as_of`]).
    as_of: Option<Millis>,
    /// Until when (exclusive) the snapshot held vouches for the overlay: [`revoke_bound`] after
    /// its stamp (at least the instant of the refresh itself, for an interval of 0).
    live_until: Millis,
    /// Records read from KV, with when they were read.
    read: BTreeMap<KeyHash, Kept<KeyRecord>>,
    /// Hashes KV said it holds no key for, with when it said so.
    absent: BTreeMap<KeyHash, Kept<()>>,
    /// Kept reads whose renewal was claimed, for the shell to run ([`crate::verify::renew`]).
    renewals: Vec<KeyHash>,
    /// Revocations this isolate wrote to KV alone while the log was unreachable, in order: each
    /// is committed to the log by the next refresh that reaches it.
    unlogged: Vec<KeyRecord>,
    /// How many times the isolate's own writes were observed ([`Overlay::observe`]): a KV read
    /// begun before one is not kept ([`ReadStart`]).
    writes: u64,
}

/// Taken just before a KV read of a key record begins ([`Overlay::read_start`]): `at`, the
/// caller's clock (ms, no later than the read's start), and how many own writes the overlay had
/// observed. The read is kept only if none came since ([`Overlay::keep`],
/// [`Overlay::renewed`]): a read in flight across the isolate's own write (a revoke written to
/// KV alone, say) may predate it, and the log may never hold that write to correct it.
#[derive(Debug, Clone, Copy)]
pub struct ReadStart {
    at: Millis,
    writes: u64,
}

/// What the verify path read from KV (`value`), when it read it (`at`: when the read began),
/// and when its renewal was last claimed.
#[derive(Debug)]
struct Kept<T> {
    at: Millis,
    value: T,
    renewal: Option<Millis>,
}

impl<T> Kept<T> {
    fn new(value: T, at: Millis) -> Self {
        let renewal = None;
        Self { at, value, renewal }
    }

    fn fresh(&self, now: Millis) -> bool {
        now < self.at.saturating_add(CACHED_FOR_MS)
    }

    /// Fresh, at least [`RENEW_AFTER_MS`] old, and not claimed in the last [`RENEW_RETRY_MS`].
    fn renewal_due(&self, now: Millis) -> bool {
        let old = now >= self.at.saturating_add(RENEW_AFTER_MS);
        let claimable = |at: Millis| now >= at.saturating_add(RENEW_RETRY_MS);
        self.fresh(now) && old && self.renewal.is_none_or(claimable)
    }
}

impl Overlay {
    /// The change the overlay knows for `hash`: within the window, or after it while the log
    /// said lately that the change is still to be shown (not settled yet, or settled late).
    pub fn get(&self, hash: &KeyHash, now: Millis) -> Option<&KeyRecord> {
        let change = self.records.get(hash)?;
        let within = now < change.at.saturating_add(WINDOW_MS);
        let vouched = now < self.live_until && now < change.shown_until();
        (within || vouched).then_some(&change.record)
    }

    /// Whether the log answered lately: the snapshot held is under [`revoke_bound`] old (or
    /// was taken at this instant). Only a live overlay may grant a key KV does
    /// not show yet, and only a live overlay keeps what it read from KV.
    pub fn live(&self, now: Millis) -> bool {
        now < self.live_until
    }

    /// A record read from KV less than [`CACHED_FOR_MS`] ago, while the overlay is live. Safe to
    /// answer with: every change since KV last converged is in the overlay, which is asked first.
    /// Without a live log (switched off, or unreachable for two intervals) KV is read every time.
    pub fn cached(&self, hash: &KeyHash, now: Millis) -> Option<&KeyRecord> {
        let kept = self.read.get(hash).filter(|_| self.live(now))?;
        kept.fresh(now).then_some(&kept.value)
    }

    /// Whether KV said less than [`CACHED_FOR_MS`] ago that it holds no key with this hash,
    /// while the overlay is live: the negative twin of [`Overlay::cached`], safe for the same
    /// reason (a key created since shows in the overlay, which is asked first).
    pub fn known_absent(&self, hash: &KeyHash, now: Millis) -> bool {
        let said = self.absent.get(hash).filter(|_| self.live(now));
        said.is_some_and(|kept| kept.fresh(now))
    }

    /// Called when a request was answered from the kept read of `hash` (record or "no such
    /// key"): if that read is due for renewal ([`RENEW_AFTER_MS`] old), claims it, once per
    /// [`RENEW_RETRY_MS`], for the shell to read again in the background
    /// ([`crate::verify::renew`]). The read keeps answering until it expires; a renewal that
    /// lands replaces it ([`Overlay::renewed`]).
    pub fn claim_renewal(&mut self, hash: &KeyHash, now: Millis) {
        if self.renewals.len() >= RENEWALS_MAX || self.renewals.contains(hash) {
            return;
        }
        let renewal = match (self.read.get_mut(hash), self.absent.get_mut(hash)) {
            (Some(kept), _) if kept.renewal_due(now) => &mut kept.renewal,
            (_, Some(kept)) if kept.renewal_due(now) => &mut kept.renewal,
            _ => return,
        };
        *renewal = Some(now);
        self.renewals.push(hash.clone());
    }

    /// The renewals claimed since the last call, for the shell to run after its answer.
    pub fn take_renewals(&mut self) -> Vec<KeyHash> {
        std::mem::take(&mut self.renewals)
    }

    /// Marks the start of a KV read of key records at `now`, for [`Overlay::keep`] or
    /// [`Overlay::renewed`].
    pub fn read_start(&self, now: Millis) -> ReadStart {
        let writes = self.writes;
        ReadStart { at: now, writes }
    }

    /// Keeps what a request read from KV (`read`: the record, `None` for "no such key"), as read
    /// at `start`, unless the isolate observed an own write since the read began.
    pub fn keep(&mut self, hash: KeyHash, read: Option<KeyRecord>, start: ReadStart) {
        if start.writes != self.writes {
            return;
        }
        match read {
            Some(record) => self.remember(hash, record, start.at),
            None => self.remember_absent(hash, start.at),
        }
    }

    /// [`Overlay::keep`] for a renewal: kept only if the read it renews is still held and is
    /// older than `start`. An own write since the renewal began (which also drops the kept
    /// read), or a newer read, wins over a renewal that may have read KV before it.
    pub fn renewed(&mut self, hash: KeyHash, read: Option<KeyRecord>, start: ReadStart) {
        let kept_at = |hash| {
            let record = self.read.get(hash).map(|kept| kept.at);
            record.or_else(|| self.absent.get(hash).map(|kept| kept.at))
        };
        if kept_at(&hash).is_some_and(|kept_at| kept_at < start.at) {
            self.keep(hash, read, start);
        }
    }

    /// Keeps KV's "no such key" for [`Overlay::known_absent`], if the overlay was live at `now`
    /// (when the read began; [`Overlay::known_absent`] asks again). When [`ABSENT_MAX`] hashes
    /// are held, expired ones go; if none has, the oldest goes.
    pub(crate) fn remember_absent(&mut self, hash: KeyHash, now: Millis) {
        if !self.live(now) {
            return;
        }
        let absent = &mut self.absent;
        if absent.len() >= ABSENT_MAX {
            absent.retain(|_, kept| kept.fresh(now));
        }
        if absent.len() >= ABSENT_MAX {
            let oldest = absent.iter().min_by_key(|(_, kept)| kept.at);
            if let Some(oldest) = oldest.map(|(hash, _)| hash.clone()) {
                absent.remove(&oldest);
            }
        }
        self.read.remove(&hash);
        self.absent.insert(hash, Kept::new((), now));
    }

    /// Keeps a record just read from KV for [`Overlay::cached`], if the overlay was live at `now`
    /// (when the read began; [`Overlay::cached`] asks again). When [`CACHE_MAX`] records are
    /// held, expired ones go; if none has, all go.
    pub(crate) fn remember(&mut self, hash: KeyHash, record: KeyRecord, now: Millis) {
        if !self.live(now) {
            return;
        }
        self.absent.remove(&hash);
        if self.read.len() >= CACHE_MAX {
            self.read.retain(|_, kept| kept.fresh(now));
            if self.read.len() >= CACHE_MAX {
                self.read.clear();
            }
        }
        self.read.insert(hash, Kept::new(record, now));
    }

    /// Records the isolate's own committed writes at once, before the next refresh, and forgets
    /// what it read of those keys.
    pub fn observe(&mut self, writes: &[Write], now: Millis) {
        self.writes = self.writes.wrapping_add(1);
        for w in writes {
            let change = Change {
                record: w.next.clone(),
                at: now,
                settled_at: None,
            };
            self.records.insert(w.next.hash.clone(), change);
            self.read.remove(&w.next.hash);
            self.absent.remove(&w.next.hash);
        }
    }

    /// Revocations written to KV alone because the log could not be reached: shown here at once,
    /// like the isolate's own committed writes, and kept for the log (see [`refresh`]).
    pub fn observe_unlogged(&mut self, writes: &[Write], now: Millis) {
        self.observe(writes, now);
        self.unlogged.extend(writes.iter().map(|w| w.next.clone()));
        let excess = self.unlogged.len().saturating_sub(UNLOGGED_MAX);
        self.unlogged.drain(..excess);
    }

    fn due(&self, now: Millis, interval: Millis) -> bool {
        self.refreshed_at
            .is_none_or(|at| now >= at.saturating_add(interval))
    }

    /// Takes a snapshot unless the one held is newer.
    fn apply(&mut self, snapshot: Snapshot, interval: Millis) {
        self.failed = false;
        if self.as_of.is_some_and(|held| held > snapshot.as_of) {
            return;
        }
        // The log holds every change of the window: what it lacks has aged out.
        let keyed = snapshot.changes.into_iter();
        let mut fresh = BTreeMap::new();
        fresh.extend(keyed.map(|c| (c.record.hash.clone(), c)));
        // The isolate's own writes since the snapshot's stamp may be missing from it: those
        // stay until a later snapshot has them.
        for (hash, mine) in std::mem::take(&mut self.records) {
            let newer = fresh.get(&hash).is_none_or(|theirs| theirs.at < mine.at);
            if mine.at >= snapshot.as_of && newer {
                fresh.insert(hash, mine);
            }
        }
        self.records = fresh;
        self.as_of = Some(snapshot.as_of);
        let live_until = snapshot.as_of.saturating_add(revoke_bound(interval));
        self.live_until = self.live_until.max(live_until);
    }
}

/// Whether a background refresh is due for a live overlay (the last one started `interval`
/// ago or more): if so it is marked started, and the caller runs [`refresh`] after its answer
/// (the worker: `waitUntil`). An overlay that is not live is [`before_verify`]'s to refresh.
pub fn begin_background<F: ChangeFeed>(
    overlay: &RefCell<Overlay>,
    feed: &F,
    now: Millis,
    interval: Millis,
) -> bool {
    let mut overlay = overlay.borrow_mut();
    let begin = feed.durable() && overlay.live(now) && overlay.due(now, interval);
    if begin {
        overlay.refreshed_at = Some(now);
    }
    begin
}

/// What a verify awaits before it answers: nothing while the overlay is live (background
/// refreshes keep it so); else (never refreshed, an idle spell, the log silent) a snapshot from
/// the nearest copy, which every such request awaits itself, so none answers from KV alone while
/// another's refresh is under way. Once the log has failed, requests within the interval after
/// that try answer from KV alone (logged by the try) rather than each waiting on it again.
pub async fn before_verify<F: ChangeFeed>(
    overlay: &RefCell<Overlay>,
    feed: &F,
    now: Millis,
    interval: Millis,
) -> Option<String> {
    let skip = {
        let overlay = overlay.borrow();
        overlay.live(now) || (overlay.failed && !overlay.due(now, interval))
    };
    match !feed.durable() || skip {
        true => None,
        false => refresh_with(overlay, feed, now, interval, true).await,
    }
}

/// Refreshes `overlay` from `feed`'s nearest snapshot, then commits to the log the revocations
/// this isolate could only write to KV. An answer older than the one held is dropped. When the
/// feed cannot be reached the overlay keeps what it knew (a key it knows revoked stays refused);
/// the returned line is for the log.
pub async fn refresh<F: ChangeFeed>(
    overlay: &RefCell<Overlay>,
    feed: &F,
    now: Millis,
    interval: Millis,
) -> Option<String> {
    refresh_with(overlay, feed, now, interval, false).await
}

/// [`refresh`]; `waiting`: a request awaits it ([`ChangeFeed::snapshot_now`]).
async fn refresh_with<F: ChangeFeed>(
    overlay: &RefCell<Overlay>,
    feed: &F,
    now: Millis,
    interval: Millis,
    waiting: bool,
) -> Option<String> {
    if !feed.durable() {
        return None;
    }
    overlay.borrow_mut().refreshed_at = Some(now);
    let answer = match waiting {
        true => feed.snapshot_now(now).await,
        false => feed.snapshot(now).await,
    };
    let snapshot = match answer {
        Ok(snapshot) => snapshot,
        Err(e) => {
            overlay.borrow_mut().failed = true;
            return Some(format!(
                "change log unreachable, verifying with KV alone until it answers: {e}"
            ));
        }
    };
    overlay.borrow_mut().apply(snapshot, interval);
    commit_unlogged(overlay, feed, now).await
}

/// Commits the revocations this isolate wrote to KV alone (the log unreachable), each against
/// the version the log now holds, so the log serves and settles the revoked version instead of
/// an older working one. A key the log holds no working version of needs nothing: KV decides
/// it. On a conflict or a failure they wait for the next refresh.
async fn commit_unlogged<F: ChangeFeed>(
    overlay: &RefCell<Overlay>,
    feed: &F,
    now: Millis,
) -> Option<String> {
    let writes: Vec<Write> = {
        let mut overlay = overlay.borrow_mut();
        let owed = std::mem::take(&mut overlay.unlogged);
        let revoke = |revoked: &KeyRecord| {
            let logged = &overlay.records.get(&revoked.hash)?.record;
            let mut next = logged.clone();
            next.adopt_revocation(revoked).then(|| Write {
                prev: Some(logged.clone()),
                next,
            })
        };
        owed.iter().filter_map(revoke).collect()
    };
    if writes.is_empty() {
        return None;
    }
    let failed = match feed.commit(&writes, now).await {
        Ok(Ok(())) => {
            overlay.borrow_mut().observe(&writes, now);
            return None;
        }
        Ok(Err(_)) => "another write got there first".to_owned(),
        Err(e) => e.to_string(),
    };
    let mut overlay = overlay.borrow_mut();
    overlay.unlogged.extend(writes.into_iter().map(|w| w.next));
    Some(format!(
        "{} revocations made while the change log was unreachable are not in it yet ({failed}); trying again at the next refresh",
        overlay.unlogged.len()
    ))
}

/// The log's own KV writes: each key whose latest change is due is written to KV (id pointer
/// and record) and marked settled if it is still the latest; then old changes are pruned. A
/// working version is first checked against KV: if KV holds the key revoked (a revoke made
/// while the log could not be reached), the log commits that revocation and writes it instead.
/// Returns the keys whose log entries changed (to persist) and one log line per failed write,
/// which stays unsettled and is tried again next time.
pub async fn settle<S: crate::store::Store>(
    log: &RefCell<ChangeLog>,
    repo: &crate::repo::Repo<'_, S>,
    now: Millis,
) -> (Vec<KeyHash>, Vec<String>) {
    let due = log.borrow().due_for_settling(now);
    let mut touched = Vec::new();
    let mut failures = Vec::new();
    for mut record in due {
        // A working version is never written over a revocation KV holds that the log lacks
        // (made while the log was unreachable): the log takes the revocation instead, and that
        // is what is written. Unread, nothing is written.
        if record.revoked_at.is_none() {
            let stored = match repo.key_by_hash(&record.hash).await {
                Ok(stored) => stored,
                Err(e) => {
                    failures.push(format!("settling {}: reading KV failed: {e}", record.id));
                    continue;
                }
            };
            let mut adopted = record.clone();
            if stored.is_some_and(|stored| adopted.adopt_revocation(&stored)) {
                let write = Write {
                    prev: Some(record),
                    next: adopted.clone(),
                };
                // Another commit landed meanwhile: that version is settled on its own turn.
                if log.borrow_mut().commit(&[write], now).is_err() {
                    continue;
                }
                touched.push(adopted.hash.clone());
                record = adopted;
            }
        }
        let written = match repo.put_key_id(&record).await {
            Ok(()) => repo.put_key(&record).await,
            Err(e) => Err(e),
        };
        match written {
            // Another commit may have landed meanwhile: only the latest version is marked.
            Ok(()) if log.borrow_mut().mark_settled(&record, now) => {
                touched.push(record.hash.clone());
            }
            Ok(()) => {}
            Err(e) => failures.push(format!("settling {} in KV failed: {e}", record.id)),
        }
    }
    touched.extend(log.borrow_mut().prune(now));
    (sorted_unique(touched), failures)
}

#[cfg(test)]
mod tests;
