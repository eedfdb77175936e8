// bench/lib/workers.mjs: starts each benchmarked worker in its own workerd via Miniflare's Node
// API on 127.0.0.1 (random port, local in-memory KV bound as KEYS), seeds the same records, and
// reads a workerd's CPU time. The Rust worker is started by tests/support/worker.mjs.
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { Miniflare } from "miniflare";
import { pinWorker } from "./load.mjs";

export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** The keys every worker sees: one valid (active) key, one malformed, one well-formed unknown. */
const KEYS = {
  valid: "lqt_" + "5a".repeat(32),
  malformed: "LQT_" + "5a".repeat(32),
  unknown: "lqt_" + "0f".repeat(32),
};

/** The cases: which key, and whether it goes to the worker's own socket (`direct`: no Miniflare
 * entry worker in front). */
export const CASES = {
  valid: { key: KEYS.valid },
  malformed: { key: KEYS.malformed },
  unknown: { key: KEYS.unknown },
  direct: { key: KEYS.malformed, direct: true },
};

/** The verify route of worker `w` (from startWorker) as case `c` asks it. */
export const verifyUrl = (w, c) => `${CASES[c].direct ? w.directUrl : w.url}/v1/auth/verify`;

const sha256Hex = (text) => createHash("sha256").update(text).digest("hex");

/** KV entries (src/repo.rs layout): the valid key's record under `key/{sha256 hex}` (value and
 * metadata) and its `id/{key id}` → hash pointer. */
export function seedRecords(now = Date.now()) {
  const hash = sha256Hex(KEYS.valid);
  const record = {
    id: "key_01JBENCH00000000000000000", hash, name: "production-web", project_id: "web-app",
    prefix: KEYS.valid.slice(0, 12), created_at: now - 86_400_000,
    grace_expires_at: null, revoked_at: null, rotated_from: null, rotated_to: null,
  };
  return [
    { key: `key/${hash}`, value: JSON.stringify(record), metadata: record },
    { key: `id/${record.id}`, value: hash },
  ];
}

const wranglerToml = () => readFileSync(join(ROOT, "wrangler.toml"), "utf8");
const compatibilityDate = () => wranglerToml().match(/^compatibility_date\s*=\s*"([^"]+)"/m)[1];

/** The `[vars]` of wrangler.toml (flat `NAME = "value"` lines): the Rust worker runs as deployed. */
export function wranglerVars() {
  const section = wranglerToml().split(/^\[vars\]\s*$/m)[1]?.split(/^\[/m)[0] ?? "";
  return Object.fromEntries([...section.matchAll(/^([A-Z0-9_]+)\s*=\s*"([^"]*)"/gm)].map((m) => [m[1], m[2]]));
}

/** The bench's own JavaScript workers: name → script path. */
export const JS_WORKERS = {
  trivial: join(ROOT, "bench/trivial-worker/index.js"),
  js: join(ROOT, "bench/js-worker/index.js"),
  refusal: join(ROOT, "bench/trivial-worker/refusal.js"),
};

// Drain workerd's stdout/stderr so per-request logging cannot block, flood or fill memory.
const drain = (out, err) => { out.resume(); err.resume(); };

// Miniflare puts an entry worker (its own JavaScript) in front of every worker: about 100 µs of
// workerd CPU per request here, three quarters of the trivial ceiling's cost. Two things follow:
// - its request logger (`logRequests`, on by default) copies each response, headers included
//   (`new Response(res.body, res)`), even when its log line goes nowhere. That dev tooling is not
//   on Cloudflare's network, and it charged a 401 with four headers 6–13 µs in pinned A/Bs (3–5 µs
//   in full runs), the trivial worker's bare 200 nothing measurable. Off here;
// - every worker also gets a socket of its own (`unsafeDirectSockets`), with no entry worker in
//   front, for the bench's `direct` case.
const BENCH_OPTIONS = {
  logRequests: false, unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }], handleRuntimeStdio: drain,
};

/** Starts a worker in its own workerd; resolves to { url, mf }. `more`: further Miniflare
 * options (bench/profile.mjs adds an inspector port). */
async function launch(name, more = {}) {
  if (name === "rust" || name === "rust-kv") {
    // The built Rust worker as the e2e tests run it (KV, Durable Objects: the shape of
    // wrangler.toml) with wrangler.toml's [vars], so it runs as deployed — but without the static
    // assets router: locally Miniflare runs it as JavaScript in the same workerd before every
    // request (~0.5 ms CPU each here), which would bury the worker's own cost. The verify route
    // never reads an asset, and the JS and trivial workers have none either.
    const { startWorker } = await import(join(ROOT, "tests/support/worker.mjs"));
    const extra = { ...BENCH_OPTIONS, modulesRoot: join(ROOT, "build"), assets: undefined, ...more };
    // "rust-kv": the same worker with the change-log overlay switched off (KV alone).
    const overlay = name === "rust-kv" ? { CHANGES_OVERLAY: "off" } : {};
    const w = await startWorker({ vars: { ...wranglerVars(), ...overlay }, extra });
    return { url: w.url, mf: w.mf };
  }
  const mf = new Miniflare({
    name: `bench-${name}`, modules: true, scriptPath: JS_WORKERS[name],
    modulesRoot: dirname(JS_WORKERS[name]), // workerd refuses module paths that climb out of it
    compatibilityDate: compatibilityDate(), kvNamespaces: ["KEYS"],
    host: "127.0.0.1", port: 0, ...BENCH_OPTIONS, ...more,
  });
  return { url: (await mf.ready).toString().replace(/\/$/, ""), mf };
}

const children = () => {
  try { return execFileSync("pgrep", ["-P", String(process.pid)], { encoding: "utf8" }).split("\n").filter(Boolean); }
  catch { return []; }
};
const TICK_US = 1e6 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim() || 100);

/** CPU time (user + system, all threads) a process has used so far, in microseconds. */
export function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_US; // utime, stime (fields 14, 15)
}

/** Starts one worker and seeds its KV; resolves to { name, url, directUrl, mf, pid (its workerd),
 * startupMs, dispose }. */
export async function startWorker(name, more = {}) {
  const before = new Set(children());
  const t0 = performance.now();
  const { url, mf } = await launch(name, more);
  const startupMs = performance.now() - t0;
  const pid = children().find((p) => !before.has(p) && readFileSync(`/proc/${p}/comm`, "utf8").startsWith("workerd"));
  pinWorker(pid);
  const kv = await mf.getKVNamespace("KEYS");
  for (const { key, value, metadata } of seedRecords()) await kv.put(key, value, metadata ? { metadata } : {});
  const directUrl = (await mf.unsafeGetDirectURL()).href.replace(/\/$/, "");
  return { name, url, directUrl, mf, pid, startupMs, dispose: () => mf.dispose() };
}
