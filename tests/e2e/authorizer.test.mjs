// Ingest side end to end: the built wasm in workerd (Miniflare) with a local KV namespace.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { startWorker, call, ADMIN_TOKEN } from "../support/worker.mjs";
import { assertDocumented } from "../support/openapi.mjs";

const newKey = () => "lqt_" + randomBytes(32).toString("hex");
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const now = Date.now();

/** Seeds a hashed record the way the admin routes store it. */
async function seed(kv, key, fields = {}) {
  const hash = sha256(key);
  const record = {
    id: "key_" + randomBytes(12).toString("hex"),
    hash,
    name: "seeded",
    project_id: "web-app",
    prefix: key.slice(0, 12),
    created_at: now,
    grace_expires_at: null,
    revoked_at: null,
    rotated_from: null,
    rotated_to: null,
    ...fields,
  };
  await kv.put(`key/${hash}`, JSON.stringify(record));
  return record;
}

async function verify(base, key, headers = {}) {
  const r = await call(base, "GET", "/v1/auth/verify", { token: key ?? null, headers });
  assertDocumented("GET", "/v1/auth/verify", r.status, r.json);
  return r;
}

let worker;
const keys = { active: newKey(), grace: newKey(), expired: newKey(), revoked: newKey() };
const records = {};

before(async () => {
  worker = await startWorker();
  records.active = await seed(worker.kv, keys.active);
  records.grace = await seed(worker.kv, keys.grace, { grace_expires_at: now + 3_600_000 });
  records.expired = await seed(worker.kv, keys.expired, { grace_expires_at: now - 1 });
  records.revoked = await seed(worker.kv, keys.revoked, { revoked_at: now - 1 });
});
after(() => worker?.dispose());

test("a seeded active key verifies with its project, id and name", async () => {
  const r = await verify(worker.url, keys.active);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {
    project_id: "web-app",
    key_id: records.active.id,
    key_name: "seeded",
    status: "active",
    grace_expires_at: null,
  });
  assert.equal(r.headers.get("cache-control"), "no-store");
});

test("a key in grace verifies with its grace end", async () => {
  const r = await verify(worker.url, keys.grace);
  assert.equal(r.status, 200);
  assert.equal(r.json.status, "grace");
  assert.equal(r.json.grace_expires_at, new Date(now + 3_600_000).toISOString());
});

test("refusals are 401 JSON with their code and a Bearer challenge", async () => {
  const cases = [
    [undefined, "missing_key"],
    ["lqt_" + "A".repeat(64), "malformed_key"],
    [keys.active + "0", "malformed_key"],
    [newKey(), "invalid_key"],
    [keys.expired, "key_expired"],
    [keys.revoked, "key_revoked"],
  ];
  // Twice: an isolate answers each refusal the same way every time, and each with its own
  // status, headers and body.
  const answer = (r) => JSON.stringify([[...r.headers].filter(([n]) => n !== "date"), r.text]);
  const first = new Map();
  for (const pass of [1, 2]) {
    for (const [key, code] of cases) {
      const r = await verify(worker.url, key);
      assert.equal(r.status, 401, code);
      assert.equal(r.json.error.code, code);
      assert.equal(typeof r.json.error.message, "string");
      // RFC 6750 §3: an error code only when credentials were sent (§3.1: none without).
      const challenge = key ? 'Bearer realm="lumiqtrace", error="invalid_token"' : 'Bearer realm="lumiqtrace"';
      assert.equal(r.headers.get("www-authenticate"), challenge, code);
      assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
      assert.equal(r.headers.get("cache-control"), "no-store");
      if (key) assert.ok(!r.text.includes(key), "the presented key is never echoed");
      const seen = answer(r);
      if (first.has(code)) assert.equal(seen, first.get(code), `${code} (pass ${pass}): the same answer`);
      else first.set(code, seen);
    }
  }
  // A request with a body goes the long way (it reads the body first): the same answers.
  for (const [key, code] of [[undefined, "missing_key"], ["lqt_nope", "malformed_key"]]) {
    const r = await call(worker.url, "POST", "/v1/ingest", { token: key ?? null, body: "{}" });
    assert.equal(answer(r), first.get(code), code);
  }
});

