//! The discrete-event engine: Poisson arrivals per isolate, refreshes and location-cache puts as
//! timed events, one design answering every request; and what it measures: verify latency, the
//! requests the log (and each regional copy) receives, and for revokes committed at random
//! times how long each isolate still grants the key, checked against the design's stated bound.

use crate::design::{Design, Fetch, IsolateState, Platform, Source, Upstream};
use crate::model::{Location, Micros, World, MS, REGIONS, SEC};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The run's timing and the platform's costs.
#[derive(Debug, Clone)]
pub struct Params {
    /// Requests before this only warm the isolates up (cold start: nothing held).
    pub warmup: Micros,
    /// Arrivals stop here.
    pub end: Micros,
    /// Revokes committed uniformly in `revoke_window`; exposures are followed until `end`.
    pub revokes: usize,
    pub revoke_window: (Micros, Micros),
    /// A KV read of a key hot in the location.
    pub kv_read: Micros,
    /// KV's documented propagation bound: a read reflects every write older than this.
    pub kv_worst: Micros,
    /// A Cache API read or put in the location.
    pub cache_read: Micros,
    /// The log's (or a copy's) own time to answer.
    pub service: Micros,
    /// Admin commits per second (each is pushed to every regional copy).
    pub commits_per_s: f64,
    /// A verify waiting at least this long counts as slow.
    pub slow: Micros,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            warmup: 15 * SEC,
            end: 110 * SEC,
            revokes: 40,
            revoke_window: (15 * SEC, 45 * SEC),
            kv_read: MS,
            kv_worst: 60 * SEC,
            cache_read: MS,
            service: MS,
            commits_per_s: 1.0,
            slow: 50 * MS,
        }
    }
}

impl Params {
    /// A shorter run for tests (debug builds): 10 s warm-up, revokes in 10–20 s, end at 40 s.
    pub fn short() -> Self {
        Params {
            warmup: 10 * SEC,
            end: 40 * SEC,
            revokes: 20,
            revoke_window: (10 * SEC, 20 * SEC),
            ..Params::default()
        }
    }

    fn measured_seconds(&self) -> f64 {
        (self.end - self.warmup) as f64 / SEC as f64
    }
}

/// Latency percentiles, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: Micros,
    pub p90: Micros,
    pub p99: Micros,
    pub p999: Micros,
    pub max: Micros,
}

impl Percentiles {
    /// Nearest-rank percentiles of `sorted` (ascending); zeros when empty.
    pub fn of_sorted(sorted: &[u32]) -> Percentiles {
        let at = |q: f64| -> Micros {
            if sorted.is_empty() {
                return 0;
            }
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1] as Micros
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: sorted.last().map_or(0, |&m| m as Micros),
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub design: String,
    pub formula: String,
    pub isolates: usize,
    pub locations: usize,
    /// Requests measured (arrived after the warm-up).
    pub requests: u64,
    pub latency: Percentiles,
    /// p99 latency per region, in [`REGIONS`] order.
    pub latency_p99_by_region: Vec<Micros>,
    /// Share of verifies that waited at least [`Params::slow`].
    pub slow_share: f64,
    /// Requests per second the single log receives from isolates or caches.
    pub log_rps: f64,
    /// Commit pushes per second from the log to the regional copies (commits × copies).
    pub push_rps: f64,
    /// Requests per second at the busiest regional copy, and at all copies together.
    pub copy_rps_max: f64,
    pub copy_rps_total: f64,
    /// Log requests per location per cache lifetime (1.0: one fetch each, as the design intends).
    pub fetches_per_location_lifetime: Option<f64>,
    /// Per revoke and isolate that served a request after it: how long after the commit the
    /// isolate last granted the key (0 if it never did), µs.
    pub revoke_p99: Micros,
    pub revoke_max: Micros,
    pub revoke_samples: usize,
    /// The oldest state any measured answer was decided from (arrival − as-of), µs.
    pub staleness_max: Micros,
    /// The design's stated bound: its largest value over the locations, µs.
    pub bound_max: Micros,
    /// Answers older than the stated bound at their location, and by how much at most.
    pub bound_violations: u64,
    pub bound_worst_excess: Micros,
}

impl Report {
    /// The stated bound held for every answer.
    pub fn bound_holds(&self) -> bool {
        self.bound_violations == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A location-cache entry lands (before refresh answers at equal times; both before arrivals).
    Put {
        location: usize,
        stored_at: Micros,
        as_of: Micros,
        stamp: Micros,
    },
    /// A refresh's answer reaches its isolate.
    Done { isolate: usize, fetch: Fetch },
}

/// The refreshes and cache puts under way, in time order (puts first at equal times, then
/// insertion order). Arrivals are not queued: they come sorted from [`Traffic`].
struct Events {
    heap: BinaryHeap<Reverse<(Micros, u64, Event)>>,
    seq: u64,
}

impl Events {
    fn push(&mut self, at: Micros, event: Event) {
        let class = match event {
            Event::Put { .. } => 0,
            Event::Done { .. } => 1,
        };
        self.seq += 1;
        self.heap
            .push(Reverse((at, (class << 60) | self.seq, event)));
    }

