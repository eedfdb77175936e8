// Admin API end to end through workerd: projects, keys created, listed, rotated with a short
// grace, revoked; checked against openapi.json; KV scanned for plaintext keys afterwards.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { startWorker, call, filesUnder } from "../support/worker.mjs";
import { assertDocumented, documentedRequest } from "../support/openapi.mjs";

const GRACE_SECONDS = 2;
const persist = mkdtempSync(path.join(tmpdir(), "lqt-kv-"));
const issued = []; // every plaintext key handed out, for the final scan
let worker;

/** An admin call whose answer must match openapi.json. */
async function api(method, route, options = {}) {
  const r = await call(worker.url, method, route, options);
  assertDocumented(method, route, r.status, r.json);
  if (r.json?.key) issued.push(r.json.key);
  return r;
}
const verify = (key) => api("GET", "/v1/auth/verify", { token: key });
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

before(async () => {
  worker = await startWorker({ vars: { ROTATION_GRACE_SECONDS: String(GRACE_SECONDS) }, persist });
});
after(() => worker?.dispose());

test("create, list, rotate with grace, expire, revoke — other projects untouched", () => lifecycle());

test("the same lifecycle holds with the change-log overlay switched off (KV alone)", async (t) => {
  const main = worker;
  worker = await startWorker({ vars: { ROTATION_GRACE_SECONDS: String(GRACE_SECONDS), CHANGES_OVERLAY: "off" } });
  t.after(async () => {
    await worker.dispose();
    worker = main;
  });
  await lifecycle();
});

test("with the change log unreachable, verify falls back to KV and says so; creates refuse, revokes land", async (t) => {
  const lost = await startWorker({ extra: { durableObjects: {} } });
  t.after(() => lost.dispose());
  const key = "lqt_" + "ab".repeat(32);
  const hash = createHash("sha256").update(key).digest("hex");
  await lost.kv.put(`key/${hash}`, JSON.stringify({
    id: "key_x", hash, name: "n", project_id: "p", prefix: key.slice(0, 12), created_at: 0,
    grace_expires_at: null, revoked_at: null, rotated_from: null, rotated_to: null,
  }));
  const r = await call(lost.url, "GET", "/v1/auth/verify", { token: key });
  assert.equal(r.status, 200, "KV alone still answers");
  assert.match(lost.logs.join(""), /change log unreachable/);
  await call(lost.url, "POST", "/admin/v1/projects", { body: { id: "p", name: "P" } });
  const create = await call(lost.url, "POST", "/admin/v1/projects/p/keys", { body: { name: "k" } });
  assert.equal(create.status, 503, "no commit point, no new key");
  await lost.kv.put("id/key_x", hash);
  const revoked = await call(lost.url, "POST", "/admin/v1/keys/key_x/revoke");
  assertDocumented("POST", "/admin/v1/keys/key_x/revoke", revoked.status, revoked.json);
  assert.equal(revoked.status, 200, "a revoke needs no commit point");
  assert.equal(revoked.json.status, "revoked");
  const refused = await call(lost.url, "GET", "/v1/auth/verify", { token: key });
  assert.equal(refused.json.error.code, "key_revoked");
  assert.match(lost.logs.join(""), /revoked key_x in KV alone/);
});

async function lifecycle() {
  assert.equal((await api("POST", "/admin/v1/projects", { body: { id: "web-app", name: "Web app" } })).status, 201);
  assert.equal((await api("POST", "/admin/v1/projects", { body: { id: "mobile", name: "Mobile" } })).status, 201);
  const projects = await api("GET", "/admin/v1/projects");
  assert.deepEqual(projects.json.projects.map((p) => p.id).sort(), ["mobile", "web-app"]);

  const created = await api("POST", "/admin/v1/projects/web-app/keys", { body: { name: "production-web" } });
  assert.equal(created.status, 201);
  const oldKey = created.json.key;
  const oldId = created.json.api_key.id;
  assert.match(oldKey, /^lqt_[0-9a-f]{64}$/);
  const other = await api("POST", "/admin/v1/projects/mobile/keys", { body: { name: "mobile-backend" } });
  const otherKey = other.json.key;

  const ingest = await api("POST", "/v1/ingest", { token: oldKey, body: "{}" });
  assert.equal(ingest.status, 202);
  assert.equal(ingest.json.project_id, "web-app");

  const list = await api("GET", "/admin/v1/keys?project_id=web-app");
  assert.equal(list.json.keys.length, 1);
  const [row] = list.json.keys;
  assert.equal(row.name, "production-web");
  assert.equal(row.project_id, "web-app");
  assert.equal(row.prefix, oldKey.slice(0, 12));
  assert.ok(Date.parse(row.created_at) > 0);
  assert.ok(!list.text.includes(oldKey.slice(12)), "the list never holds the key");

  const rotated = await api("POST", `/admin/v1/keys/${oldId}/rotate`);
  assert.equal(rotated.status, 201);
  const newKey = rotated.json.key;
  assert.equal(rotated.json.previous.status, "grace");
  assert.equal(rotated.json.api_key.name, "production-web");
  const graceEnd = Date.parse(rotated.json.previous.grace_expires_at);
  assert.equal((await verify(oldKey)).json.status, "grace");
  assert.equal((await verify(newKey)).json.status, "active");
  assert.equal((await verify(otherKey)).status, 200);
  const again = await api("POST", `/admin/v1/keys/${oldId}/rotate`);
  assert.equal(again.status, 409);
  assert.equal(again.json.error.code, "key_not_rotatable");

  await sleep(Math.max(0, graceEnd - Date.now()) + 200);
  const expired = await verify(oldKey);
  assert.equal(expired.status, 401);
  assert.equal(expired.json.error.code, "key_expired");
  assert.equal((await verify(newKey)).status, 200);
  assert.equal((await api("GET", `/admin/v1/keys/${oldId}`)).json.status, "expired");

  const newId = rotated.json.api_key.id;
  const revoked = await api("POST", `/admin/v1/keys/${newId}/revoke`);
  assert.equal(revoked.status, 200);
  assert.equal(revoked.json.status, "revoked");
  const refused = await verify(newKey);
  assert.equal(refused.status, 401);
  assert.equal(refused.json.error.code, "key_revoked");
  const twice = await api("POST", `/admin/v1/keys/${newId}/revoke`);
  assert.equal(twice.json.revoked_at, revoked.json.revoked_at);

  const untouched = await verify(otherKey);
  assert.equal(untouched.status, 200);
  assert.equal(untouched.json.status, "active");

  const audit = await api("GET", "/admin/v1/audit?project_id=web-app");
  assert.deepEqual(
    audit.json.events.map((e) => e.action),
    ["key.revoked", "key.rotated", "key.created", "project.created"],
  );
}

