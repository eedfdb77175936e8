// Leaked keys revoke themselves, end to end through workerd: GitHub's secret-scanning partner
// endpoint (a P-256 key pair made here stands in for GitHub's, served by a local stub of the
// public-keys document) and the admin report-leaked route. Checked against openapi.json.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import http from "node:http";
import { startWorker, call, ADMIN_TOKEN } from "../support/worker.mjs";
import { assertDocumented } from "../support/openapi.mjs";

const GITHUB_ROUTE = "/v1/secret-scanning/github";
const REPORT_ROUTE = "/admin/v1/keys/report-leaked";
const KEY_ID = "f9525bf080f75b3506ca1ead061add62b8633a346606dc5fe544e29231c6ee0d";
const OLD_KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
const github = generateKeyPairSync("ec", { namedCurve: "P-256" });
const githubOld = generateKeyPairSync("ec", { namedCurve: "P-256" }); // listed, not current
const impostor = generateKeyPairSync("ec", { namedCurve: "P-256" });
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const unknownKey = () => "lqt_" + randomBytes(32).toString("hex");

/** Base64 DER ECDSA P-256 / SHA-256 over the exact bytes, as GitHub signs. */
const signed = (body, key = github.privateKey) => sign("sha256", Buffer.from(body), key).toString("base64");

let stub; // serves GitHub's public-keys document; counts downloads
const stubHits = [];
let worker;

async function api(method, route, options = {}) {
  const r = await call(worker.url, method, route, options);
  assertDocumented(method, route, r.status, r.json);
  return r;
}

/**
 * POSTs `body` byte for byte on a connection of its own: a refused body (413) is not read by the
 * worker, and a pooled connection reused after that can fail (`fetch failed`).
 */
function post(url, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on("error", (e) => (e.code === "EPIPE" || e.code === "ECONNRESET" ? null : reject(e)));
    req.end(body);
  });
}

/** GitHub's delivery: `body` with GitHub's signature headers, checked against openapi.json. */
async function report(body, { keyId = KEY_ID, signature = signed(body), base = worker.url } = {}) {
  const headers = { "content-type": "application/json" };
  if (keyId !== null) headers["Github-Public-Key-Identifier"] = keyId;
  if (signature !== null) headers["Github-Public-Key-Signature"] = signature;
  const r = await post(base + GITHUB_ROUTE, body, headers);
  assertDocumented("POST", GITHUB_ROUTE, r.status, r.json);
  return r;
}

const match = (token, i = 0) => ({
  token,
  type: "lumiqtrace_api_key",
  url: `https://github.com/octo/app/blob/4f3a9c1/config/settings${i}.env`,
  source: "content",
});
const reportOf = (...tokens) => JSON.stringify(tokens.map(match));
const verify = (key) => api("GET", "/v1/auth/verify", { token: key });

async function newKey(project, name) {
  const r = await api("POST", `/admin/v1/projects/${project}/keys`, { body: { name } });
  assert.equal(r.status, 201);
  return { key: r.json.key, id: r.json.api_key.id };
}

/** Everything KV holds, to show that a refused report changed nothing. */
async function snapshot() {
  const { keys } = await worker.kv.list();
  const values = await Promise.all(keys.map((k) => worker.kv.get(k.name)));
  return keys.map((k, i) => [k.name, values[i]]);
}

before(async () => {
  const pem = (pair) => pair.publicKey.export({ type: "spki", format: "pem" });
  const document = JSON.stringify({
    public_keys: [
      { key_identifier: OLD_KEY_ID, key: pem(githubOld), is_current: false },
      { key_identifier: KEY_ID, key: pem(github), is_current: true },
    ],
  });
  stub = http.createServer((req, res) => {
    stubHits.push({ url: req.url, userAgent: req.headers["user-agent"] });
    res.writeHead(200, { "content-type": "application/json" }).end(document);
  });
  await new Promise((ok) => stub.listen(0, "127.0.0.1", ok));
  worker = await startWorker({
    vars: {
      GITHUB_KEYS_URL: `http://127.0.0.1:${stub.address().port}/meta/public_keys/secret_scanning`,
      ROTATION_GRACE_SECONDS: "1",
    },
  });
  for (const [id, name] of [["web-app", "Web app"], ["mobile", "Mobile"]]) {
    assert.equal((await api("POST", "/admin/v1/projects", { body: { id, name } })).status, 201);
  }
});
after(async () => {
  await worker?.dispose();
  stub?.close();
});

