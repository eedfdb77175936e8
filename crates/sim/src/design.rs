//! The designs compared, each a small strategy: when an isolate's request waits for the log's
//! recent changes and which state it answers from ([`Today`], [`Background`]), and where a refresh
//! gets its answer from ([`Source`]: the log itself, a per-location cache in front of the log, or in
//! front of a regional read copy). Each design also states the revocation bound it claims.

use crate::model::{Location, Micros, SEC};

/// One refresh of an isolate's overlay: started at `start`, answered at `done` (local time) with
/// the log's state as of `as_of` (log time: every commit at or before it is in the answer).
/// `stamp` is what the built code knows of that state: the start of the fetch from the log that
/// made it (a cached copy carries its filler's), never later than `as_of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fetch {
    pub start: Micros,
    pub done: Micros,
    pub as_of: Micros,
    pub stamp: Micros,
}

/// What one verify waited and what it decided from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// What the caller waited beyond the in-memory lookup, µs.
    pub latency: Micros,
    /// The decision reflects every commit at or before this log time: a key revoked after it may
    /// still be granted by this answer.
    pub as_of: Micros,
}

/// What a design can ask of the platform while it answers one request.
pub trait Platform {
    /// Starts a refresh of the overlay now through the design's [`Source`]; the sim applies it to
    /// the isolate at `done` through [`Design::on_fetch_done`].
    fn fetch(&mut self, now: Micros) -> Fetch;
    /// [`Platform::fetch`] for a request that waits on it: as built, no refresh-ahead.
    fn fetch_waiting(&mut self, now: Micros) -> Fetch {
        self.fetch(now)
    }
    /// A KV read started now: its latency and the log time KV is known to reflect (KV's
    /// documented worst case: a write is seen everywhere within 60 s).
    fn kv_read(&self, now: Micros) -> (Micros, Micros);
}

/// An isolate's change-log state.
#[derive(Debug, Clone, Default)]
pub struct IsolateState {
    /// Today's `refreshed_at`: when the latest refresh started (marked before it is awaited).
    pub refresh_started: Option<Micros>,
    /// When the refresh whose answer the overlay holds started.
    pub held_since: Option<Micros>,
    /// The log time the overlay reflects.
    pub as_of: Option<Micros>,
    /// Today's `live_until`: kept records answer (without KV) until then.
    pub live_until: Micros,
    /// The refresh under way, if any.
    pub in_flight: Option<Fetch>,
}

/// A design: how an isolate answers a verify and what it claims about revocations.
pub trait Design {
    /// A short label for the tables.
    fn name(&self) -> String;
    /// Where refreshes get their answer.
    fn source(&self) -> Source;
    /// The bound the design states for `location`: a key revoked at t0 is refused by every
    /// request arriving at that location after t0 + bound.
    fn claimed_bound(&self, location: &Location) -> Micros;
    /// The formula of [`Design::claimed_bound`], for the tables.
    fn formula(&self) -> String;
    /// Answers one request arriving at `now`.
    fn on_request(
        &self,
        isolate: &mut IsolateState,
        now: Micros,
        platform: &mut dyn Platform,
    ) -> Answer;
    /// Applies a refresh when its answer arrives.
    fn on_fetch_done(&self, isolate: &mut IsolateState, fetch: &Fetch);
}

/// Where a refresh gets the log's recent changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `GET /recent` from the log itself.
    Log,
    /// The location's cache (the Cache API: one copy per data center) in front of `upstream`.
    LocationCache {
        /// An entry answers for this long after it was put.
        lifetime: Micros,
        upstream: Upstream,
        /// Refresh-ahead: a reader that finds the entry within this much of its end fetches a new
        /// one in the background (leaving a marker in the cache so others do not), so a busy
        /// location's entry never lapses. `None`: entries lapse and every reader that misses
        /// goes upstream.
        refresh_ahead: Option<Micros>,
        /// As built (`changes::Cached`): the entry's age and refresh-ahead count from its stamp
        /// (its filler's fetch start), a refresh-ahead reader waits for the new entry, and the
        /// marker lasts whole seconds (the Cache API's `max-age`). Else from when it was put,
        /// the reader takes the old entry and the marker lasts `refresh_ahead`.
        stamped: bool,
    },
}

/// What a location cache's miss (or refresh-ahead) asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The single log.
    Log,
    /// The region's read copy (a Durable Object created with the region's location hint, fed by
    /// the log on each commit).
    RegionalCopy,
}

