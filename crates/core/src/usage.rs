//! Key usage: what each isolate counts as it verifies (per key and UTC day: granted, refused by
//! code; the last granted minute), the report it sends at most once per flush interval, and
//! the per-project ledger that keeps 30 days of it (the worker's `KeyUsage` Durable Object).
//! Plain data; time is passed in. Nothing here is awaited on the verify path: recording is a
//! map update in memory, and the shell sends reports in the background.
//!
//! Why not KV: a KV key takes one write per second (Cloudflare's documented limit), and a key
//! verified a thousand times a second would need a thousand. Reports batch every use an isolate
//! saw in one interval into one Durable Object request per project, and the object stores the
//! keys a report touched in one storage write.

use crate::store::StoreError;
use crate::time::{day_of, rfc3339, Millis, DAY_MS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many UTC days of counts are kept (today included).
pub const USAGE_DAYS: u32 = 30;
/// How long an isolate holds uses before it reports them (`USAGE_FLUSH_SECONDS`): 20 s.
pub const DEFAULT_FLUSH_MS: Millis = 20_000;
/// The most a flush may wait: the shell reports from `ctx.waitUntil`, which Cloudflare keeps
/// running for at most 30 s after the answer (Workers limits, "waitUntil"); 25 s leaves room
/// for the request itself.
pub const MAX_FLUSH_MS: Millis = 25_000;
/// How long a key in grace must see no use before it is called safe to revoke
/// (`USAGE_QUIET_SECONDS`): 15 minutes.
pub const DEFAULT_QUIET_MS: Millis = 15 * 60_000;
const MINUTE_MS: Millis = 60_000;

/// Refusals of a known key, by error code: the only refusals that name a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Refusals {
    #[serde(default)]
    pub key_revoked: u64,
    #[serde(default)]
    pub key_expired: u64,
    #[serde(default)]
    pub project_mismatch: u64,
}

impl Refusals {
    /// Counts one refusal with error code `code`; any other code is not one of a known key's
    /// and is not counted.
    fn add(&mut self, code: &str) {
        match code {
            "key_revoked" => self.key_revoked += 1,
            "key_expired" => self.key_expired += 1,
            "project_mismatch" => self.project_mismatch += 1,
            _ => {}
        }
    }

    fn merge(&mut self, other: &Refusals) {
        self.key_revoked = self.key_revoked.saturating_add(other.key_revoked);
        self.key_expired = self.key_expired.saturating_add(other.key_expired);
        self.project_mismatch = self.project_mismatch.saturating_add(other.project_mismatch);
    }
}

/// One UTC day of one key: verifications granted, and refused by error code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// Days since 1970-01-01 (UTC).
    pub day: u32,
    pub granted: u64,
    #[serde(default)]
    pub refused: Refusals,
}

/// One key's usage: its last granted minute (Unix ms, whole minutes) and its days, oldest
/// first. The same shape is a report's increment and the ledger's total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsage {
    pub last_used_at: Option<Millis>,
    pub days: Vec<DayCount>,
}

impl KeyUsage {
    fn day(&mut self, day: u32) -> &mut DayCount {
        let at = match self.days.binary_search_by_key(&day, |d| d.day) {
            Ok(at) => at,
            Err(at) => {
                let fresh = DayCount {
                    day,
                    ..DayCount::default()
                };
                self.days.insert(at, fresh);
                at
            }
        };
        &mut self.days[at]
    }

    /// Adds `other`'s counts and keeps the later last use.
    pub fn merge(&mut self, other: &KeyUsage) {
        self.last_used_at = self.last_used_at.max(other.last_used_at);
        for add in &other.days {
            let day = self.day(add.day);
            day.granted = day.granted.saturating_add(add.granted);
            day.refused.merge(&add.refused);
        }
    }

    /// Drops days older than [`USAGE_DAYS`] before `now`'s.
    pub fn prune(&mut self, now: Millis) {
        let first = day_of(now).saturating_sub(USAGE_DAYS - 1);
        self.days.retain(|d| d.day >= first);
    }
}

/// A report: uses since the last one, per project id, by key id.
pub type Report = Vec<(String, BTreeMap<String, KeyUsage>)>;

/// One isolate's uses not yet reported, by `{project id}/{key id}` (a project id holds no `/`):
/// one map of the ledger's type rather than a map of maps, which keeps the wasm smaller.
#[derive(Debug, Default)]
pub struct Tally {
    pending: BTreeMap<String, KeyUsage>,
}