test("admin routes refuse missing, wrong and API-key tokens with 401", async () => {
  const key = issued[0];
  for (const token of [null, "wrong", key]) {
    const r = await api("GET", "/admin/v1/keys", { token });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, "admin_unauthorized");
  }
  const closed = await startWorker({ vars: { ADMIN_TOKEN: "" } });
  try {
    const r = await call(closed.url, "GET", "/admin/v1/projects");
    assert.equal(r.status, 401, "no ADMIN_TOKEN configured: admin is closed");
  } finally {
    await closed.dispose();
  }
});

test("bad input gets a 400 with a clear code, never a 5xx", async () => {
  const cases = [
    [{ body: "{" }, "invalid_json"],
    [{ body: { id: "x", name: "y", extra: 1 } }, "unknown_field"],
    [{ body: { id: "x" } }, "invalid_body"],
    [{ body: { id: "Bad Id", name: "y" } }, "invalid_project_id"],
    [{ body: { id: "ok-id", name: " " } }, "invalid_name"],
    [{ body: "{}", headers: { "content-type": "text/plain" } }, "unsupported_content_type"],
    [{ body: JSON.stringify({ id: "big", name: "x".repeat(17 * 1024) }) }, "body_too_large"],
  ];
  for (const [options, code] of cases) {
    const r = await api("POST", "/admin/v1/projects", options);
    assert.equal(r.status, 400, code);
    assert.equal(r.json.error.code, code);
  }
  const dup = await api("POST", "/admin/v1/projects", { body: { id: "web-app", name: "again" } });
  assert.equal(dup.status, 409);
  const missing = await api("POST", "/admin/v1/projects/nope/keys", { body: { name: "k" } });
  assert.equal(missing.json.error.code, "project_not_found");
  const unknown = await api("GET", "/admin/v1/keys/key_nope");
  assert.equal(unknown.json.error.code, "key_not_found");
});

// Names and leak sources are trimmed of surrounding whitespace, then checked. openapi.json must
// say exactly that: a contract fuzzer once sent "é)\r", which the worker rightly accepted as "é)"
// and the old pattern called invalid.
test("names and leak sources: the worker accepts exactly what openapi.json documents", async () => {
  const texts = ["é)\r", "  web  \n", "a\nb", "x".repeat(64) + " ", "x".repeat(65), " \u0085", "\u00a0x\u3000",
    "\u0007", "x\u0085", "\u0085x\u0085y", "\ufeff", "", "\t", "ok"];
  await api("POST", "/admin/v1/projects", { body: { id: "names", name: "Names" } });
  const routes = [
    ["/admin/v1/projects/{project_id}/keys", "/admin/v1/projects/names/keys", (t) => ({ name: t }), 201],
    ["/admin/v1/projects", "/admin/v1/projects", (t, i) => ({ id: `names-${i}`, name: t }), 201],
    ["/admin/v1/keys/report-leaked", "/admin/v1/keys/report-leaked", (t) => ({ keys: [], source: t }), 200],
  ];
  for (const [template, route, body, ok] of routes) {
    for (const [i, t] of texts.entries()) {
      const documented = documentedRequest("POST", template, body(t, i));
      const r = await api("POST", route, { body: body(t, i) });
      assert.equal(r.status === ok, documented, `${route} ${JSON.stringify(t)}: ${r.status} ${r.text}`);
      if (r.status !== ok) assert.equal(r.status, 400, r.text);
    }
  }
});

test("admin answers are never cacheable", async () => {
  const r = await api("GET", "/admin/v1/keys");
  assert.equal(r.headers.get("cache-control"), "no-store");
  const page = await fetch(worker.url + "/admin/");
  assert.equal(page.status, 200);
  assert.equal(page.headers.get("cache-control"), "no-store");
});

test("the served OpenAPI document is the one the responses were checked against", async () => {
  const r = await call(worker.url, "GET", "/openapi.json", { token: null });
  assert.equal(r.status, 200);
  const file = JSON.parse(readFileSync(new URL("../../public/openapi.json", import.meta.url)));
  assert.deepEqual(r.json, file);
});

test("local KV storage holds no plaintext key", async () => {
  await worker.dispose();
  worker = null;
  assert.ok(issued.length >= 3);
  const files = filesUnder(persist);
  assert.ok(files.length > 0, "KV was persisted");
  let hashes = 0;
  for (const file of files) {
    const bytes = readFileSync(file).toString("latin1");
    assert.doesNotMatch(bytes, /lqt_[0-9a-f]{64}/, file);
    for (const key of issued) assert.ok(!bytes.includes(key.slice(4)), file);
    hashes += (bytes.match(/[0-9a-f]{64}/g) || []).length;
  }
  assert.ok(hashes > 0, "hashes were stored");
});