test("a signed report revokes a live key at once, says why, and leaves other projects' keys working", async () => {
  const leaked = await newKey("web-app", "production-web");
  const sibling = await newKey("web-app", "staging-web");
  const other = await newKey("mobile", "mobile-backend");
  assert.equal((await verify(leaked.key)).status, 200);

  const body = reportOf(leaked.key);
  const r = await report(body);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, [
    { token_hash: sha256(leaked.key), token_type: "lumiqtrace_api_key", label: "true_positive" },
  ]);
  assert.ok(!r.text.includes(leaked.key), "the answer never holds the token");

  const refused = await verify(leaked.key);
  assert.equal(refused.status, 401);
  assert.equal(refused.json.error.code, "key_revoked");
  assert.equal((await verify(sibling.key)).status, 200);
  assert.equal((await verify(other.key)).status, 200);

  const row = await api("GET", `/admin/v1/keys/${leaked.id}`);
  assert.equal(row.json.status, "revoked");
  assert.match(row.json.revoked_reason, /GitHub secret scanning/);
  assert.ok(row.json.revoked_reason.includes(match(leaked.key).url), row.json.revoked_reason);

  const audit = await api("GET", "/admin/v1/audit?project_id=web-app");
  const event = audit.json.events.find((e) => e.key_id === leaked.id && e.action === "key.revoked");
  assert.ok(event, JSON.stringify(audit.json.events));
  assert.equal(event.actor, "github-secret-scanning");
  assert.ok(JSON.stringify(event).includes(match(leaked.key).url), "the audit event names the URL");
  const mobile = await api("GET", "/admin/v1/audit?project_id=mobile");
  assert.ok(!mobile.json.events.some((e) => e.action === "key.revoked"));
});

test("the same report twice changes nothing the second time", async () => {
  const leaked = await newKey("web-app", "twice");
  const body = reportOf(leaked.key, unknownKey());
  const first = await report(body);
  assert.equal(first.status, 200);
  const revokedAt = (await api("GET", `/admin/v1/keys/${leaked.id}`)).json.revoked_at;
  const before = await snapshot();
  const second = await report(body);
  assert.equal(second.status, 200);
  assert.deepEqual(second.json, first.json);
  assert.deepEqual(await snapshot(), before, "KV unchanged: no record, no audit event");
  assert.equal((await api("GET", `/admin/v1/keys/${leaked.id}`)).json.revoked_at, revokedAt);
});

test("a leaked lqta_ admin token is a second token type: revoked at once (401), said why, audited, once", async () => {
  assert.equal((await api("POST", "/admin/v1/orgs", { body: { id: "leaky", name: "Leaky" } })).status, 201);
  const issue = async (name) => (await api("POST", "/admin/v1/orgs/leaky/admin-tokens", { body: { name } })).json;
  const leaked = await issue("leaky-ci");
  const bystander = await issue("leaky-ops");
  // Signed in once: this isolate now holds a positive answer for it, which the revocation drops.
  assert.equal((await api("GET", "/admin/v1/projects", { token: leaked.token })).status, 200);
  const unknown = "lqta_" + randomBytes(32).toString("hex");
  const place = "https://github.com/octo/app/blob/4f3a9c1/deploy/admin.env";
  const tokenMatch = (token) => ({ token, type: "lumiqtrace_admin_token", url: place, source: "commit" });
  const body = JSON.stringify([tokenMatch(leaked.token), tokenMatch(unknown), tokenMatch(leaked.token)]);

  const r = await report(body);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, [
    { token_hash: sha256(leaked.token), token_type: "lumiqtrace_admin_token", label: "true_positive" },
    { token_hash: sha256(unknown), token_type: "lumiqtrace_admin_token", label: "false_positive" },
  ]);
  assert.ok(!r.text.includes(leaked.token), "the answer never holds the token");
  const refused = await api("GET", "/admin/v1/projects", { token: leaked.token });
  assert.equal(refused.status, 401);
  assert.equal(refused.json.error.code, "admin_unauthorized");
  assert.equal((await api("GET", "/admin/v1/projects", { token: bystander.token })).status, 200);

  const listed = async () => (await api("GET", "/admin/v1/orgs/leaky/admin-tokens")).json.admin_tokens;
  const row = (await listed()).find((t) => t.id === leaked.admin_token.id);
  assert.equal(row.status, "revoked");
  assert.equal(row.revoked_reason, `Leaked: found by GitHub secret scanning (commit) at ${place}`);
  const audit = async () => (await api("GET", "/admin/v1/audit?org_id=leaky")).json.events;
  const events = (await audit()).filter((e) => e.action === "admin_token.revoked");
  assert.equal(events.length, 1, JSON.stringify(events));
  assert.equal(events[0].actor, "github-secret-scanning");
  assert.equal(events[0].org_id, "leaky");
  assert.equal(events[0].admin_token_id, leaked.admin_token.id);
  assert.equal(events[0].reason, row.revoked_reason);
  assert.equal(events[0].project_id, undefined, "no project for an admin token's event");

  // Again: the same answer, nothing changed, no second event.
  const [rowsBefore, auditBefore] = [await listed(), await audit()];
  const again = await report(body);
  assert.equal(again.status, 200);
  assert.deepEqual(again.json, r.json);
  assert.deepEqual(await listed(), rowsBefore);
  assert.deepEqual(await audit(), auditBefore);
  // An admin token is not an API key, nor the other way round, whatever the type says.
  const key = await newKey("web-app", "typed-as-token");
  const crossed = await report(JSON.stringify([tokenMatch(key.key), match(bystander.token)]));
  assert.deepEqual(crossed.json.map((f) => f.label), ["true_positive", "true_positive"]);
  assert.equal((await verify(key.key)).status, 401, "the key is revoked, as a key");
  assert.equal((await api("GET", "/admin/v1/projects", { token: bystander.token })).status, 401);
});