impl Tally {
    /// Counts one verification of key `key_id` of `project_id` at `now`: granted (`Ok`) or
    /// refused with an error code. The shell arranges the next report after the answer, when
    /// the tally is not [`Tally::is_empty`].
    pub fn record(
        &mut self,
        project_id: &str,
        key_id: &str,
        outcome: Result<(), &'static str>,
        now: Millis,
    ) {
        let usage = self
            .pending
            .entry(format!("{project_id}/{key_id}"))
            .or_default();
        let day = usage.day(day_of(now));
        match outcome {
            Ok(()) => {
                day.granted += 1;
                let minute = now - now % MINUTE_MS;
                usage.last_used_at = usage.last_used_at.max(Some(minute));
            }
            Err(code) => day.refused.add(code),
        }
    }

    /// Everything not yet reported, per project, leaving the tally empty.
    pub fn take(&mut self) -> Report {
        let mut report: Report = Vec::new();
        for (name, usage) in std::mem::take(&mut self.pending) {
            let (project, key) = name.split_once('/').unwrap_or(("", &name));
            match report.last_mut() {
                // In name order, so one project's keys come together.
                Some((p, keys)) if p == project => drop(keys.insert(key.to_owned(), usage)),
                _ => {
                    let mut keys = BTreeMap::new();
                    keys.insert(key.to_owned(), usage);
                    report.push((project.to_owned(), keys));
                }
            }
        }
        report
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// One project's usage as the `KeyUsage` object keeps it, by key id.
#[derive(Debug, Default)]
pub struct Ledger {
    keys: BTreeMap<String, KeyUsage>,
}

impl Ledger {
    pub fn from_entries(entries: impl IntoIterator<Item = (String, KeyUsage)>) -> Self {
        let mut keys = BTreeMap::new();
        keys.extend(entries);
        Self { keys }
    }

    /// Adds one report of this project's keys; returns the ids it touched (to store).
    pub fn apply(&mut self, report: &BTreeMap<String, KeyUsage>, now: Millis) -> Vec<String> {
        for (id, used) in report {
            let usage = self.keys.entry(id.clone()).or_default();
            usage.merge(used);
            usage.prune(now);
        }
        report.keys().cloned().collect()
    }

    pub fn get(&self, key_id: &str) -> Option<&KeyUsage> {
        self.keys.get(key_id)
    }

    /// Every key's usage, days older than [`USAGE_DAYS`] dropped first.
    pub fn snapshot(&mut self, now: Millis) -> &BTreeMap<String, KeyUsage> {
        self.keys.values_mut().for_each(|u| u.prune(now));
        &self.keys
    }
}

/// Where admin reads find usage: the shell's client of the `KeyUsage` objects, or
/// [`MemoryUsage`] in tests.
#[allow(async_fn_in_trait)]
pub trait UsageSource {
    /// Every key of `project_id` with recorded usage, by key id.
    async fn project_usage(
        &self,
        project_id: &str,
        now: Millis,
    ) -> Result<BTreeMap<String, KeyUsage>, StoreError>;
}

/// Ledgers in memory, by project: the tests' stand-in for the Durable Objects. `fail` makes
/// every read fail.
#[derive(Debug, Default)]
pub struct MemoryUsage {
    pub ledgers: std::cell::RefCell<BTreeMap<String, Ledger>>,
    pub fail: std::cell::Cell<bool>,
}

impl MemoryUsage {
    /// Delivers a report as the shell would.
    pub fn deliver(&self, report: Report, now: Millis) {
        let mut ledgers = self.ledgers.borrow_mut();
        for (project, keys) in report {
            ledgers.entry(project).or_default().apply(&keys, now);
        }
    }
}

impl UsageSource for MemoryUsage {
    async fn project_usage(
        &self,
        project_id: &str,
        now: Millis,
    ) -> Result<BTreeMap<String, KeyUsage>, StoreError> {
        if self.fail.get() {
            return Err(StoreError("usage unavailable".into()));
        }
        let mut ledgers = self.ledgers.borrow_mut();
        Ok(ledgers
            .get_mut(project_id)
            .map(|l| l.snapshot(now).clone())
            .unwrap_or_default())
    }
}

/// No usage anywhere: every key reads as never used.
pub struct NoUsage;

impl UsageSource for NoUsage {
    async fn project_usage(
        &self,
        _: &str,
        _: Millis,
    ) -> Result<BTreeMap<String, KeyUsage>, StoreError> {
        Ok(BTreeMap::new())
    }
}

/// `GET /admin/v1/keys/{id}/usage`: the last [`USAGE_DAYS`] UTC days, oldest first, each day
/// present (zero when unused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UsageView {
    pub key_id: String,
    /// The last minute a verification with this key was granted, as reported so far.
    #[cfg_attr(feature = "openapi", schema(required, format = DateTime))]
    pub last_used_at: Option<String>,
    #[cfg_attr(feature = "openapi", schema(min_items = 30, max_items = 30))]
    pub days: Vec<DayView>,
}

/// One UTC day of a key's verifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DayView {
    /// `YYYY-MM-DD` (UTC).
    #[cfg_attr(feature = "openapi", schema(format = Date))]
    pub date: String,
    pub granted: u64,
    /// Refusals of this key by error code.
    pub refused: Refusals,
}