test("admin 401s carry the admin challenge, naming invalid_token only when a token was sent", async () => {
  const cases = [
    [null, 'Bearer realm="lumiqtrace-admin"'],
    [ADMIN_TOKEN + "x", 'Bearer realm="lumiqtrace-admin", error="invalid_token"'],
    [keys.active, 'Bearer realm="lumiqtrace-admin", error="invalid_token"'],
  ];
  for (const [token, challenge] of cases) {
    const r = await call(worker.url, "GET", "/admin/v1/keys", { token });
    assertDocumented("GET", "/admin/v1/keys", r.status, r.json);
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, "admin_unauthorized");
    assert.equal(r.headers.get("www-authenticate"), challenge, String(token).slice(0, 8));
  }
});

test("ingest without INGEST_ORIGIN is accepted with 202", async () => {
  const r = await call(worker.url, "POST", "/v1/ingest", { token: keys.active, body: { spans: [] } });
  assertDocumented("POST", "/v1/ingest", r.status, r.json);
  assert.equal(r.status, 202);
  assert.deepEqual(r.json, { accepted: true, project_id: "web-app", key_id: records.active.id });
});

test("a key never ingests into another project: 403 project_mismatch", async () => {
  const other = await call(worker.url, "POST", "/v1/projects/mobile/ingest", { token: keys.active, body: "{}" });
  assertDocumented("POST", "/v1/projects/mobile/ingest", other.status, other.json);
  assert.equal(other.status, 403);
  assert.equal(other.json.error.code, "project_mismatch");
  const header = await verify(worker.url, keys.active, { "x-lumiqtrace-project-id": "mobile" });
  assert.equal(header.status, 403);
  const own = await call(worker.url, "POST", "/v1/projects/web-app/ingest", { token: keys.active, body: "{}" });
  assert.equal(own.status, 202);
});

test("a 405 names the allowed methods, and the answers after it carry no Allow header", async () => {
  const wrong = await call(worker.url, "POST", "/v1/auth/verify", { token: keys.active, body: "{}" });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.json.error.code, "method_not_allowed");
  assert.equal(wrong.headers.get("allow"), "GET, HEAD");
  assert.equal(wrong.headers.get("content-type"), "application/json; charset=utf-8");
  const put = await call(worker.url, "PUT", "/v1/auth/verify", { token: null });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get("allow"), "GET, HEAD");
  // The 405's `Allow` header is its own: no other answer of the isolate carries it.
  for (const token of [keys.active, "lqt_nope", null]) {
    const r = await call(worker.url, "GET", "/v1/auth/verify", { token });
    assert.equal(r.headers.get("allow"), null, `${r.status} ${r.json?.error?.code ?? ""}`);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  }
});

/**
 * `method route` over a connection of its own, read to its end as raw bytes: what workerd puts
 * on the wire, body included (fetch would drop a HEAD answer's body unseen).
 */
