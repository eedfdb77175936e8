#!/usr/bin/env node
// bench/run.mjs: `npm run bench`, what a verify costs the people who run this worker. In one run,
// for a hot valid key, a malformed key and an unknown key, side by side for the trivial worker,
// the plain JavaScript worker and ours: workerd CPU per request, KV reads and Durable Object
// requests per 1,000 requests (counted), and the cost per million verifies at Cloudflare's prices;
// then the cold start and the deployable bundle, and the targets' verdicts; and what reporting key
// usage (issue 19) adds: one window of ours on the hot key as long as USAGE_FLUSH_SECONDS + 2 s, so
// at least one report lands in it, with its KeyUsage requests and storage rows written counted.
// Writes bench/out/results.md and results.json; bench/RESULTS.md on a full run (or with --record).
//
// Then the far change log case (bench/lib/far-log.mjs): verify latency with 200 ms each way to
// the KeyChanges object, at a low and a high rate, with and without the delay, before and after.
// Options: --quick (1 run, 1 s warm-up, 3 s per path), --record (write bench/RESULTS.md even so),
// --skip-bundle (no `wrangler deploy --dry-run`; builds with scripts/build.sh instead),
// --no-build (use build/ as it is; implies --skip-bundle), --far-log (the far change log case
// only: bench/out/far-log.md; its "before" rows need `bash bench/build-before.sh` first).
// Env: BENCH_RUNS (5), BENCH_SECONDS (6), BENCH_WARMUP (2), BENCH_CONNECTIONS (8),
// BENCH_PIN (1: wrk and the workers on separate CPUs, see bench/lib/load.mjs; 0: off).
import { execFileSync, execSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const args = new Set(process.argv.slice(2));
const log = (m) => console.log(`[bench] ${m}`);
if (Number(process.versions.node.split(".")[0]) < 22) {
  console.error(`bench: wrangler and Miniflare need Node 22 or later, this is ${process.version}; \`npm run bench\` uses the Node that package.json pins`);
  process.exit(1);
}

// The build comes first (wrangler's dry run runs wrangler.toml's [build] command): it also
// installs the npm packages the libraries below import.
const quick = args.has("--quick");
const noBuild = args.has("--no-build");
const skipBundle = noBuild || args.has("--skip-bundle");
const { measureBundle } = await import("./lib/bundle.mjs");
let bundle = null;
if (!skipBundle) {
  log("bundle: wrangler deploy --dry-run --outdir <tmp> (builds with scripts/build.sh)");
  bundle = measureBundle();
} else if (!noBuild) {
  log("building (bash scripts/build.sh)");
  execFileSync("bash", ["scripts/build.sh"], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
}
const { CASES, WORKERS, WRANGLER, bearer, cpuMicros, startWorker } = await import("./lib/workers.mjs");
const WRANGLER_VARS = WRANGLER.vars ?? {};
const { ensureWrk, runWrk, PINNING } = await import("./lib/load.mjs");
const { markdown, median, summarise, targets } = await import("./lib/report.mjs");
const { farLog, farLogMarkdown, farLogTargets } = await import("./lib/far-log.mjs");

const settings = {
  quick,
  runs: Number(process.env.BENCH_RUNS || (quick ? 1 : 5)),
  seconds: Number(process.env.BENCH_SECONDS || (quick ? 3 : 6)),
  warmupSeconds: Number(process.env.BENCH_WARMUP || (quick ? 1 : 2)),
  connections: Number(process.env.BENCH_CONNECTIONS || 8),
  pinning: PINNING,
};
const farSettings = {
  samples: Number(process.env.BENCH_FAR_SAMPLES || (quick ? 8 : 20)), everyMs: 3000,
  seconds: settings.seconds, connections: settings.connections, runs: quick ? 1 : 3,
};
if (args.has("--far-log")) {
  ensureWrk();
  mkdirSync(join(ROOT, "bench/out"), { recursive: true });
  const far = await farLog({ ...farSettings, log });
  const md = farLogMarkdown(far, farSettings);
  writeFileSync(join(ROOT, "bench/out/far-log.md"), md);
  console.log("\n" + md);
  log("wrote bench/out/far-log.md");
  process.exit(0);
}
const sh = (cmd) => { try { return execSync(cmd, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim(); } catch { return "?"; } };
const version = (...paths) => {
  for (const p of paths) try { return JSON.parse(readFileSync(join(ROOT, "node_modules", p, "package.json"), "utf8")).version; } catch {}
  return "?";
};

function machine() {
  const osName = (readFileSync("/etc/os-release", "utf8").match(/^PRETTY_NAME="?([^"\n]*)/m) || [])[1] || os.type();
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"), cpu: os.cpus()[0]?.model.trim() || "?",
    nproc: os.availableParallelism(), memGiB: (os.totalmem() / 2 ** 30).toFixed(1), os: `${osName} (${os.release()})`,
    load: os.loadavg().map((l) => l.toFixed(2)).join(" "),
    // The results file itself does not make the code "dirty".
    commit: process.env.BENCH_COMMIT || sh("git rev-parse --short HEAD") + (sh("git status --porcelain -- . ':!bench/RESULTS.md'") ? "-dirty" : ""),
    tools: `Node ${process.version}, ${sh("rustc --version")}, miniflare ${version("miniflare")} (workerd ${version("miniflare/node_modules/workerd", "workerd")}), wrangler ${version("wrangler")}`,
  };
}

