//! The standard scenario (the designs, the scale sweep, the interval sweep) and its Markdown
//! tables. Figures: latency in ms, revocation times and bounds in s, loads in requests per second.

use crate::design::{Background, Built, Design, Source, Today, Upstream};
use crate::model::{Micros, Workload, World, MS, REGIONS, SEC};
use crate::sim::{run, Params, Report, Traffic};
use std::fmt::Write;

/// Today's design at its default interval (`CHANGES_REFRESH_SECONDS` = 2); with
/// `await_in_flight`, requests arriving during a refresh await it (A′).
pub fn today(await_in_flight: bool) -> Today {
    Today {
        interval: 2 * SEC,
        await_in_flight,
    }
}

/// Background refresh every `interval`, answering while the held refresh began within two
/// intervals (today's "live"), through `source`.
pub fn background(interval: Micros, source: Source) -> Background {
    Background {
        interval,
        serve_for: 2 * interval,
        source,
    }
}

/// A location cache with lifetime `lifetime` in front of `upstream`, with refresh-ahead
/// `ahead` (0: none).
pub fn cache(lifetime: Micros, upstream: Upstream, ahead: Micros) -> Source {
    Source::LocationCache {
        lifetime,
        upstream,
        refresh_ahead: (ahead > 0).then_some(ahead),
        stamped: false,
    }
}

/// Refresh-ahead head start: above the longest round trip to the log plus its service time, so
/// a refreshed entry lands before the old one lapses.
pub const AHEAD: Micros = 500 * MS;

/// The designs compared, labelled, at a refresh interval of 2 s: A today; A′ today with
/// requests during a refresh awaiting it; B0 background
/// refresh straight from the log; B background refresh through a per-location cache; B+ the
/// same with refresh-ahead; C as B+ with regional read copies behind the cache.
pub fn designs() -> Vec<(&'static str, Box<dyn Design>)> {
    let i = 2 * SEC;
    vec![
        ("A", Box::new(today(false))),
        ("A′", Box::new(today(true))),
        ("B0", Box::new(background(i, Source::Log))),
        ("B", Box::new(background(i, cache(i, Upstream::Log, 0)))),
        (
            "B+",
            Box::new(background(i, cache(i, Upstream::Log, AHEAD))),
        ),
        (
            "C",
            Box::new(background(i, cache(i, Upstream::RegionalCopy, AHEAD))),
        ),
        ("built", Box::new(Built { interval: i })),
    ]
}

/// The interval sweep: B+ and C at intervals of 0.5, 1 and 2 s (cache lifetime = interval,
/// serving for two intervals), and at 1 s serving for one interval only (every refresh awaited,
/// from the location cache).
pub fn sweep() -> Vec<(&'static str, Box<dyn Design>)> {
    let mut out: Vec<(&'static str, Box<dyn Design>)> = Vec::new();
    for interval in [500 * MS, SEC, 2 * SEC] {
        let ahead = AHEAD.min(interval / 2);
        out.push((
            "B+",
            Box::new(background(interval, cache(interval, Upstream::Log, ahead))),
        ));
        out.push((
            "C",
            Box::new(background(
                interval,
                cache(interval, Upstream::RegionalCopy, ahead),
            )),
        ));
    }
    for upstream in [Upstream::Log, Upstream::RegionalCopy] {
        out.push((
            if upstream == Upstream::Log { "B+" } else { "C" },
            Box::new(Background {
                interval: SEC,
                serve_for: SEC,
                source: cache(SEC, upstream, AHEAD),
            }),
        ));
    }
    out
}

fn ms(t: Micros) -> String {
    format!("{:.1}", t as f64 / MS as f64)
}

fn s(t: Micros) -> String {
    format!("{:.2}", t as f64 / SEC as f64)
}

/// One row per design: latency, load, revocation.
pub fn designs_table(reports: &[(&str, Report)]) -> String {
    let mut out = String::from(
        "| | design | verify p50 | p90 | p99 | p99.9 | max | ≥ 50 ms | log req/s | copies req/s (busiest / all) | revoke p99 | revoke max | stated bound (max) | formula | oldest answer | bound held |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (label, r) in reports {
        let copies = if r.copy_rps_total > 0.0 {
            format!("{:.0} / {:.0}", r.copy_rps_max, r.copy_rps_total)
        } else {
            "–".into()
        };
        let log = if r.push_rps > 0.0 {
            format!("{:.0} (+{:.0} pushes)", r.log_rps, r.push_rps)
        } else {
            format!("{:.0}", r.log_rps)
        };
        let held = if r.bound_holds() {
            "yes".to_string()
        } else {
            format!(
                "**no**: {} answers, up to {} s over",
                r.bound_violations,
                s(r.bound_worst_excess)
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2}% | {} | {} | {} | {} | {} | {} | {} | {} |",
            label,
            r.design,
            ms(r.latency.p50),
            ms(r.latency.p90),
            ms(r.latency.p99),
            ms(r.latency.p999),
            ms(r.latency.max),
            r.slow_share * 100.0,
            log,
            copies,
            s(r.revoke_p99),
            s(r.revoke_max),
            s(r.bound_max),
            r.formula,
            s(r.staleness_max),
            held
        );
    }
    out
}

/// Verify p99 by region, one row per design.
pub fn regions_table(reports: &[(&str, Report)]) -> String {
    let mut out = String::from("| | design |");
    let mut rule = String::from("|---|---|");
    for region in REGIONS {
        let _ = write!(out, " {} p99 |", region.name);
        rule.push_str("---|");
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for (label, r) in reports {
        let _ = write!(out, "| {} | {} |", label, r.design);
        for p99 in &r.latency_p99_by_region {
            let _ = write!(out, " {} |", ms(*p99));
        }
        out.push('\n');
    }
    out
}

/// The scale sweep: for each design (by label) and scale, the isolates, the load on the log and
/// copies, latency and revocation.
pub fn scale_table(rows: &[(&str, usize, f64, Report)]) -> String {
    let mut out = String::from(
        "| | isolates × | isolates | offered req/s | verify p99 | ≥ 50 ms | log req/s | busiest copy req/s | fetches per location per lifetime | revoke max | bound held |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (design, scale, offered, r) in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {:.2}% | {:.0} | {} | {} | {} | {} |",
            design,
            scale,
            r.isolates,
            offered,
            ms(r.latency.p99),
            r.slow_share * 100.0,
            r.log_rps,
            if r.copy_rps_max > 0.0 {
                format!("{:.0}", r.copy_rps_max)
            } else {
                "–".into()
            },
            r.fetches_per_location_lifetime
                .map_or("–".into(), |f| format!("{f:.2}")),
            s(r.revoke_max),
            if r.bound_holds() { "yes" } else { "**no**" }
        );
    }
    out
}

/// The interval sweep: the trade between the bound and the load.
pub fn sweep_table(reports: &[(&str, Report)]) -> String {
    let mut out = String::from(
        "| | design | verify p99 | ≥ 50 ms | log req/s | busiest copy req/s | revoke p99 | revoke max | stated bound (max) | bound held |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (label, r) in reports {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2}% | {:.0} | {} | {} | {} | {} | {} |",
            label,
            r.design,
            ms(r.latency.p99),
            r.slow_share * 100.0,
            r.log_rps,
            if r.copy_rps_max > 0.0 {
                format!("{:.0}", r.copy_rps_max)
            } else {
                "–".into()
            },
            s(r.revoke_p99),
            s(r.revoke_max),
            s(r.bound_max),
            if r.bound_holds() { "yes" } else { "**no**" }
        );
    }
    out
}