test("unknown, malformed and foreign tokens are false positives and change nothing", async () => {
  const live = await newKey("web-app", "bystander");
  const tokens = [unknownKey(), "lqt_0123", live.key.toUpperCase(), "ghp_" + "a".repeat(36)];
  const before = await snapshot();
  const r = await report(reportOf(...tokens));
  assert.equal(r.status, 200);
  assert.deepEqual(
    r.json,
    tokens.map((t) => ({ token_hash: sha256(t), token_type: "lumiqtrace_api_key", label: "false_positive" })),
  );
  assert.deepEqual(await snapshot(), before);
  assert.equal((await verify(live.key)).status, 200);
});

test("expired and already revoked keys are true positives, left as they were", async () => {
  const gone = await newKey("web-app", "gone");
  assert.equal((await api("POST", `/admin/v1/keys/${gone.id}/revoke`)).status, 200);
  const rotated = await newKey("web-app", "rotated");
  const rotation = await api("POST", `/admin/v1/keys/${rotated.id}/rotate`);
  const graceEnd = Date.parse(rotation.json.previous.grace_expires_at);
  await new Promise((ok) => setTimeout(ok, Math.max(0, graceEnd - Date.now()) + 200));
  assert.equal((await verify(rotated.key)).json.error.code, "key_expired");
  const rows = async () => [
    (await api("GET", `/admin/v1/keys/${gone.id}`)).json,
    (await api("GET", `/admin/v1/keys/${rotated.id}`)).json,
  ];
  const [rowsBefore, before] = [await rows(), await snapshot()];
  const r = await report(reportOf(gone.key, rotated.key));
  assert.deepEqual(r.json.map((f) => f.label), ["true_positive", "true_positive"]);
  assert.deepEqual(await snapshot(), before);
  assert.deepEqual(await rows(), rowsBefore);
  assert.equal(rowsBefore[1].status, "expired");
});

test("a report signed with GitHub's older, still listed key is accepted", async () => {
  const leaked = await newKey("web-app", "old-signature");
  const body = reportOf(leaked.key);
  const r = await report(body, { keyId: OLD_KEY_ID, signature: signed(body, githubOld.privateKey) });
  assert.equal(r.status, 200, r.text);
  assert.equal((await verify(leaked.key)).json.error.code, "key_revoked");
});

test("a key reported in many files is revoked once and answered once, for the first place", async () => {
  const leaked = await newKey("web-app", "copied");
  const body = JSON.stringify([0, 1, 2].map((i) => match(leaked.key, i)));
  const r = await report(body);
  assert.equal(r.status, 200);
  assert.equal(r.json.length, 1);
  const audit = await api("GET", "/admin/v1/audit?project_id=web-app");
  const events = audit.json.events.filter((e) => e.key_id === leaked.id && e.action === "key.revoked");
  assert.equal(events.length, 1);
  const reason = `Leaked: found by GitHub secret scanning (content) at ${match(leaked.key, 0).url}`;
  assert.equal((await api("GET", `/admin/v1/keys/${leaked.id}`)).json.revoked_reason, reason);
  assert.equal(events[0].reason, reason);
});

