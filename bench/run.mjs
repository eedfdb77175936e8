#!/usr/bin/env node
// bench/run.mjs: the one benchmark command (`npm run bench`). In one run on this machine:
// (1) the pure core with criterion, (2) the Rust and JavaScript workers and the trivial ceiling end
// to end through workerd + local KV with wrk on 127.0.0.1, (3) the deployable bundle's size.
// Writes bench/out/ (results.md, results.json, throughput.svg/.png) and, on a full run, bench/RESULTS.md.
//
// Options: --skip-core --skip-bundle --skip-rust --no-build (harness development), --quick (1 run of 3 s).
// Env: BENCH_SECONDS (6), BENCH_RUNS (5, at least 3 for RESULTS.md), BENCH_CONNECTIONS (8), BENCH_WARMUP (3),
// BENCH_PIN (1: wrk and the workers on separate CPUs, see bench/lib/load.mjs; 0: off).
import { execFileSync, execSync } from "node:child_process";
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const args = new Set(process.argv.slice(2));
const log = (m) => console.log(`[bench] ${m}`);
// The build comes first: scripts/build.sh also installs the npm packages the libraries below import.
if (!args.has("--skip-rust") && !args.has("--no-build")) {
  log("building the Rust worker (bash scripts/build.sh)");
  execFileSync("bash", ["scripts/build.sh"], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
}
const { CASES, verifyUrl, startWorker, cpuMicros } = await import("./lib/workers.mjs");
const { ensureWrk, runWrk, PINNING } = await import("./lib/load.mjs");
const { runCoreBench } = await import("./lib/core.mjs");
const { measureBundle } = await import("./lib/bundle.mjs");
const { summarise, targets, markdown, chart, median } = await import("./lib/report.mjs");

const quick = args.has("--quick");
const settings = {
  seconds: Number(process.env.BENCH_SECONDS || (quick ? 3 : 6)),
  runs: Number(process.env.BENCH_RUNS || (quick ? 1 : 5)),
  connections: Number(process.env.BENCH_CONNECTIONS || 8),
  warmupSeconds: Number(process.env.BENCH_WARMUP || (quick ? 1 : 3)),
  threads: 1,
  pinning: PINNING,
};
const OUT = join(ROOT, "bench/out");
const sh = (cmd) => { try { return execSync(cmd, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim(); } catch { return "?"; } };

function machine() {
  const osName = (readFileSync("/etc/os-release", "utf8").match(/^PRETTY_NAME="?([^"\n]*)/m) || [])[1] || os.type();
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"), cpu: os.cpus()[0]?.model.trim() || "?",
    nproc: os.availableParallelism(), memGiB: (os.totalmem() / 2 ** 30).toFixed(1), os: `${osName} (${os.release()})`,
    node: process.version, rustc: sh("rustc --version"), load: os.loadavg().map((l) => l.toFixed(2)).join(" "),
    commit: process.env.BENCH_COMMIT || sh(`git -C ${ROOT} describe --always --dirty`),
  };
}

// What each worker must answer per case before it is loaded (a wrong answer invalidates the numbers).
// `direct`: the malformed key again, to the worker's own socket (no Miniflare entry worker).
const EXPECT = {
  trivial: { valid: [200], malformed: [200], unknown: [200], direct: [200] },
  js: { valid: [200, "active"], malformed: [401, "malformed_key"], unknown: [401, "invalid_key"], direct: [401, "malformed_key"] },
};
EXPECT.rust = EXPECT["rust-kv"] = EXPECT.js;
// The refusal's shape alone, for the malformed key only.
EXPECT.refusal = { malformed: EXPECT.js.malformed, direct: EXPECT.js.direct };
const casesOf = (w) => Object.keys(CASES).filter((c) => EXPECT[w.name ?? w][c]);

/** One `GET /v1/auth/verify` as case `c` asks it. */
const ask = (w, c) => fetch(verifyUrl(w, c), { headers: { Authorization: `Bearer ${CASES[c].key}` } });

/** What a worker answers a malformed key as case `c` asks it: status, headers and body. */
async function refusalOf(w, c) {
  const res = await ask(w, c);
  return JSON.stringify({ status: res.status, headers: [...res.headers].filter(([n]) => n !== "content-length"), body: await res.text() });
}

async function check(w, c) {
  const res = await ask(w, c);
  const body = await res.text();
  const [status, code] = EXPECT[w.name][c];
  const ok = res.status === status && (!code || body.includes(`"${code}"`));
  if (!ok) throw new Error(`${w.name}/${c}: expected ${status} ${code || ""}, got ${res.status} ${body.slice(0, 200)}`);
}