    /// The next event at or before `until`.
    fn pop_until(&mut self, until: Micros) -> Option<Event> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= until => self.heap.pop().map(|Reverse(e)| e.2),
            _ => None,
        }
    }
}

/// Every request of a run, sorted by (arrival µs, isolate): each isolate's Poisson arrivals,
/// drawn from its own stream of the world's seed, so every design sees the same requests.
#[derive(Debug, Clone)]
pub struct Traffic {
    arrivals: Vec<(u32, u32)>,
}

impl Traffic {
    /// Draws the arrivals before `end`.
    ///
    /// # Panics
    /// If `end` or the isolate count does not fit in `u32` (over an hour, or 4 billion isolates).
    pub fn generate(world: &World, end: Micros) -> Traffic {
        let end = u32::try_from(end).expect("a run is shorter than 4,294 s");
        let mut arrivals = Vec::new();
        for (i, isolate) in world.isolates.iter().enumerate() {
            let index = u32::try_from(i).expect("fewer than 2^32 isolates");
            let mut rng = ChaCha8Rng::seed_from_u64(world.seed);
            rng.set_stream(2 + i as u64);
            let exp = Exp::new(isolate.rate_per_s).expect("request rates are positive");
            let mut at = 0u32;
            loop {
                let gap = (exp.sample(&mut rng) * SEC as f64).ceil().max(1.0);
                match at.checked_add(gap.min(u32::MAX as f64) as u32) {
                    Some(next) if next < end => at = next,
                    _ => break,
                }
                arrivals.push((at, index));
            }
        }
        arrivals.sort_unstable();
        Traffic { arrivals }
    }

    /// How many requests.
    pub fn len(&self) -> usize {
        self.arrivals.len()
    }

    /// No requests at all.
    pub fn is_empty(&self) -> bool {
        self.arrivals.is_empty()
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct CacheEntry {
    stored_at: Micros,
    as_of: Micros,
    stamp: Micros,
}

#[derive(Debug, Clone, Copy, Default)]
struct LocationCache {
    entry: Option<CacheEntry>,
    /// A refresh-ahead marker, visible in `[lease_from, lease_until)`.
    lease_from: Micros,
    lease_until: Micros,
}

struct Counters {
    log: u64,
    copies: Vec<u64>,
    window: (Micros, Micros),
}

impl Counters {
    fn counts(&self, at: Micros) -> bool {
        (self.window.0..self.window.1).contains(&at)
    }
}

/// The platform as one isolate's request sees it.
struct Net<'a> {
    isolate: usize,
    location_index: usize,
    location: &'a Location,
    cache: &'a mut LocationCache,
    source: Source,
    params: &'a Params,
    events: &'a mut Events,
    counters: &'a mut Counters,
}

impl Net<'_> {
    /// Asks the log or the region's copy at `at` for a request stamped `stamp`; the answer
    /// lands in the location cache at `done`. Returns (done, as_of).
    fn upstream(&mut self, at: Micros, upstream: Upstream, stamp: Micros) -> (Micros, Micros) {
        let counted = self.counters.counts(at);
        let (done, as_of) = match upstream {
            Upstream::Log => {
                if counted {
                    self.counters.log += 1;
                }
                let rtt = self.location.rtt_to_log;
                (at + rtt + self.params.service, at + rtt / 2)
            }
            Upstream::RegionalCopy => {
                if counted {
                    self.counters.copies[self.location.region] += 1;
                }
                let rtt = self.location.rtt_to_copy;
                let behind = self.location.copy_to_log / 2;
                (
                    at + rtt + self.params.service,
                    (at + rtt / 2).saturating_sub(behind),
                )
            }
        };
        self.events.push(
            done,
            Event::Put {
                location: self.location_index,
                stored_at: done,
                as_of,
                stamp,
            },
        );
        (done, as_of)
    }
}

