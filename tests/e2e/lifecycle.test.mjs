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
