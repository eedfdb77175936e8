// Starts the built worker in workerd through Miniflare, on 127.0.0.1, with a local KV namespace,
// the KeyChanges and KeyUsage Durable Objects, the admin sign-in limiter and the dashboard's static assets — the
// same shape as wrangler.toml. worker-build's output: build/index.js (its JS entry) imports
// build/index_bg.wasm.
import { Miniflare } from "miniflare";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const ADMIN_TOKEN = "e2e-admin-token-" + "5f".repeat(16);

const wranglerToml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
const COMPATIBILITY_DATE = wranglerToml.match(/^compatibility_date = "([^"]+)"/m)[1];
/** The failed-admin-sign-in limiter as wrangler.toml declares it (`[[ratelimits]]`). */
const [, SIGNIN_LIMITER, namespaceId, limit, period] = wranglerToml.match(
  /^name = "(ADMIN_SIGNIN_LIMITER)"\nnamespace_id = "(\d+)"\nsimple = \{ limit = (\d+), period = (\d+) \}/m,
);
export const SIGNIN_LIMIT = { name: SIGNIN_LIMITER, limit: Number(limit), period: Number(period) };

/** Miniflare's in-memory Rate Limiting binding for failed admin sign-ins, `limit` a period. */
export const signinLimiter = (limit = SIGNIN_LIMIT.limit) => ({
  [SIGNIN_LIMITER]: { namespace_id: namespaceId, simple: { limit, period: SIGNIN_LIMIT.period } },
});

/** `public/_headers` in the form Miniflare's asset worker takes (wrangler parses it the same way). */
function headerRules() {
  const rules = {};
  let current = null;
  for (const line of readFileSync(path.join(ROOT, "public/_headers"), "utf8").split("\n")) {
    if (!line.trim() || line.trim().startsWith("#")) continue;
    if (!/^\s/.test(line)) {
      current = rules[line.trim()] = { set: {} };
    } else if (current) {
      const i = line.indexOf(":");
      current.set[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
  }
  return { version: 2, rules };
}

/**
 * @param {object} [options]
 * @param {Record<string,string>} [options.vars] bindings beside the defaults (ADMIN_TOKEN, grace)
 * @param {boolean} [options.kv] bind the KEYS namespace (false: every KV access fails)
 * @param {string|false} [options.persist] directory for KV data, or in-memory
 * @param {object} [options.extra] further Miniflare options (e.g. outboundService, or
 *   `ratelimits: signinLimiter(n)` for another budget of failed admin sign-ins)
 */
export async function startWorker({ vars = {}, kv = true, persist = false, extra = {} } = {}) {
  const logs = [];
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    modules: true,
    scriptPath: path.join(ROOT, "build/index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: COMPATIBILITY_DATE,
    kvNamespaces: kv ? ["KEYS"] : [],
    kvPersist: persist,
    durableObjects: {
      KEY_CHANGES: { className: "KeyChanges", useSQLite: true },
      ADMIN_TOKENS: { className: "AdminTokens", useSQLite: true },
      KEY_USAGE: { className: "KeyUsage", useSQLite: true },
    },
    durableObjectsPersist: persist,
    bindings: { ADMIN_TOKEN, ROTATION_GRACE_SECONDS: "86400", ...vars },
    ratelimits: signinLimiter(),
    assets: {
      directory: path.join(ROOT, "public"),
      routerConfig: { has_user_worker: true },
      assetConfig: { html_handling: "auto-trailing-slash", headers: headerRules() },
    },
    handleRuntimeStdio(stdout, stderr) {
      for (const s of [stdout, stderr]) s.on("data", (d) => logs.push(String(d)));
    },
    ...extra,
  });
  const url = (await mf.ready).href.replace(/\/$/, "");
  return {
    url,
    mf,
    logs,
    kv: kv ? await mf.getKVNamespace("KEYS") : null,
    dispose: () => mf.dispose(),
  };
}

/** fetch against the worker with the admin token; returns { status, headers, json, text }. */
export async function call(base, method, route, { token = ADMIN_TOKEN, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["content-type"] ??= "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(base + route, init);
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, json, text };
}

/** Every file below `dir` (a persisted KV or Durable Object store, for plaintext scans). */
export function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}