impl Platform for Net<'_> {
    fn fetch(&mut self, now: Micros) -> Fetch {
        self.fetch_with(now, true)
    }

    fn fetch_waiting(&mut self, now: Micros) -> Fetch {
        self.fetch_with(now, false)
    }

    fn kv_read(&self, now: Micros) -> (Micros, Micros) {
        (
            self.params.kv_read,
            now.saturating_sub(self.params.kv_worst),
        )
    }
}

impl Net<'_> {
    /// A fetch through the design's source; `may_refresh_ahead`: false for a waiting request of
    /// the design as built.
    fn fetch_with(&mut self, now: Micros, may_refresh_ahead: bool) -> Fetch {
        let fetch = match self.source {
            Source::Log => {
                if self.counters.counts(now) {
                    self.counters.log += 1;
                }
                let rtt = self.location.rtt_to_log;
                Fetch {
                    start: now,
                    done: now + rtt + self.params.service,
                    as_of: now + rtt / 2,
                    stamp: now,
                }
            }
            Source::LocationCache {
                lifetime,
                upstream,
                refresh_ahead,
                stamped,
            } => {
                let read = now + self.params.cache_read;
                let born = |e: &CacheEntry| if stamped { e.stamp } else { e.stored_at };
                let valid = self
                    .cache
                    .entry
                    .filter(|e| e.stored_at <= now && now < born(e) + lifetime);
                match valid {
                    Some(entry) => {
                        let ahead = refresh_ahead.filter(|_| may_refresh_ahead || !stamped);
                        if let Some(ahead) = ahead {
                            let due = now >= (born(&entry) + lifetime).saturating_sub(ahead);
                            let c = *self.cache;
                            let leased = c.lease_from <= now && now < c.lease_until;
                            if due && !leased {
                                if c.lease_until <= now {
                                    let lease = match stamped {
                                        true => ahead.div_ceil(SEC) * SEC,
                                        false => ahead,
                                    };
                                    self.cache.lease_from = read;
                                    self.cache.lease_until = read + lease;
                                }
                                let (done, as_of) = self.upstream(read, upstream, now);
                                if stamped {
                                    let fetch = Fetch {
                                        start: now,
                                        done,
                                        as_of,
                                        stamp: now,
                                    };
                                    self.events.push(
                                        done,
                                        Event::Done {
                                            isolate: self.isolate,
                                            fetch,
                                        },
                                    );
                                    return fetch;
                                }
                            }
                        }
                        Fetch {
                            start: now,
                            done: read,
                            as_of: entry.as_of,
                            stamp: entry.stamp,
                        }
                    }
                    None => {
                        let (done, as_of) = self.upstream(read, upstream, now);
                        Fetch {
                            start: now,
                            done,
                            as_of,
                            stamp: now,
                        }
                    }
                }
            }
        };
        self.events.push(
            fetch.done,
            Event::Done {
                isolate: self.isolate,
                fetch,
            },
        );
        fetch
    }
}

const NONE: u32 = u32::MAX;

