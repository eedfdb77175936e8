// bench/lib/workers.mjs: starts each benchmarked worker in its own workerd via Miniflare's Node
// API on 127.0.0.1 (random port, local in-memory KV bound as KEYS) and seeds the same records.
import { readFileSync, existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Miniflare } from "miniflare";

export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** The keys every worker sees: one valid (active) key, one malformed, one well-formed unknown. */
export const KEYS = {
  valid: "lqt_" + "5a".repeat(32),
  malformed: "LQT_" + "5a".repeat(32),
  unknown: "lqt_" + "0f".repeat(32),
};

const sha256Hex = (text) => createHash("sha256").update(text).digest("hex");

/** KV entries: the valid key's record under `key/{sha256 hex}`, written as value and metadata. */
export function seedRecords(now = Date.now()) {
  const hash = sha256Hex(KEYS.valid);
  const record = {
    id: "key_01JBENCH00000000000000000", hash, name: "production-web", project_id: "web-app",
    prefix: KEYS.valid.slice(0, 12), created_at: now - 86_400_000,
    grace_expires_at: null, revoked_at: null, rotated_from: null, rotated_to: null,
  };
  return [{ key: `key/${hash}`, value: JSON.stringify(record), metadata: record }];
}

function compatibilityDate() {
  const toml = join(ROOT, "wrangler.toml");
  const m = existsSync(toml) && readFileSync(toml, "utf8").match(/^compatibility_date\s*=\s*"([^"]+)"/m);
  return m ? m[1] : "2026-04-20";
}

/** The three workers: name → Miniflare script options. */
export const WORKERS = {
  trivial: { scriptPath: join(ROOT, "bench/trivial-worker/index.js") },
  js: { scriptPath: join(ROOT, "bench/js-worker/index.js") },
  rust: {
    scriptPath: join(ROOT, "build/index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  },
};

/** Starts one worker; resolves to { name, url, mf, startupMs, dispose }. */
export async function startWorker(name, { vars = {} } = {}) {
  const t0 = performance.now();
  const mf = new Miniflare({
    name: `bench-${name}`,
    modules: true,
    ...WORKERS[name],
    compatibilityDate: compatibilityDate(),
    kvNamespaces: ["KEYS"],
    bindings: vars,
    host: "127.0.0.1",
    port: 0,
    // Drain workerd's stdout/stderr so per-request logging cannot block or flood the terminal.
    handleRuntimeStdio: (out, err) => { out.resume(); err.resume(); },
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const startupMs = performance.now() - t0;
  const kv = await mf.getKVNamespace("KEYS");
  for (const { key, value, metadata } of seedRecords()) await kv.put(key, value, { metadata });
  return { name, url, mf, startupMs, dispose: () => mf.dispose() };
}