function raw(base, method, route, token) {
  const { hostname, port } = new URL(base);
  const auth = token ? `Authorization: Bearer ${token}\r\n` : "";
  const request = `${method} ${route} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n${auth}Connection: close\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const chunks = [];
    const socket = net.connect(Number(port), hostname, () => socket.end(request));
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
      const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body: text.slice(end + 4) });
    });
  });
}

test("HEAD answers as GET does, without a body: verify and the admin reads", async () => {
  const cases = [
    ["/v1/auth/verify", keys.active, 200],
    ["/v1/auth/verify", undefined, 401], // refused from the request line alone
    ["/v1/auth/verify", "lqt_nope", 401], // malformed: no lookup either
    ["/v1/auth/verify", keys.revoked, 401], // refused after the lookup
    ["/v1/auth/verify", newKey(), 401],
    ["/admin/v1/keys", ADMIN_TOKEN, 200],
    [`/admin/v1/keys/${records.active.id}`, ADMIN_TOKEN, 404], // seeded without its id pointer
    ["/admin/v1/projects", ADMIN_TOKEN, 200],
    ["/admin/v1/audit", ADMIN_TOKEN, 200],
    ["/admin/v1/audit?project_id=web-app", ADMIN_TOKEN, 404], // its keys were seeded, the project never created
    ["/admin/v1/audit", undefined, 401],
  ];
  // Everything but the date and the framing (a HEAD may leave Content-Length out, or send GET's).
  const fields = (h) => JSON.stringify([...h].filter(([n]) => !["date", "content-length", "connection", "transfer-encoding"].includes(n)).sort());
  for (const [route, token, status] of cases) {
    const get = await raw(worker.url, "GET", route, token);
    const head = await raw(worker.url, "HEAD", route, token);
    const what = `${route} ${token ? token.slice(0, 8) : "no key"}`;
    assert.equal(get.status, status, what);
    assert.equal(head.status, get.status, what);
    assert.equal(fields(head.headers), fields(get.headers), what);
    assert.equal(head.headers.get("content-type"), "application/json; charset=utf-8", what);
    assert.equal(head.body, "", `${what}: no body on the wire`);
    assert.ok(get.body.length > 0, what);
    // RFC 9110 §8.6: a HEAD's Content-Length, if sent, is the length GET's body has.
    const length = head.headers.get("content-length");
    const { text } = await call(worker.url, "GET", route, { token: token ?? null });
    if (length !== undefined) assert.equal(Number(length), Buffer.byteLength(text), what);
    assertDocumented("HEAD", route, head.status, null);
  }
  // Still once a route's 405 lists HEAD among what it takes.
  for (const [route, allow] of [["/admin/v1/keys", "GET, HEAD"], ["/admin/v1/projects", "GET, HEAD, POST"]]) {
    const r = await call(worker.url, "DELETE", route);
    assert.equal(r.status, 405, route);
    assert.equal(r.headers.get("allow"), allow, route);
  }
});

test("unknown routes are JSON 404s", async () => {
  for (const route of ["/", "/nope", "/v2/auth/verify"]) {
    const r = await call(worker.url, "GET", route, { token: null });
    assert.equal(r.status, 404, route);
    assert.equal(r.json.error.code, "not_found");
  }
});

test("authorized ingest is forwarded to INGEST_ORIGIN unchanged, minus the key", async (t) => {
  const seen = [];
  const origin = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(207, { "content-type": "application/json", "x-origin": "yes" });
      res.end(JSON.stringify({ stored: true }));
    });
  });
  await new Promise((ok) => origin.listen(0, "127.0.0.1", ok));
  t.after(() => origin.close());
  const fwd = await startWorker({ vars: { INGEST_ORIGIN: `http://127.0.0.1:${origin.address().port}` } });
  t.after(() => fwd.dispose());
  const key = newKey();
  const record = await seed(fwd.kv, key);
  const r = await call(fwd.url, "POST", "/v1/projects/web-app/ingest?batch=7", {
    token: key,
    body: '{"spans":[1,2,3]}',
    headers: { "x-sdk": "py/1.2", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
  });
  assert.equal(r.status, 207);
  assert.equal(r.headers.get("x-origin"), "yes");
  assert.deepEqual(r.json, { stored: true });
  assert.equal(seen.length, 1);
  const [got] = seen;
  assert.equal(got.method, "POST");
  assert.equal(got.url, "/v1/projects/web-app/ingest?batch=7");
  assert.equal(got.body, '{"spans":[1,2,3]}');
  assert.equal(got.headers.authorization, undefined);
  assert.equal(got.headers["x-lumiqtrace-project-id"], "web-app");
  assert.equal(got.headers["x-lumiqtrace-key-id"], record.id);
  assert.equal(got.headers.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  assert.equal(got.headers["x-sdk"], undefined, "only allowlisted headers are forwarded (tests/e2e/forward.test.mjs)");
  assert.ok(!JSON.stringify(got.headers).includes(key));

  const refused = await call(fwd.url, "POST", "/v1/ingest", { token: newKey(), body: "x" });
  assert.equal(refused.status, 401);
  assert.equal(seen.length, 1, "refused calls never reach the origin");
});

test("an unreachable origin is 502 upstream_unavailable", async (t) => {
  const closed = http.createServer();
  await new Promise((ok) => closed.listen(0, "127.0.0.1", ok));
  const port = closed.address().port;
  await new Promise((ok) => closed.close(ok));
  const fwd = await startWorker({ vars: { INGEST_ORIGIN: `http://127.0.0.1:${port}` } });
  t.after(() => fwd.dispose());
  const key = newKey();
  await seed(fwd.kv, key);
  const r = await call(fwd.url, "POST", "/v1/ingest", { token: key, body: "x" });
  assertDocumented("POST", "/v1/ingest", r.status, r.json);
  assert.equal(r.status, 502);
  assert.equal(r.json.error.code, "upstream_unavailable");
});

test("storage failure fails closed with 503, and malformed keys never read KV", async (t) => {
  // No KEYS binding: every KV access fails. A request that reached KV could only get 503.
  const broken = await startWorker({ kv: false });
  t.after(() => broken.dispose());
  const down = await verify(broken.url, keys.active);
  assert.equal(down.status, 503);
  assert.equal(down.json.error.code, "unavailable");
  assert.ok(!down.text.includes("KEYS"), "503 bodies are generic");
  const ingest = await call(broken.url, "POST", "/v1/ingest", { token: keys.active, body: "x" });
  assert.equal(ingest.status, 503);
  const malformed = await verify(broken.url, "lqt_123");
  assert.equal(malformed.status, 401);
  assert.equal(malformed.json.error.code, "malformed_key");
  const missing = await verify(broken.url, undefined);
  assert.equal(missing.json.error.code, "missing_key");
  assert.ok(broken.logs.join("").includes("unavailable"), "the cause goes to the log");
});

test("a key read from KV answers from memory while the change log is live, and a revoke still lands at once", async (t) => {
  const key = newKey();
  const record = await seed(worker.kv, key);
  await worker.kv.put(`id/${record.id}`, record.hash);
  assert.equal((await verify(worker.url, key)).status, 200); // read from KV, kept in memory
  await worker.kv.delete(`key/${record.hash}`);
  assert.equal((await verify(worker.url, key)).status, 200, "answered from memory, not KV");
  await worker.kv.put(`key/${record.hash}`, JSON.stringify(record));
  const revoked = await call(worker.url, "POST", `/admin/v1/keys/${record.id}/revoke`);
  assert.equal(revoked.status, 200, revoked.text);
  assert.equal((await verify(worker.url, key)).json.error.code, "key_revoked", "the change log is asked first");

  // KV alone: no memory of reads, every verify reads KV.
  const alone = await startWorker({ vars: { CHANGES_OVERLAY: "off" } });
  t.after(() => alone.dispose());
  const other = await seed(alone.kv, key);
  assert.equal((await verify(alone.url, key)).status, 200);
  await alone.kv.delete(`key/${other.hash}`);
  assert.equal((await verify(alone.url, key)).json.error.code, "invalid_key");
});

test("an unknown key's miss is kept in memory while the change log is live", async () => {
  const key = newKey();
  assert.equal((await verify(worker.url, key)).json.error.code, "invalid_key"); // KV: no such key
  await seed(worker.kv, key);
  assert.equal((await verify(worker.url, key)).json.error.code, "invalid_key", "answered from memory, not KV");
});

test("no log line contains a presented key", () => {
  const logs = worker.logs.join("");
  assert.doesNotMatch(logs, /lqt_[0-9a-f]{64}/);
});