/// The worst one-way delay, µs, from the log's state to an answer reaching `location` through
/// `source` (what a refresh's data may already lack when it lands, on top of a cache's lifetime),
/// stated as whole round trips as the README does.
pub fn source_delay(source: Source, location: &Location) -> Micros {
    match source {
        Source::Log
        | Source::LocationCache {
            upstream: Upstream::Log,
            ..
        } => location.rtt_to_log,
        Source::LocationCache {
            upstream: Upstream::RegionalCopy,
            ..
        } => location.rtt_to_copy + location.copy_to_log,
    }
}

/// (A) Today: a request that finds the overlay `interval` old refreshes it from the log and
/// awaits the answer; requests arriving meanwhile answer from the overlay as it is, and read KV
/// once the overlay is no longer live (two intervals after the refresh it holds began)
/// (`changes::refresh` marks `refreshed_at` before awaiting; `Overlay::cached` in crates/core).
/// With `await_in_flight` (A′), those requests await the refresh under way instead.
#[derive(Debug, Clone, Copy)]
pub struct Today {
    pub interval: Micros,
    pub await_in_flight: bool,
}

impl Design for Today {
    fn name(&self) -> String {
        format!(
            "today: awaited refresh every {} s{}",
            secs(self.interval),
            if self.await_in_flight {
                ", requests during it await it too"
            } else {
                ""
            }
        )
    }

    fn source(&self) -> Source {
        Source::Log
    }

    fn claimed_bound(&self, location: &Location) -> Micros {
        self.interval + location.rtt_to_log
    }

    fn formula(&self) -> String {
        "interval + RTT to log".into()
    }

    fn on_request(&self, s: &mut IsolateState, now: Micros, p: &mut dyn Platform) -> Answer {
        let due = s.refresh_started.is_none_or(|at| now >= at + self.interval);
        if due {
            s.refresh_started = Some(now);
            let fetch = p.fetch(now);
            s.in_flight = Some(fetch);
            return Answer {
                latency: fetch.done - now,
                as_of: fetch.as_of,
            };
        }
        if let (true, Some(fetch)) = (self.await_in_flight, s.in_flight) {
            return Answer {
                latency: fetch.done - now,
                as_of: fetch.as_of,
            };
        }
        let held = s.as_of.unwrap_or(0);
        if now < s.live_until {
            return Answer {
                latency: 0,
                as_of: held,
            };
        }
        let (latency, kv_as_of) = p.kv_read(now);
        Answer {
            latency,
            as_of: held.max(kv_as_of),
        }
    }

    fn on_fetch_done(&self, s: &mut IsolateState, fetch: &Fetch) {
        s.as_of = s.as_of.max(Some(fetch.as_of));
        s.live_until = s.live_until.max(fetch.start + 2 * self.interval);
        if s.in_flight == Some(*fetch) {
            s.in_flight = None;
        }
    }
}

/// (B, C) Background refresh: the overlay answers without waiting while the refresh it holds
/// began at most `serve_for` ago; a request that finds it older than `interval` starts a refresh
/// in the background (`waitUntil`). Past `serve_for` (an idle spell) the request reads KV and
/// the source at once and takes the stricter answer; requests arriving meanwhile wait for the
/// same refresh.
#[derive(Debug, Clone, Copy)]
pub struct Background {
    pub interval: Micros,
    pub serve_for: Micros,
    pub source: Source,
}

impl Background {
    /// The cache lifetime, if the source is a location cache.
    pub fn lifetime(&self) -> Micros {
        match self.source {
            Source::Log => 0,
            Source::LocationCache { lifetime, .. } => lifetime,
        }
    }
}

impl Design for Background {
    fn name(&self) -> String {
        let source = match self.source {
            Source::Log => "log".to_string(),
            Source::LocationCache {
                lifetime,
                upstream,
                refresh_ahead,
                ..
            } => format!(
                "cache {} s{} → {}",
                secs(lifetime),
                if refresh_ahead.is_some() {
                    " + refresh-ahead"
                } else {
                    ""
                },
                match upstream {
                    Upstream::Log => "log",
                    Upstream::RegionalCopy => "regional copy",
                }
            ),
        };
        format!(
            "background {} s / serve {} s, {}",
            secs(self.interval),
            secs(self.serve_for),
            source
        )
    }

    fn source(&self) -> Source {
        self.source
    }

    fn claimed_bound(&self, location: &Location) -> Micros {
        self.serve_for + self.lifetime() + source_delay(self.source, location)
    }

