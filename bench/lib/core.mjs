// bench/lib/core.mjs: runs the criterion micro-benchmark of the pure core (bench/core, own target
// dir) and reads criterion's estimates: median ns per call with its 95% confidence interval.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./workers.mjs";

export const CORE_BENCHES = [
  ["parse", "parse (strict lqt_ + 64 hex check)"],
  ["hash", "hash (SHA-256 → hex)"],
  ["decode", "record decode (json::from_str → KeyRecord)"],
  ["authorize", "authorize decision"],
  ["verify_valid", "whole verify path: parse + hash + decode + authorize"],
  ["reject_malformed", "reject a malformed key (parse only)"],
];

/** Runs `cargo bench` in bench/core; resolves to [{ id, label, medianNs, lowNs, highNs }]. */
export function runCoreBench({ warmUpS = 1, measureS = 3 } = {}) {
  const dir = join(ROOT, "bench/core");
  const target = join(dir, "target");
  execFileSync("cargo", ["bench", "--bench", "verify", "--", "--noplot",
    "--warm-up-time", String(warmUpS), "--measurement-time", String(measureS)], {
    cwd: dir, env: { ...process.env, CARGO_TARGET_DIR: target }, stdio: ["ignore", "ignore", "inherit"],
  });
  return CORE_BENCHES.map(([id, label]) => {
    const est = JSON.parse(readFileSync(join(target, "criterion", id, "new/estimates.json"), "utf8"));
    const { point_estimate, confidence_interval: ci } = est.median;
    return { id, label, medianNs: point_estimate, lowNs: ci.lower_bound, highNs: ci.upper_bound };
  });
}
