// Key lifecycle facts end to end through workerd (issue 19): expiry, environment labels, a
// project's rotation policy; every answer checked against openapi.json.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, call } from "../support/worker.mjs";
import { assertDocumented } from "../support/openapi.mjs";

let worker;

async function api(method, route, options = {}) {
  const r = await call(worker.url, method, route, options);
  assertDocumented(method, route, r.status, r.json);
  return r;
}
const verify = (key) => api("GET", "/v1/auth/verify", { token: key });
const DAY = 86_400_000;

before(async () => {
  worker = await startWorker({ vars: { ROTATION_GRACE_SECONDS: "1" } });
});
after(() => worker?.dispose());

test("a key created with a past-due expires_at is refused with key_expired, like a rotated key after its grace", async () => {
  assert.equal((await api("POST", "/admin/v1/projects", { body: { id: "exp", name: "Exp" } })).status, 201);
  const past = await api("POST", "/admin/v1/projects/exp/keys", {
    body: { name: "old", expires_at: "2020-01-01T00:00:00Z" },
  });
  assert.equal(past.status, 201);
  assert.equal(past.json.api_key.status, "expired");
  assert.equal(past.json.api_key.expires_at, "2020-01-01T00:00:00.000Z");
  const refused = await verify(past.json.key);
  const rotated = await api("POST", "/admin/v1/projects/exp/keys", { body: { name: "r" } });
  assert.equal((await api("POST", `/admin/v1/keys/${rotated.json.api_key.id}/rotate`)).status, 201);
  let afterGrace;
  // The 1 s grace runs out; polled rather than slept past (the grace is the only bound).
  for (let i = 0; i < 50 && afterGrace?.status !== 401; i++) {
    afterGrace = await verify(rotated.json.key);
    if (afterGrace.status !== 401) await new Promise((ok) => setTimeout(ok, 100));
  }
  assert.equal(refused.status, 401);
  assert.deepEqual(refused.json, afterGrace.json, "the same refusal");
  assert.equal(refused.json.error.code, "key_expired");
  const future = new Date(Date.now() + DAY).toISOString();
  const live = await api("POST", "/admin/v1/projects/exp/keys", { body: { name: "live", expires_at: future } });
  assert.equal((await verify(live.json.key)).status, 200);
  const bad = await api("POST", "/admin/v1/projects/exp/keys", { body: { name: "x", expires_at: "soon" } });
  assert.equal(bad.json.error.code, "invalid_expires_at");
});

test("environment labels: set at creation, filtered, carried over by a rotation", async () => {
  await api("POST", "/admin/v1/projects", { body: { id: "env", name: "Env" } });
  const prod = await api("POST", "/admin/v1/projects/env/keys", { body: { name: "web", environment: "production" } });
  await api("POST", "/admin/v1/projects/env/keys", { body: { name: "ci", environment: "staging" } });
  await api("POST", "/admin/v1/projects/env/keys", { body: { name: "plain" } });
  const rotated = await api("POST", `/admin/v1/keys/${prod.json.api_key.id}/rotate`, { body: {} });
  assert.equal(rotated.json.api_key.environment, "production");
  const listed = await api("GET", "/admin/v1/keys?project_id=env&environment=production");
  assert.deepEqual(listed.json.keys.map((k) => k.name), ["web", "web"]);
  const staging = await api("GET", "/admin/v1/keys?project_id=env&environment=staging");
  assert.deepEqual(staging.json.keys.map((k) => k.name), ["ci"]);
  const bad = await api("POST", "/admin/v1/projects/env/keys", { body: { name: "x", environment: "not ok" } });
  assert.equal(bad.json.error.code, "invalid_environment");
});

