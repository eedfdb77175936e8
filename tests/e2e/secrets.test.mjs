// Secrets end to end: after a full admin + ingest flow (and the 502/503 paths that log), no
// plaintext key or organization admin token is in the local KV or Durable Object storage, the
// workerd logs, or any response except the create and rotate answers that hand a key (or a
// token) to its owner; every worker answer is no-store.
// (Admin tokens are compared in constant time: crates/core/src/api.rs `digest_matches`, tested
// there.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startWorker, filesUnder } from "../support/worker.mjs";
import { callFresh } from "../support/fresh.mjs";

const PLAINTEXT = /lqta?_[0-9a-f]{64}/;
/** A key's or admin token's secret part (after `lqt_` or `lqta_`). */
const secretOf = (k) => k.replace(/^lqta?_/, "");
const persist = mkdtempSync(path.join(tmpdir(), "lqt-secrets-"));
const issued = []; // every plaintext key handed out
const seen = []; // every other answer: { what, status, text, headers }
let worker;
let broken; // KV binding missing: every storage access fails (503)
let offline; // INGEST_ORIGIN unreachable (502)

/** A call whose answer is recorded; create/rotate answers only yield their key. */
async function send(w, method, route, options = {}) {
  const r = await callFresh(w.url, method, route, options);
  if (r.status === 201 && typeof r.json?.key === "string") {
    assert.match(r.json.key, PLAINTEXT);
    issued.push(r.json.key);
  } else if (r.status === 201 && typeof r.json?.token === "string") {
    assert.match(r.json.token, /^lqta_[0-9a-f]{64}$/);
    issued.push(r.json.token);
  } else {
    const headers = JSON.stringify([...r.headers]);
    seen.push({ what: `${method} ${route} → ${r.status}`, status: r.status, text: r.text, headers });
  }
  assert.equal(r.headers.get("cache-control"), "no-store", `${method} ${route}`);
  return r;
}
const verify = (w, key, headers) => send(w, "GET", "/v1/auth/verify", { token: key, headers });

before(async () => {
  worker = await startWorker({ vars: { ROTATION_GRACE_SECONDS: "1" }, persist });
  broken = await startWorker({ kv: false });
  offline = await startWorker({ vars: { INGEST_ORIGIN: "http://127.0.0.1:1" } });
});
after(async () => {
  await Promise.all([worker, broken, offline].map((w) => w?.dispose()));
  rmSync(persist, { recursive: true, force: true });
});