/// Runs `design` over `world` with the requests of `traffic` (from [`Traffic::generate`] for
/// the same world and `params.end`). Deterministic.
pub fn run(world: &World, traffic: &Traffic, design: &dyn Design, params: &Params) -> Report {
    let n = world.isolates.len();
    let mut events = Events {
        heap: BinaryHeap::new(),
        seq: 0,
    };
    let mut revoke_rng = ChaCha8Rng::seed_from_u64(world.seed);
    revoke_rng.set_stream(u64::MAX);
    let mut revokes: Vec<Micros> = (0..params.revokes)
        .map(|_| revoke_rng.gen_range(params.revoke_window.0..params.revoke_window.1))
        .collect();
    revokes.sort_unstable();

    let source = design.source();
    let bounds: Vec<Micros> = world
        .locations
        .iter()
        .map(|l| design.claimed_bound(l))
        .collect();
    let mut states = vec![IsolateState::default(); n];
    let mut caches = vec![LocationCache::default(); world.locations.len()];
    let mut counters = Counters {
        log: 0,
        copies: vec![0; REGIONS.len()],
        window: (params.warmup, params.end),
    };
    let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); REGIONS.len()];
    let mut exposure = vec![NONE; revokes.len() * n];
    let mut previous = vec![0 as Micros; n];
    let mut staleness_max = 0;
    let mut violations = 0;
    let mut worst_excess = 0;
    let mut slow = 0u64;

    let apply =
        |event: Event, states: &mut [IsolateState], caches: &mut [LocationCache]| match event {
            Event::Put {
                location,
                stored_at,
                as_of,
                stamp,
            } => {
                let cache = &mut caches[location];
                if cache.entry.is_none_or(|e| e.as_of <= as_of) {
                    cache.entry = Some(CacheEntry {
                        stored_at,
                        as_of,
                        stamp,
                    });
                }
            }
            Event::Done { isolate, fetch } => design.on_fetch_done(&mut states[isolate], &fetch),
        };
    for &(at, isolate) in &traffic.arrivals {
        let (now, isolate) = (at as Micros, isolate as usize);
        while let Some(event) = events.pop_until(now) {
            apply(event, &mut states, &mut caches);
        }
        let spec = world.isolates[isolate];
        let location = &world.locations[spec.location];
        let mut net = Net {
            isolate,
            location_index: spec.location,
            location,
            cache: &mut caches[spec.location],
            source,
            params,
            events: &mut events,
            counters: &mut counters,
        };
        let answer = design.on_request(&mut states[isolate], now, &mut net);
        if now >= params.warmup {
            latencies[location.region].push(answer.latency as u32);
            if answer.latency >= params.slow {
                slow += 1;
            }
            let stale = now.saturating_sub(answer.as_of);
            staleness_max = staleness_max.max(stale);
            let bound = bounds[spec.location];
            if stale > bound {
                violations += 1;
                worst_excess = Micros::max(worst_excess, stale - bound);
            }
        }
        // Revokes committed since this isolate's previous request: it now serves a request
        // after them. Those committed after the state it answered from: granted.
        let hi = revokes.partition_point(|&t| t <= now);
        let served_from = revokes.partition_point(|&t| t <= previous[isolate]);
        let row = &mut exposure[isolate * revokes.len()..(isolate + 1) * revokes.len()];
        for e in &mut row[served_from..hi] {
            if *e == NONE {
                *e = 0;
            }
        }
        let granted_from = revokes.partition_point(|&t| t <= answer.as_of);
        for (e, &t0) in row.iter_mut().zip(&revokes).take(hi).skip(granted_from) {
            let late = (now - t0) as u32;
            *e = if *e == NONE { late } else { (*e).max(late) };
        }
        previous[isolate] = now;
    }

    let latency_p99_by_region = latencies
        .iter_mut()
        .map(|region| {
            region.sort_unstable();
            Percentiles::of_sorted(region).p99
        })
        .collect();
    let mut all: Vec<u32> = latencies.concat();
    all.sort_unstable();
    let requests = all.len() as u64;
    let mut exposures: Vec<u32> = exposure.into_iter().filter(|&e| e != NONE).collect();
    exposures.sort_unstable();
    let revoke = Percentiles::of_sorted(&exposures);
    let seconds = params.measured_seconds();
    let copies_total: u64 = counters.copies.iter().sum();
    let uses_copies = matches!(
        source,
        Source::LocationCache {
            upstream: Upstream::RegionalCopy,
            ..
        }
    );
    let fetches_per_location_lifetime = match source {
        Source::LocationCache { lifetime, .. } => {
            let per_lifetime =
                world.locations.len() as f64 * seconds * SEC as f64 / lifetime as f64;
            Some((counters.log + copies_total) as f64 / per_lifetime)
        }
        Source::Log => None,
    };
    Report {
        design: design.name(),
        formula: design.formula(),
        isolates: n,
        locations: world.locations.len(),
        requests,
        latency: Percentiles::of_sorted(&all),
        latency_p99_by_region,
        slow_share: if requests == 0 {
            0.0
        } else {
            slow as f64 / requests as f64
        },
        log_rps: counters.log as f64 / seconds,
        push_rps: if uses_copies {
            params.commits_per_s * REGIONS.len() as f64
        } else {
            0.0
        },
        copy_rps_max: counters.copies.iter().copied().max().unwrap_or(0) as f64 / seconds,
        copy_rps_total: copies_total as f64 / seconds,
        fetches_per_location_lifetime,
        revoke_p99: revoke.p99,
        revoke_max: revoke.max,
        revoke_samples: exposures.len(),
        staleness_max,
        bound_max: bounds.iter().copied().max().unwrap_or(0),
        bound_violations: violations,
        bound_worst_excess: worst_excess,
    }
}