test("a project with a rotation period lists its old keys as due", async () => {
  const created = await api("POST", "/admin/v1/projects", { body: { id: "pol", name: "Pol", rotation_period_days: 90 } });
  assert.equal(created.json.rotation_period_days, 90);
  const k = await api("POST", "/admin/v1/projects/pol/keys", { body: { name: "k" } });
  assert.equal(k.json.api_key.rotation_due, false);
  const dueAt = Date.parse(k.json.api_key.rotation_due_at) - Date.parse(k.json.api_key.created_at);
  assert.equal(dueAt, 90 * DAY);
  assert.deepEqual((await api("GET", "/admin/v1/keys?project_id=pol&rotation_due=true")).json.keys, []);
  // A period of one day, and a key created more than a day ago (written to KV as an older
  // deployment would have: the list reads KV).
  const set = await api("PATCH", "/admin/v1/projects/pol", { body: { rotation_period_days: 1 } });
  assert.equal(set.status, 200);
  const stored = JSON.parse(await worker.kv.get(`key/${(await worker.kv.get(`id/${k.json.api_key.id}`))}`));
  const hash = "ab".repeat(32);
  await worker.kv.put(`key/${hash}`, JSON.stringify({ ...stored, id: "key_aged", hash, name: "aged", created_at: Date.now() - 2 * DAY }));
  await worker.kv.put("id/key_aged", hash);
  const due = await api("GET", "/admin/v1/keys?project_id=pol&rotation_due=true");
  assert.deepEqual(due.json.keys.map((x) => x.id), ["key_aged"]);
  assert.equal(due.json.keys[0].rotation_due, true);
  const one = await api("GET", "/admin/v1/keys/key_aged");
  assert.equal(one.json.rotation_due, true);
});

test("usage: a verify moves last_used_at and today's count within the documented bound", async (t) => {
  // The bound is USAGE_FLUSH_SECONDS plus one Durable Object request (docs/key-lifecycle.md);
  // a worker with a 0.2 s interval, polled for at most 5 s.
  const fast = await startWorker({ vars: { USAGE_FLUSH_SECONDS: "0.2" } });
  t.after(() => fast.dispose());
  const at = (method, route, options) =>
    call(fast.url, method, route, options).then((r) => (assertDocumented(method, route, r.status, r.json), r));
  await at("POST", "/admin/v1/projects", { body: { id: "use", name: "Use" } });
  const k = await at("POST", "/admin/v1/projects/use/keys", { body: { name: "k" } });
  const id = k.json.api_key.id;
  assert.equal((await at("GET", `/admin/v1/keys/${id}`)).json.last_used_at, null);
  const before = await at("GET", `/admin/v1/keys/${id}/usage`);
  assert.equal(before.json.days.length, 30);
  assert.equal(before.json.days[29].granted, 0);
  const sent = Date.now();
  assert.equal((await at("GET", "/v1/auth/verify", { token: k.json.key })).status, 200);
  assert.equal((await at("POST", "/v1/projects/other/ingest", { token: k.json.key, body: "{}" })).status, 403);
  let usage;
  for (let i = 0; i < 50; i++) {
    usage = await at("GET", `/admin/v1/keys/${id}/usage`);
    if (usage.json.days[29].granted > 0) break;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  assert.equal(usage.json.days[29].granted, 1);
  assert.equal(usage.json.days[29].refused.project_mismatch, 1);
  assert.equal(usage.json.days[29].date, new Date().toISOString().slice(0, 10));
  const minute = Math.floor(sent / 60_000) * 60_000;
  assert.ok(Date.parse(usage.json.last_used_at) >= minute, usage.json.last_used_at);
  const view = await at("GET", `/admin/v1/keys/${id}`);
  assert.equal(view.json.last_used_at, usage.json.last_used_at);
  const listed = await at("GET", "/admin/v1/keys?project_id=use");
  assert.equal(listed.json.keys.find((x) => x.id === id).last_used_at, usage.json.last_used_at);
});

test("a rotated key in grace shows its last use and, after the quiet time, safe_to_revoke", async (t) => {
  const fast = await startWorker({ vars: { USAGE_FLUSH_SECONDS: "0.2", USAGE_QUIET_SECONDS: "1" } });
  t.after(() => fast.dispose());
  const at = (method, route, options) =>
    call(fast.url, method, route, options).then((r) => (assertDocumented(method, route, r.status, r.json), r));
  await at("POST", "/admin/v1/projects", { body: { id: "g", name: "G" } });
  const k = await at("POST", "/admin/v1/projects/g/keys", { body: { name: "k" } });
  const id = k.json.api_key.id;
  const rotated = await at("POST", `/admin/v1/keys/${id}/rotate`);
  assert.equal(rotated.json.previous.safe_to_revoke, false);
  assert.equal((await at("GET", "/v1/auth/verify", { token: k.json.key })).json.status, "grace");
  let view;
  for (let i = 0; i < 50; i++) {
    view = await at("GET", `/admin/v1/keys/${id}`);
    if (view.json.safe_to_revoke) break;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  assert.equal(view.json.status, "grace");
  assert.ok(view.json.last_used_at, "the old key's use is shown");
  assert.equal(view.json.safe_to_revoke, true);
});