async function endToEnd(names, notes) {
  ensureWrk();
  const workers = [];
  let starting = Promise.resolve(); // a worker still starting is stopped too, once it is up
  const stop = async () => {
    await starting.catch(() => {});
    for (const w of workers.splice(0)) await w.dispose().catch(() => {});
  };
  process.once("SIGINT", () => stop().then(() => process.exit(130)));
  // Each load also reads the workerd process's CPU time: CPU per request is far less sensitive
  // than req/s to whatever else the machine is running.
  const load = async (w, c, seconds) => {
    const cpu0 = w.pid ? cpuMicros(w.pid) : null;
    const r = await runWrk(verifyUrl(w, c), `Bearer ${CASES[c].key}`, { ...settings, seconds });
    return { ...r, cpuUs: cpu0 === null ? null : (cpuMicros(w.pid) - cpu0) / r.requests };
  };
  const e2e = Object.fromEntries(names.map((n) => [n, Object.fromEntries(casesOf(n).map((c) => [c, []]))]));
  const startups = Object.fromEntries(names.map((n) => [n, []]));
  try {
    for (let run = 0; run < settings.runs; run++) {
      // Every run starts fresh workerd processes, so runs are independent repeats: a workerd kept
      // under load grew to 750 MB within a minute here, and the trivial ceiling's cost then
      // swung between 125 and 153 µs a request from one run to the next.
      for (const n of names) {
        starting = startWorker(n).then((w) => {
          workers.push(w);
          return w;
        });
        const w = await starting;
        startups[n].push(w.startupMs);
        if (run === 0) log(`${n} worker on ${w.url}`);
      }
      await checkAnswers(workers);
      for (const w of workers) for (const c of casesOf(w)) await load(w, c, settings.warmupSeconds);
      for (const c of Object.keys(CASES)) {
        // Rotate the order each run so no worker always goes first after a case change.
        const here = workers.filter((w) => EXPECT[w.name][c]);
        const order = here.map((_, i) => here[(i + run) % here.length]);
        for (const w of order) {
          const r = await load(w, c, settings.seconds);
          const want2xx = EXPECT[w.name][c][0] === 200;
          if (r.errors || (want2xx ? r.non2xx : r.requests - r.non2xx))
            notes.push(`${w.name}/${c} run ${run + 1}: ${r.errors} socket errors, ${r.non2xx} of ${r.requests} non-2xx.`);
          e2e[w.name][c].push(r);
          log(`run ${run + 1}/${settings.runs} ${c.padEnd(9)} ${w.name.padEnd(7)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  cpu ${r.cpuUs?.toFixed(0)} µs/req`);
        }
      }
      await stop();
    }
    settings.startupMs = Object.fromEntries(names.map((n) => [n, median(startups[n])]));
    return e2e;
  } finally {
    await stop();
  }
}

/** Every worker answers every case as EXPECT says, and the prebuilt refusal equals ours. */
async function checkAnswers(workers) {
  for (const w of workers) for (const c of casesOf(w)) await check(w, c);
  const [rust, refusal] = ["rust", "refusal"].map((n) => workers.find((w) => w.name === n));
  if (!rust || !refusal) return;
  for (const c of ["malformed", "direct"]) {
    const [ours, prebuilt] = [await refusalOf(rust, c), await refusalOf(refusal, c)];
    if (ours !== prebuilt) throw new Error(`bench/trivial-worker/refusal.js no longer sends the Rust worker's refusal (${c}):\n${ours}\n${prebuilt}`);
  }
}

const notes = [];
const info = machine();
mkdirSync(OUT, { recursive: true });
log(`${info.cpu}, ${info.nproc} CPUs, load ${info.load}`);

let core = null, bundle = null;
if (!args.has("--skip-core")) { log("core: cargo bench in bench/core (criterion)"); core = runCoreBench(quick ? { measureS: 1 } : {}); }
if (!args.has("--skip-bundle") && !args.has("--skip-rust")) {
  log("bundle: wrangler deploy --dry-run --outdir <tmp>");
  bundle = measureBundle();
  const m = bundle.wranglerLine.match(/gzip:\s*([\d.]+)\s*KiB/);
  if (m) bundle.wranglerGzip = Number(m[1]) * 1024;
}
settings.wrk = sh("wrk --version 2>&1 | head -1").split(" ").slice(0, 2).join(" ");
const names = ["trivial", "refusal", "js", ...(args.has("--skip-rust") ? [] : ["rust", "rust-kv"])];
info.load = os.loadavg().map((l) => l.toFixed(2)).join(" "); // as the load tests start
if (os.loadavg()[0] > 0.5 * info.nproc) notes.push(`The machine was busy when the load tests started (load average ${info.load}): expect wide req/s spreads; workerd CPU/req is the steadier figure.`);
const e2e = await endToEnd(names, notes);
const stats = summarise(e2e);

const md = markdown({ machine: info, settings, core, stats, bundle, notes });
writeFileSync(join(OUT, "results.md"), md);
writeFileSync(join(OUT, "results.json"), JSON.stringify({ machine: info, settings, core, e2e, stats, bundle, notes }, null, 2));
const png = await chart(stats, join(OUT, "throughput.svg"), join(OUT, "throughput.png"));
const full = !quick && settings.runs >= 3 && ![...args].some((a) => a.startsWith("--skip") || a === "--no-build");
if (full) {
  writeFileSync(join(ROOT, "bench/RESULTS.md"), `# Benchmark results\n\nLatest full run of \`npm run bench\` (bench/run.mjs). The chart is written to bench/out/throughput.png (not committed).\n\n${md}`);
}
console.log("\n" + md);
console.log("Targets:");
for (const t of targets(stats, bundle)) console.log(`  ${t.pass === null ? "n/a " : t.pass ? "PASS" : "MISS"}  ${t.name}: ${t.measured}`);
log(`wrote ${OUT}/results.md, results.json${png ? ", throughput.png" : ""}${full ? " and bench/RESULTS.md" : ""}`);