/** What each worker must answer on each path (a wrong answer would make the numbers meaningless). */
const EXPECT = {
  trivial: { valid: [200], malformed: [200], unknown: [200] },
  js: { valid: [200, "active"], malformed: [401, "malformed_key"], unknown: [401, "invalid_key"] },
};
EXPECT.rust = EXPECT.js;

async function check(w, c) {
  const res = await fetch(`${w.url}/v1/auth/verify`, { headers: { authorization: bearer(w, c) } });
  const body = await res.text();
  const [status, code] = EXPECT[w.name][c];
  if (res.status !== status || (code && !body.includes(`"${code}"`)))
    throw new Error(`${w.name}/${c}: expected ${status} ${code || ""}, got ${res.status} ${body.slice(0, 200)}`);
}

const minus = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - b[k]]));

/** One measured window: CPU, counts and wrk's figures for worker `w` on path `c`. */
async function measure(w, c, seconds) {
  const [k0, cpu0] = [await w.counts(), cpuMicros(w.pid)];
  const r = await runWrk(`${w.url}/v1/auth/verify`, bearer(w, c), { ...settings, seconds });
  const [cpu1, k1] = [cpuMicros(w.pid), await w.counts()];
  return { ...r, cpuUs: (cpu1 - cpu0) / r.requests, kv: minus(k1.kv, k0.kv), dos: minus(k1.do, k0.do) };
}

const names = Object.keys(WORKERS), cases = Object.keys(CASES);
const windows = Object.fromEntries(names.map((n) => [n, Object.fromEntries(cases.map((c) => [c, []]))]));
const coldStarts = Object.fromEntries(names.map((n) => [n, []]));
const usageWindows = [];
const notes = [];
const info = machine();
mkdirSync(join(ROOT, "bench/out"), { recursive: true });
ensureWrk();
settings.wrk = sh("wrk --version 2>&1 | head -1").split(" ").slice(0, 2).join(" ");
if (os.loadavg()[0] > 0.5 * info.nproc) notes.push(`The machine was busy as the load started (load average ${info.load}): CPU per request is the steadier figure; req/s and cold starts move with the load.`);
log(`${info.cpu}, ${info.nproc} CPUs, load ${info.load}; ${settings.runs} run(s) of ${settings.seconds} s per path`);