test("admin report-leaked: a key named twice is one entry, one revocation, the source as given", async () => {
  const leaked = await newKey("mobile", "twice-named");
  const source = "incident INC-8: pasted in chat";
  const r = await api("POST", REPORT_ROUTE, { body: { keys: [leaked.key, leaked.key], source } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, [{ token_hash: sha256(leaked.key), token_type: "lumiqtrace_api_key", label: "true_positive" }]);
  const reason = `Leaked: reported by ${source}`;
  assert.equal((await api("GET", `/admin/v1/keys/${leaked.id}`)).json.revoked_reason, reason);
  const audit = await api("GET", "/admin/v1/audit?project_id=mobile");
  const events = audit.json.events.filter((e) => e.key_id === leaked.id && e.action === "key.revoked");
  assert.equal(events.length, 1);
  assert.equal(events[0].reason, reason);
});

test("forged reports are refused with 401 and revoke nothing", async () => {
  const live = await newKey("web-app", "target");
  const body = reportOf(live.key);
  const tampered = body.replace("settings0.env", "settings1.env");
  const cases = [
    ["signed by another key", { body, signature: signed(body, impostor.privateKey) }, "invalid_signature"],
    ["tampered body", { body: tampered, signature: signed(body) }, "invalid_signature"],
    ["a trailing space", { body: body + " ", signature: signed(body) }, "invalid_signature"],
    ["wrong key identifier", { body, keyId: "a".repeat(64) }, "unknown_signing_key"],
    ["signed by GitHub's other listed key", { body, keyId: OLD_KEY_ID, signature: signed(body) }, "invalid_signature"],
    ["no signature", { body, signature: null }, "missing_signature"],
    ["no key identifier", { body, keyId: null }, "missing_signature"],
    ["a signature that is not base64 DER", { body, signature: "not-a-signature!" }, "invalid_signature"],
    ["raw r||s instead of DER", { body, signature: Buffer.alloc(64, 1).toString("base64") }, "invalid_signature"],
  ];
  const before = await snapshot();
  for (const [what, { body: sent, ...headers }, code] of cases) {
    const r = await report(sent, headers);
    assert.equal(r.status, 401, `${what}: ${r.text}`);
    if (code) assert.equal(r.json.error.code, code, what);
  }
  assert.deepEqual(await snapshot(), before);
  assert.equal((await verify(live.key)).status, 200);
});

test("oversized reports are refused with 413 and revoke nothing", async () => {
  const live = await newKey("web-app", "big");
  const before = await snapshot();
  const huge = JSON.stringify([{ ...match(live.key), url: "https://github.com/" + "x".repeat(1024 * 1024) }]);
  const tooBig = await report(huge);
  assert.equal(tooBig.status, 413);
  assert.equal(tooBig.json.error.code, "payload_too_large");
  const many = reportOf(live.key, ...Array.from({ length: 1000 }, unknownKey));
  const tooMany = await report(many);
  assert.equal(tooMany.status, 413);
  assert.equal(tooMany.json.error.code, "payload_too_large");
  assert.deepEqual(await snapshot(), before);
  assert.equal((await verify(live.key)).status, 200);
});

test("a report of 1,000 tokens is answered whole", async () => {
  const live = await newKey("web-app", "needle");
  const tokens = [...Array.from({ length: 999 }, unknownKey), live.key];
  const r = await report(reportOf(...tokens));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.length, 1000);
  assert.deepEqual(r.json.at(-1), { token_hash: sha256(live.key), token_type: "lumiqtrace_api_key", label: "true_positive" });
  assert.equal(r.json.filter((f) => f.label === "false_positive").length, 999);
  assert.equal((await verify(live.key)).json.error.code, "key_revoked");
});

test("malformed report bodies are 400 and never echo a key", async () => {
  const live = await newKey("web-app", "echo");
  for (const body of [`"${live.key}"`, "[{", `[{"type": "${live.key}"}]`]) {
    const r = await report(body);
    assert.equal(r.status, 400, body);
    assert.ok(!r.text.includes(live.key), r.text);
  }
  assert.equal((await verify(live.key)).status, 200);
});

