//! The deployment being simulated: regions with their round trips to the log, locations, and the
//! isolates in each with their request rates, all drawn from one seed. Sources for every figure
//! are in `docs/change-log-at-scale.md`; figures without one are marked as assumptions there.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Pareto};

/// Simulated time in microseconds.
pub type Micros = u64;
/// One millisecond in [`Micros`].
pub const MS: Micros = 1_000;
/// One second in [`Micros`].
pub const SEC: Micros = 1_000_000;

/// A group of locations sharing a round-trip range to the log (one Durable Object in eastern
/// North America, the `enam` location hint) and, for regional read copies, to their region's copy.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    pub name: &'static str,
    /// How many of the 300 locations are in the region.
    pub locations: usize,
    /// Round trip location ↔ log, ms: each location draws uniformly in `[lo, hi]`.
    pub rtt_to_log_ms: (f64, f64),
    /// Round trip location ↔ the region's read copy, ms (uniform in `[lo, hi]`).
    pub rtt_to_copy_ms: (f64, f64),
    /// Round trip region's read copy ↔ log, ms (the copy is fed on each commit: half of it is the
    /// delay before the copy has a commit).
    pub copy_to_log_ms: f64,
}

/// The six regions: 300 locations. Ranges from the sources cited in the doc (AWS us-east-1
/// inter-region averages for the log's round trips; Azure's intra-continent ranges for the
/// regional copies); AF/ME and the SA/OC regional ranges are assumptions.
pub const REGIONS: [Region; 6] = [
    Region {
        name: "NA",
        locations: 70,
        rtt_to_log_ms: (10.0, 90.0),
        rtt_to_copy_ms: (5.0, 70.0),
        copy_to_log_ms: 10.0,
    },
    Region {
        name: "EU",
        locations: 75,
        rtt_to_log_ms: (75.0, 130.0),
        rtt_to_copy_ms: (3.0, 30.0),
        copy_to_log_ms: 80.0,
    },
    Region {
        name: "APAC",
        locations: 65,
        rtt_to_log_ms: (145.0, 260.0),
        rtt_to_copy_ms: (4.0, 135.0),
        copy_to_log_ms: 180.0,
    },
    Region {
        name: "SA",
        locations: 35,
        rtt_to_log_ms: (110.0, 180.0),
        rtt_to_copy_ms: (5.0, 60.0),
        copy_to_log_ms: 120.0,
    },
    Region {
        name: "AF/ME",
        locations: 40,
        rtt_to_log_ms: (150.0, 280.0),
        rtt_to_copy_ms: (10.0, 100.0),
        copy_to_log_ms: 180.0,
    },
    Region {
        name: "OC",
        locations: 15,
        rtt_to_log_ms: (200.0, 250.0),
        rtt_to_copy_ms: (5.0, 50.0),
        copy_to_log_ms: 230.0,
    },
];

/// How the isolates and their traffic are drawn.
#[derive(Debug, Clone)]
pub struct Workload {
    pub seed: u64,
    /// Multiplies every location's isolate count (the scale sweep: 1, 10, 100).
    pub isolate_scale: usize,
    /// Isolates per location: ⌈log-normal⌉ with this median and σ (of the log), at least 1.
    pub isolates_median: f64,
    pub isolates_sigma: f64,
    /// Requests per second of one isolate: Pareto with this minimum and shape, capped.
    pub rate_min_per_s: f64,
    pub rate_shape: f64,
    pub rate_max_per_s: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            seed: 20,
            isolate_scale: 1,
            isolates_median: 4.0,
            isolates_sigma: 1.0,
            rate_min_per_s: 0.1,
            rate_shape: 1.2,
            rate_max_per_s: 100.0,
        }
    }
}

/// One location: where it is and what its round trips are.
#[derive(Debug, Clone)]
pub struct Location {
    /// Index into [`REGIONS`].
    pub region: usize,
    pub rtt_to_log: Micros,
    pub rtt_to_copy: Micros,
    pub copy_to_log: Micros,
    /// Its isolates' indices in [`World::isolates`].
    pub isolates: std::ops::Range<usize>,
}

/// One isolate: its location and its Poisson request rate.
#[derive(Debug, Clone, Copy)]
pub struct Isolate {
    pub location: usize,
    pub rate_per_s: f64,
}

/// The drawn deployment.
#[derive(Debug, Clone)]
pub struct World {
    pub locations: Vec<Location>,
    pub isolates: Vec<Isolate>,
    pub seed: u64,
}

impl World {
    /// Draws the deployment from `workload.seed`: the same seed gives the same world.
    ///
    /// # Panics
    /// If the workload's distribution parameters are not positive and finite.
    pub fn generate(workload: &Workload) -> World {
        // Locations draw from one stream and isolate rates from another, so the locations (their
        // round trips and base isolate counts) are the same at every scale.
        let mut rng = ChaCha8Rng::seed_from_u64(workload.seed);
        let mut rate_rng = ChaCha8Rng::seed_from_u64(workload.seed);
        rate_rng.set_stream(1);
        let per_location = LogNormal::new(workload.isolates_median.ln(), workload.isolates_sigma)
            .expect("isolate distribution parameters are valid");
        let rates = Pareto::new(workload.rate_min_per_s, workload.rate_shape)
            .expect("rate distribution parameters are valid");
        let ms =
            |lo: f64, hi: f64, rng: &mut ChaCha8Rng| (rng.gen_range(lo..=hi) * 1000.0) as Micros;
        let mut locations = Vec::new();
        let mut isolates = Vec::new();
        for (region, spec) in REGIONS.iter().enumerate() {
            for _ in 0..spec.locations {
                let rtt_to_log = ms(spec.rtt_to_log_ms.0, spec.rtt_to_log_ms.1, &mut rng);
                let rtt_to_copy = ms(spec.rtt_to_copy_ms.0, spec.rtt_to_copy_ms.1, &mut rng);
                let count = per_location.sample(&mut rng).ceil().max(1.0) as usize;
                let first = isolates.len();
                for _ in 0..count * workload.isolate_scale {
                    let rate = rates.sample(&mut rate_rng).min(workload.rate_max_per_s);
                    isolates.push(Isolate {
                        location: locations.len(),
                        rate_per_s: rate,
                    });
                }
                locations.push(Location {
                    region,
                    rtt_to_log,
                    rtt_to_copy,
                    copy_to_log: (spec.copy_to_log_ms * 1000.0) as Micros,
                    isolates: first..isolates.len(),
                });
            }
        }
        World {
            locations,
            isolates,
            seed: workload.seed,
        }
    }

    /// Total offered load, requests per second.
    pub fn request_rate(&self) -> f64 {
        self.isolates.iter().map(|i| i.rate_per_s).sum()
    }
}