test("a full admin and ingest flow, with refusals that see real keys", async () => {
  for (const id of ["web-app", "mobile"]) {
    assert.equal((await send(worker, "POST", "/admin/v1/projects", { body: { id, name: id } })).status, 201);
  }
  const a = (await send(worker, "POST", "/admin/v1/projects/web-app/keys", { body: { name: "a" } })).json;
  const b = (await send(worker, "POST", "/admin/v1/projects/mobile/keys", { body: { name: "b" } })).json;
  assert.equal((await verify(worker, a.key)).status, 200);
  assert.equal((await send(worker, "POST", "/v1/ingest", { token: a.key, body: "{}" })).status, 202);
  const other = await send(worker, "POST", "/v1/projects/mobile/ingest", { token: a.key, body: "{}" });
  assert.equal(other.status, 403);
  assert.equal((await verify(worker, a.key, { "x-lumiqtrace-project-id": "mobile" })).status, 403);
  await send(worker, "GET", "/admin/v1/keys");
  await send(worker, "GET", `/admin/v1/keys/${a.api_key.id}`);
  const rotated = await send(worker, "POST", `/admin/v1/keys/${a.api_key.id}/rotate`);
  assert.equal(rotated.status, 201);
  assert.equal((await verify(worker, a.key)).status, 200, "old key in grace");
  assert.equal((await verify(worker, rotated.json.key)).status, 200);
  await send(worker, "POST", `/admin/v1/keys/${a.api_key.id}/rotate`); // 409
  assert.equal((await send(worker, "POST", `/admin/v1/keys/${b.api_key.id}/revoke`)).status, 200);
  assert.equal((await verify(worker, b.key)).status, 401);
  await new Promise((ok) => setTimeout(ok, 1200));
  assert.equal((await verify(worker, a.key)).json.error.code, "key_expired");
  await send(worker, "GET", "/admin/v1/audit");
  await send(worker, "GET", "/admin/v1/projects");

  // Refusals that are handed a real key, or something close to one, must not echo it.
  const near = [a.key + "0", a.key.toUpperCase(), a.key.slice(0, 67), `${a.key} ${b.key}`];
  for (const token of near) assert.equal((await verify(worker, token)).status, 401);
  assert.equal((await send(worker, "GET", "/v1/auth/verify", { headers: { authorization: `Basic ${a.key}` }, token: null })).status, 401);
  assert.equal((await send(worker, "GET", "/admin/v1/keys", { token: rotated.json.key })).status, 401);
  await send(worker, "POST", "/admin/v1/projects", { body: { id: a.key, name: b.key } });
  await send(worker, "POST", "/admin/v1/projects/web-app/keys", { body: { name: a.key, key: a.key } });
  await send(worker, "POST", `/admin/v1/keys/${a.key}/revoke`);
  await send(worker, "GET", `/admin/v1/keys?project_id=${a.key}`);
  await send(worker, "GET", `/${a.key}`);

  // An organization admin token: created, used, presented where it is no key, near misses, revoked.
  assert.equal((await send(worker, "POST", "/admin/v1/orgs", { body: { id: "acme", name: "Acme" } })).status, 201);
  const t = (await send(worker, "POST", "/admin/v1/orgs/acme/admin-tokens", { body: { name: "ci" } })).json;
  assert.equal((await send(worker, "POST", "/admin/v1/projects", { token: t.token, body: { id: "acme-web", name: "w" } })).status, 201);
  const d = await send(worker, "POST", "/admin/v1/projects/acme-web/keys", { token: t.token, body: { name: "d" } });
  assert.equal(d.status, 201);
  await send(worker, "GET", "/admin/v1/orgs/acme/admin-tokens");
  await send(worker, "GET", "/admin/v1/audit", { token: t.token });
  assert.equal((await verify(worker, t.token)).status, 401, "an admin token is no ingest key");
  for (const token of [t.token + "0", t.token.toUpperCase(), t.token.slice(0, 68), t.token.replace("lqta_", "lqt_")]) {
    assert.equal((await send(worker, "GET", "/admin/v1/projects", { token })).status, 401);
  }
  await send(worker, "POST", "/admin/v1/orgs", { body: { id: t.token, name: t.token } });
  await send(worker, "POST", "/admin/v1/orgs/acme/admin-tokens", { body: { name: t.token, token: t.token } });
  await send(worker, "POST", `/admin/v1/admin-tokens/${t.token}/revoke`);
  assert.equal((await send(worker, "POST", `/admin/v1/admin-tokens/${t.admin_token.id}/revoke`)).status, 200);
  assert.equal((await send(worker, "GET", "/admin/v1/projects", { token: t.token })).status, 401);
  const elsewhere = await send(broken, "GET", "/admin/v1/projects", { token: t.token });
  assert.equal(elsewhere.status, 401, "another deployment's authority knows no such token");

  // The paths that log: storage down (503) and origin unreachable (502).
  assert.equal((await verify(broken, a.key)).status, 503);
  assert.equal((await send(broken, "POST", "/admin/v1/projects/web-app/keys", { body: { name: "x" } })).status, 503);
  await send(offline, "POST", "/admin/v1/projects", { body: { id: "p", name: "p" } });
  const c = (await send(offline, "POST", "/admin/v1/projects/p/keys", { body: { name: "c" } })).json;
  const forwarded = await send(offline, "POST", `/v1/ingest?note=${c.key}`, { token: c.key, body: c.key });
  assert.equal(forwarded.status, 502);
});

test("no response other than create and rotate carries a plaintext key", () => {
  assert.ok(issued.length >= 4 && seen.length >= 30);
  for (const r of seen) {
    assert.doesNotMatch(r.text, PLAINTEXT, r.what);
    assert.doesNotMatch(r.headers, PLAINTEXT, r.what);
    for (const key of issued) assert.ok(!r.text.includes(secretOf(key)), r.what);
  }
});

test("the workerd logs carry no plaintext key", () => {
  const logs = [worker, broken, offline].flatMap((w) => w.logs).join("");
  assert.match(logs, /503/, "the failing paths logged");
  assert.match(logs, /502/);
  assert.doesNotMatch(logs, PLAINTEXT);
  for (const key of issued) assert.ok(!logs.includes(secretOf(key)));
});

test("the local KV and Durable Object storage hold no plaintext key or admin token", async () => {
  await worker.dispose();
  worker = null;
  const files = filesUnder(persist);
  assert.ok(files.length > 0, "KV was persisted");
  const stored = files.map((f) => readFileSync(f).toString("latin1")).join("\n");
  assert.match(stored, /[0-9a-f]{64}/, "hashes were stored");
  assert.doesNotMatch(stored, PLAINTEXT);
  for (const key of issued) assert.ok(!stored.includes(secretOf(key)), "a key's or token's secret part is stored");
  assert.ok(issued.some((k) => k.startsWith("lqta_")), "an admin token was issued");
});