test("admin report-leaked: same outcome and answer, the source as the reason", async () => {
  const leaked = await newKey("mobile", "ios-release");
  const unknown = unknownKey();
  const body = { keys: [leaked.key, unknown, "not-a-key"], source: "incident INC-7: CI log" };
  const r = await api("POST", REPORT_ROUTE, { body });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, [
    { token_hash: sha256(leaked.key), token_type: "lumiqtrace_api_key", label: "true_positive" },
    { token_hash: sha256(unknown), token_type: "lumiqtrace_api_key", label: "false_positive" },
    { token_hash: sha256("not-a-key"), token_type: "lumiqtrace_api_key", label: "false_positive" },
  ]);
  assert.ok(!r.text.includes(leaked.key));
  assert.equal((await verify(leaked.key)).json.error.code, "key_revoked");
  const row = (await api("GET", `/admin/v1/keys/${leaked.id}`)).json;
  assert.match(row.revoked_reason, /INC-7: CI log/);

  const before = await snapshot();
  assert.deepEqual((await api("POST", REPORT_ROUTE, { body })).json, r.json);
  assert.deepEqual(await snapshot(), before, "the same report again changes nothing");
});

test("admin report-leaked refuses what it cannot accept, revoking nothing", async () => {
  const live = await newKey("mobile", "android");
  const before = await snapshot();
  const cases = [
    [{ token: null, body: { keys: [live.key], source: "x" } }, 401, "admin_unauthorized"],
    [{ body: { keys: [live.key], source: "" } }, 400, "invalid_source"],
    [{ body: { keys: [live.key], source: "a\nb" } }, 400, "invalid_source"],
    [{ body: { keys: [live.key] } }, 400, "invalid_body"],
    [{ body: { keys: [live.key], source: "x", extra: 1 } }, 400, "unknown_field"],
    [{ body: { keys: [live.key], source: "x", [live.key]: 1 } }, 400, "unknown_field"],
    [{ body: { keys: live.key, source: "x" } }, 400, "invalid_body"],
    [{ body: { keys: [live.key], source: "x" }, headers: { "content-type": "text/plain" } }, 400, "unsupported_content_type"],
    [{ body: { keys: Array.from({ length: 1001 }, unknownKey), source: "x" } }, 413, "payload_too_large"],
  ];
  for (const [options, status, code] of cases) {
    const r = await api("POST", REPORT_ROUTE, options);
    assert.equal(r.status, status, JSON.stringify(options).slice(0, 120) + " " + r.text);
    if (code) assert.equal(r.json.error.code, code);
    assert.ok(!r.text.includes(live.key), r.text);
  }
  const huge = JSON.stringify({ keys: [live.key], source: "x".repeat(1024 * 1024) });
  const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
  const tooBig = await post(worker.url + REPORT_ROUTE, huge, headers);
  assertDocumented("POST", REPORT_ROUTE, tooBig.status, tooBig.json);
  assert.equal(tooBig.status, 413);
  assert.equal(tooBig.json.error.code, "payload_too_large");
  // Just under 1 MiB of `{},`: ~350,000 JSON values, refused before they are all held in memory.
  const empties = "[" + "{},".repeat(349_000) + "{}]";
  const swarm = await post(worker.url + REPORT_ROUTE, empties, headers);
  assertDocumented("POST", REPORT_ROUTE, swarm.status, swarm.json);
  assert.equal(swarm.status, 400, swarm.text);
  assert.equal(swarm.json.error.code, "invalid_body");
  assert.deepEqual(await snapshot(), before);
  assert.equal((await verify(live.key)).status, 200);
});

test("GitHub's keys document is fetched once, with a User-Agent, and cached", async () => {
  assert.equal(stubHits.length, 1, JSON.stringify(stubHits));
  assert.equal(stubHits[0].url, "/meta/public_keys/secret_scanning");
  assert.match(stubHits[0].userAgent ?? "", /\S/, "GitHub's API refuses requests without a User-Agent");
});

test("without GitHub's keys the report is refused with 503 and revokes nothing", async () => {
  const closed = http.createServer();
  await new Promise((ok) => closed.listen(0, "127.0.0.1", ok));
  const port = closed.address().port;
  await new Promise((ok) => closed.close(ok));
  const down = await startWorker({ vars: { GITHUB_KEYS_URL: `http://127.0.0.1:${port}/keys` } });
  try {
    await call(down.url, "POST", "/admin/v1/projects", { body: { id: "web-app", name: "Web app" } });
    const created = await call(down.url, "POST", "/admin/v1/projects/web-app/keys", { body: { name: "k" } });
    const r = await report(reportOf(created.json.key), { base: down.url });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, "unavailable");
    const still = await call(down.url, "GET", "/v1/auth/verify", { token: created.json.key });
    assert.equal(still.status, 200);
  } finally {
    await down.dispose();
  }
});