/// Runs the standard scenario for `seed` with isolate scales `scales` (the first is the base)
/// and returns the Markdown.
pub fn standard(seed: u64, scales: &[usize], params: &Params) -> String {
    let designs = designs();
    let mut out = String::new();
    let base_workload = Workload {
        seed,
        isolate_scale: scales.first().copied().unwrap_or(1),
        ..Workload::default()
    };
    let world = World::generate(&base_workload);
    let _ = writeln!(
        out,
        "Seed {seed}: {} locations, {} isolates, {:.0} requests/s offered; measured over {} s after a {} s warm-up; {} revokes committed between {} s and {} s; KV read {} ms, cache read {} ms, log service {} ms.\n",
        world.locations.len(),
        world.isolates.len(),
        world.request_rate(),
        (params.end - params.warmup) / SEC,
        params.warmup / SEC,
        params.revokes,
        params.revoke_window.0 / SEC,
        params.revoke_window.1 / SEC,
        ms(params.kv_read),
        ms(params.cache_read),
        ms(params.service),
    );
    let traffic = Traffic::generate(&world, params.end);
    let base: Vec<(&str, Report)> = designs
        .iter()
        .map(|(label, d)| (*label, run(&world, &traffic, d.as_ref(), params)))
        .collect();
    out.push_str("### The designs\n\n");
    out.push_str(&designs_table(&base));
    out.push_str("\n### Verify p99 by region (ms)\n\n");
    out.push_str(&regions_table(&base));

    let mut rows = Vec::new();
    for &scale in scales {
        let world = World::generate(&Workload {
            isolate_scale: scale,
            ..base_workload.clone()
        });
        let offered = world.request_rate();
        let traffic =
            (scale != base_workload.isolate_scale).then(|| Traffic::generate(&world, params.end));
        for (i, (label, d)) in designs.iter().enumerate() {
            let report = match &traffic {
                None => base[i].1.clone(),
                Some(traffic) => run(&world, traffic, d.as_ref(), params),
            };
            rows.push((i, *label, scale, offered, report));
        }
    }
    rows.sort_by_key(|(i, _, scale, _, _)| (*i, *scale));
    let rows: Vec<(&str, usize, f64, Report)> = rows
        .into_iter()
        .map(|(_, label, scale, offered, report)| (label, scale, offered, report))
        .collect();
    out.push_str("\n### Scale sweep\n\n");
    out.push_str(&scale_table(&rows));

    let sweep: Vec<(&str, Report)> = sweep()
        .iter()
        .map(|(label, d)| (*label, run(&world, &traffic, d.as_ref(), params)))
        .collect();
    out.push_str("\n### Interval sweep (cache lifetime = interval, refresh-ahead)\n\n");
    out.push_str(&sweep_table(&sweep));
    out
}