impl UsageView {
    pub fn new(key_id: &str, usage: Option<&KeyUsage>, now: Millis) -> Self {
        let today = day_of(now);
        let days = ((today + 1).saturating_sub(USAGE_DAYS)..=today)
            .map(|day| {
                let found = usage.and_then(|u| u.days.iter().find(|d| d.day == day));
                DayView {
                    date: rfc3339(Millis::from(day) * DAY_MS)[..10].to_owned(),
                    granted: found.map_or(0, |d| d.granted),
                    refused: found.map(|d| d.refused).unwrap_or_default(),
                }
            })
            .collect();
        Self {
            key_id: key_id.to_owned(),
            last_used_at: usage.and_then(|u| u.last_used_at).map(rfc3339),
            days,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_30: Millis = 1_796_040_000_000; // 2026-11-30T12:00:00Z

    #[test]
    fn a_tally_counts_per_key_and_day_and_keeps_the_last_granted_minute() {
        let mut tally = Tally::default();
        assert!(tally.is_empty());
        tally.record("p", "k1", Ok(()), NOV_30 + 59_999);
        assert!(!tally.is_empty());
        tally.record("p", "k1", Ok(()), NOV_30 + 1_000);
        tally.record("p", "k1", Err("key_revoked"), NOV_30 + 120_000);
        tally.record("q", "k2", Ok(()), NOV_30 + DAY_MS);
        let report = tally.take();
        assert!(tally.is_empty());
        assert_eq!(report.len(), 2);
        let k1 = &report[0].1["k1"];
        assert_eq!(
            k1.last_used_at,
            Some(NOV_30),
            "the minute, not the refusal's"
        );
        assert_eq!(k1.days.len(), 1);
        assert_eq!(k1.days[0].granted, 2);
        assert_eq!(k1.days[0].refused.key_revoked, 1);
        assert_eq!(report[1].0, "q");
        assert_eq!(report[1].1["k2"].days[0].day, day_of(NOV_30) + 1);
        tally.record("p", "k1", Ok(()), NOV_30);
        assert!(!tally.is_empty(), "counting again after a report");
    }

    #[test]
    fn a_ledger_adds_reports_and_keeps_thirty_days() {
        let mut ledger = Ledger::default();
        let mut a = Tally::default();
        a.record("p", "k", Ok(()), NOV_30 - 40 * DAY_MS);
        a.record("p", "k", Ok(()), NOV_30 - 29 * DAY_MS);
        a.record("p", "k", Err("key_expired"), NOV_30);
        let mut b = Tally::default();
        b.record("p", "k", Ok(()), NOV_30 - 60_000);
        b.record("p", "k", Err("key_expired"), NOV_30);
        assert_eq!(ledger.apply(&b.take()[0].1, NOV_30), ["k"]);
        ledger.apply(&a.take()[0].1, NOV_30);
        let k = ledger.get("k").unwrap();
        assert_eq!(
            k.last_used_at,
            Some(NOV_30 - 60_000),
            "the later of the two"
        );
        let days: Vec<u32> = k.days.iter().map(|d| d.day).collect();
        assert_eq!(days, [day_of(NOV_30) - 29, day_of(NOV_30)], "day 40 pruned");
        assert_eq!(k.days[1].refused.key_expired, 2);
        assert_eq!(k.days[1].granted, 1);
        let later = ledger.snapshot(NOV_30 + DAY_MS);
        assert_eq!(later["k"].days.len(), 1, "pruned on read as days pass");
    }

    #[test]
    fn the_usage_view_has_every_one_of_thirty_days_oldest_first() {
        let mut tally = Tally::default();
        tally.record("p", "k", Ok(()), NOV_30);
        tally.record("p", "k", Err("project_mismatch"), NOV_30 - 29 * DAY_MS);
        let mut ledger = Ledger::default();
        ledger.apply(&tally.take()[0].1, NOV_30);
        let view = UsageView::new("k", ledger.get("k"), NOV_30);
        assert_eq!(view.days.len(), 30);
        assert_eq!(view.days[29].date, "2026-11-30");
        assert_eq!(view.days[29].granted, 1);
        assert_eq!(view.days[0].date, "2026-11-01");
        assert_eq!(view.days[0].refused.project_mismatch, 1);
        assert_eq!(view.days[1].granted, 0);
        assert_eq!(
            view.last_used_at.as_deref(),
            Some("2026-11-30T12:00:00.000Z")
        );
        let never = UsageView::new("k", None, NOV_30);
        assert_eq!((never.last_used_at, never.days.len()), (None, 30));
    }
}