const running = [];
let starting = Promise.resolve();
const stopAll = async () => {
  await starting.catch(() => {});
  for (const w of running.splice(0)) await w.dispose().catch(() => {});
};
process.once("SIGINT", () => stopAll().then(() => process.exit(130)));
try {
  // A first Miniflare in this process also pays for loading Miniflare itself: start one and throw
  // it away, so no worker's cold start carries that.
  await (await startWorker("trivial")).dispose();
  for (let run = 0; run < settings.runs; run++) {
    // Fresh workerd processes every run: runs are independent repeats, and each gives a cold
    // start (in rotating order, like the loads).
    for (const n of names.map((_, i) => names[(i + run) % names.length])) {
      starting = startWorker(n).then((w) => (running.push(w), w));
      const w = await starting;
      coldStarts[n].push(w.coldStartMs);
      log(`run ${run + 1}: ${n} up in ${w.coldStartMs.toFixed(0)} ms on ${w.url}`);
    }
    for (const w of running) for (const c of cases) await check(w, c);
    for (const w of running) for (const c of cases) await runWrk(`${w.url}/v1/auth/verify`, bearer(w, c), { ...settings, seconds: settings.warmupSeconds });
    for (const c of cases) {
      // Rotate the order each run so no worker always goes first after a change of path.
      for (const w of running.map((_, i) => running[(i + run) % running.length])) {
        const r = await measure(w, c, settings.seconds);
        const want2xx = EXPECT[w.name][c][0] === 200;
        if (r.errors || (want2xx ? r.non2xx : r.requests - r.non2xx))
          notes.push(`${w.name}/${c} run ${run + 1}: ${r.errors} socket errors, ${r.non2xx} of ${r.requests} answers not 2xx.`);
        windows[w.name][c].push(r);
        log(`run ${run + 1} ${c.padEnd(9)} ${w.name.padEnd(7)} ${r.cpuUs.toFixed(0).padStart(5)} µs/req  ${r.rps.toFixed(0).padStart(6)} req/s  KV reads ${r.kv.reads}  DO requests ${r.dos.requests} (KeyUsage ${r.dos.KeyUsageRequests ?? 0})  DO rows written ${r.dos.storageRows}`);
      }
    }
    const ours = running.find((w) => w.name === "rust");
    const flushSeconds = Number(ours && WRANGLER_VARS.USAGE_FLUSH_SECONDS);
    if (ours && flushSeconds) {
      const u = await measure(ours, "valid", Math.ceil(flushSeconds) + 2);
      usageWindows.push(u);
      log(`run ${run + 1} usage    rust    ${u.requests} verifies in ${Math.ceil(flushSeconds) + 2} s: KeyUsage requests ${u.dos.KeyUsageRequests}, DO rows written ${u.dos.storageRows}`);
    }
    await stopAll();
  }
} finally {
  await stopAll();
}

const far = await farLog({ ...farSettings, log });
const stats = summarise(windows);
const coldStartMs = Object.fromEntries(names.map((n) => [n, median(coldStarts[n])]));
const labels = Object.fromEntries([...Object.entries(WORKERS), ...Object.entries(CASES)].map(([k, v]) => [k, v.label]));
const usageMd = (() => {
  if (!usageWindows.length) return "";
  const n = usageWindows.reduce((a, u) => a + u.requests, 0);
  const per = (f) => (usageWindows.reduce((a, u) => a + f(u), 0) / n * 1000).toFixed(4);
  return `\n## Key usage reporting (issue 19)\n\nOurs on the hot key for USAGE_FLUSH_SECONDS (${WRANGLER_VARS.USAGE_FLUSH_SECONDS} s) + 2 s per run, ${usageWindows.length} window(s), ${n} verifies: ` +
    `KeyUsage requests ${per((u) => u.dos.KeyUsageRequests)} per 1,000 verifies, Durable Object storage rows written ${per((u) => u.dos.storageRows)} per 1,000 ` +
    `(all DO requests ${per((u) => u.dos.requests)} per 1,000, the change log's refreshes included). An isolate reports at most once per interval and project, whatever its traffic: at r verifies a second per isolate that is 1,000 ÷ (r × ${WRANGLER_VARS.USAGE_FLUSH_SECONDS}) requests, and one row per key used, per 1,000 verifies. No KV write.\n`;
})();
const md = markdown({ machine: info, settings, stats, coldStartMs, bundle, notes, labels }) + "\n" + farLogMarkdown(far, farSettings) + usageMd;
writeFileSync(join(ROOT, "bench/out/results.md"), md);
writeFileSync(join(ROOT, "bench/out/results.json"), JSON.stringify({ machine: info, settings, windows, coldStarts, stats, bundle, notes, far }, null, 2));
const record = (!quick && !skipBundle && settings.runs >= 3) || args.has("--record");
if (record) writeFileSync(join(ROOT, "bench/RESULTS.md"), `# Benchmark results\n\n${md}`);
console.log("\n" + md);
console.log("Targets:");
for (const t of [...targets(stats, bundle), ...farLogTargets(far.rows)]) console.log(`  ${t.pass === null ? "n/a " : t.pass ? "PASS" : "MISS"}  ${t.name}: ${t.measured}`);
log(`wrote bench/out/results.md, results.json${record ? " and bench/RESULTS.md" : ""}`);