    fn formula(&self) -> String {
        match self.source {
            Source::Log => "serve_for + RTT to log".into(),
            Source::LocationCache {
                upstream: Upstream::Log,
                ..
            } => "serve_for + cache lifetime + RTT to log".into(),
            Source::LocationCache {
                upstream: Upstream::RegionalCopy,
                ..
            } => "serve_for + cache lifetime + RTT to copy + RTT copy↔log".into(),
        }
    }

    fn on_request(&self, s: &mut IsolateState, now: Micros, p: &mut dyn Platform) -> Answer {
        let age = s.held_since.map(|since| now.saturating_sub(since));
        if let (Some(age), Some(held)) = (age, s.as_of) {
            if age <= self.serve_for {
                if age > self.interval && s.in_flight.is_none() {
                    s.in_flight = Some(p.fetch(now));
                }
                return Answer {
                    latency: 0,
                    as_of: held,
                };
            }
        }
        let fetch = match s.in_flight {
            Some(fetch) => fetch,
            None => {
                let fetch = p.fetch(now);
                s.in_flight = Some(fetch);
                fetch
            }
        };
        let (kv_latency, kv_as_of) = p.kv_read(now);
        Answer {
            latency: (fetch.done - now).max(kv_latency),
            as_of: fetch.as_of.max(kv_as_of),
        }
    }

    fn on_fetch_done(&self, s: &mut IsolateState, fetch: &Fetch) {
        if s.held_since.is_none_or(|since| fetch.start >= since) {
            s.held_since = Some(fetch.start);
            s.as_of = Some(fetch.as_of);
        }
        if s.in_flight == Some(*fetch) {
            s.in_flight = None;
        }
    }
}

/// Seconds as Rust prints an `f64`: `2`, `0.5`.
fn secs(t: Micros) -> String {
    format!("{}", t as f64 / SEC as f64)
}

/// (Built) What crates/core and crates/worker do (`changes::before_verify`, `begin_background`,
/// `refresh`, `Cached`; the worker's `LocationCopy`): the overlay answers without waiting while
/// the stamp of the snapshot it holds is under two intervals old; a request that finds the last
/// refresh started an interval ago or more starts one in the background; a request that finds
/// the overlay not live awaits a snapshot of its own (no sharing), then reads KV. Snapshots come
/// through the location's copy (lifetime = interval, from the stamp), with refresh-ahead in its
/// last quarter by background refreshes only. States `revoke_bound(interval)` from the core: two intervals, whatever the
/// location.
#[derive(Debug, Clone, Copy)]
pub struct Built {
    pub interval: Micros,
}

impl Built {
    fn live_for(&self) -> Micros {
        let ms = lumiqtrace_core::changes::revoke_bound(self.interval / crate::model::MS);
        ms * crate::model::MS
    }
}

impl Design for Built {
    fn name(&self) -> String {
        format!(
            "as built: background every {} s, copy {} s from its stamp + refresh-ahead → log",
            secs(self.interval),
            secs(self.interval)
        )
    }

    fn source(&self) -> Source {
        Source::LocationCache {
            lifetime: self.interval,
            upstream: Upstream::Log,
            refresh_ahead: Some(self.interval / 4),
            stamped: true,
        }
    }

    fn claimed_bound(&self, _location: &Location) -> Micros {
        self.live_for()
    }

    fn formula(&self) -> String {
        "2 × interval (changes::revoke_bound)".into()
    }

    fn on_request(&self, s: &mut IsolateState, now: Micros, p: &mut dyn Platform) -> Answer {
        let live = s
            .held_since
            .is_some_and(|stamp| now < stamp + self.live_for());
        if let (true, Some(held)) = (live, s.as_of) {
            if s.refresh_started.is_none_or(|at| now >= at + self.interval) {
                s.refresh_started = Some(now);
                p.fetch(now);
            }
            return Answer {
                latency: 0,
                as_of: held,
            };
        }
        s.refresh_started = Some(now);
        let fetch = p.fetch_waiting(now);
        let (kv_latency, kv_as_of) = p.kv_read(fetch.done);
        Answer {
            latency: fetch.done - now + kv_latency,
            as_of: fetch.as_of.max(kv_as_of),
        }
    }

    fn on_fetch_done(&self, s: &mut IsolateState, fetch: &Fetch) {
        if s.held_since.is_none_or(|stamp| fetch.stamp >= stamp) {
            s.held_since = Some(fetch.stamp);
            s.as_of = Some(fetch.as_of);
        }
    }
}
