// Who gets the worker to read a body, and how often a wrong admin token may be tried, end to end
// through workerd: bodies are read only once the caller is authenticated and stay within each
// route's limit (issue 16 §5); the admin token must be long enough and failed sign-ins are
// throttled per client (issue 16 §6). Every answer is checked against openapi.json.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import http from "node:http";
import { startWorker, call, signinLimiter, ADMIN_TOKEN } from "../support/worker.mjs";
import { assertDocumented } from "../support/openapi.mjs";

const MIB = 1024 * 1024;
const GITHUB_ROUTE = "/v1/secret-scanning/github";
const REPORT_ROUTE = "/admin/v1/keys/report-leaked";
const KEY_ID = "e2e-gate-signing-key";
const github = generateKeyPairSync("ec", { namedCurve: "P-256" });

let stub; // GitHub's public-keys document
let worker;

before(async () => {
  const key = github.publicKey.export({ type: "spki", format: "pem" });
  const document = JSON.stringify({ public_keys: [{ key_identifier: KEY_ID, key, is_current: true }] });
  stub = http.createServer((req, res) => res.writeHead(200, { "content-type": "application/json" }).end(document));
  await new Promise((ok) => stub.listen(0, "127.0.0.1", ok));
  const GITHUB_KEYS_URL = `http://127.0.0.1:${stub.address().port}/keys`;
  worker = await startWorker({ vars: { GITHUB_KEYS_URL } });
});
after(async () => {
  await worker?.dispose();
  stub?.close();
});

/**
 * POSTs up to `total` bytes, `chunk` bytes at a time, each only after the last went out and no
 * answer came for `patience` ms; a worker that waits for the whole body answers only once all
 * `total` bytes are sent. Resolves with the answer and `sent`: how many bytes the client had
 * handed over when it came (counted before each write, so never less than the truth). Without
 * `content-length` in `headers` the body is chunked.
 */
function trickle(route, { headers = {}, total = MIB, chunk = 64 * 1024, patience = 300 } = {}) {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    let timer;
    const req = http.request(worker.url + route, { method: "POST", headers, agent: false });
    req.on("response", (res) => {
      answered = true;
      clearTimeout(timer);
      const sentAtAnswer = sent;
      const parts = [];
      res.on("data", (part) => parts.push(part));
      res.on("end", () => {
        req.destroy();
        const text = Buffer.concat(parts).toString();
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {}
        assertDocumented("POST", route, res.statusCode, json);
        resolve({ status: res.statusCode, headers: res.headers, json, text, sent: sentAtAnswer });
      });
    });
    // Once answered, the worker may close the connection on the rest of the body.
    req.on("error", (e) => (answered ? null : reject(e)));
    const next = () => {
      if (answered) return;
      if (sent >= total) return req.end();
      const size = Math.min(chunk, total - sent);
      sent += size;
      req.write(Buffer.alloc(size, 0x20), () => {
        if (!answered) timer = setTimeout(next, patience);
      });
    };
    next();
  });
}

const json = { "content-type": "application/json" };
const admin = { ...json, authorization: `Bearer ${ADMIN_TOKEN}` };

test("an unauthenticated 1 MiB chunked upload is refused before it is read to the end", async () => {
  const cases = [
    ["no token", "/admin/v1/projects", {}, 401, "admin_unauthorized"],
    ["wrong token", REPORT_ROUTE, { authorization: "Bearer wrong" }, 401, "admin_unauthorized"],
    ["no signature", GITHUB_ROUTE, {}, 401, "missing_signature"],
    ["garbled signature", GITHUB_ROUTE, { "github-public-key-identifier": KEY_ID, "github-public-key-signature": "!!" }, 401, "invalid_signature"],
    // Ingest refusals too: a made-up key, another project's path, a path not canonical.
    ["malformed key", "/v1/ingest", { authorization: "Bearer nope" }, 401, "malformed_key"],
    ["unknown key", "/v1/ingest", { authorization: `Bearer lqt_${"ab".repeat(32)}` }, 401, "invalid_key"],
    ["unknown key", "/v1/projects/p/ingest", { authorization: `Bearer lqt_${"cd".repeat(32)}` }, 401, "invalid_key"],
    ["unknown key id", GITHUB_ROUTE, { "github-public-key-identifier": "other", "github-public-key-signature": sign("sha256", Buffer.from("[]"), github.privateKey).toString("base64") }, 401, "unknown_signing_key"],
  ];
  for (const [what, route, headers, status, code] of cases) {
    const r = await trickle(route, { headers: { ...json, ...headers } });
    assert.ok(r.sent < MIB / 2, `${what} ${route}: answered only after ${r.sent} of ${MIB} bytes`);
    assert.equal(r.status, status, `${what} ${route}: ${r.text}`);
    assert.equal(r.json.error.code, code, what);
  }
});

test("a small refused body is drained, so the next request on the connection still works", async () => {
  // Left unread, it failed about 1 follow-up request in 5 on the same keep-alive connection.
  for (let i = 0; i < 40; i++) {
    // No token: a refusal the sign-in throttle does not count.
    const refused = await call(worker.url, "POST", "/admin/v1/projects", { token: null, body: { id: "p", name: "P" } });
    assert.equal(refused.status, 401);
    const next = await call(worker.url, "GET", "/admin/v1/projects");
    assert.equal(next.status, 200);
  }
});

test("a declared Content-Length over the limit is refused unread, with each route's code", async () => {
  const cases = [
    ["/admin/v1/projects", admin, 400, "body_too_large"],
    [REPORT_ROUTE, admin, 413, "payload_too_large"],
  ];
  for (const [route, headers, status, code] of cases) {
    const r = await trickle(route, { headers: { ...headers, "content-length": String(2 * MIB) }, total: 2 * MIB });
    assert.deepEqual([r.status, r.json.error.code], [status, code], r.text);
    assert.ok(r.sent < MIB, `${route}: answered only after ${r.sent} of ${2 * MIB} bytes`);
  }
});

test("a chunked body is cut off once it crosses the limit, not read to the end", async () => {
  const total = 512 * 1024; // the admin limit is 16 KiB
  const admins = await trickle("/admin/v1/projects", { headers: admin, chunk: 8 * 1024, total });
  assert.deepEqual([admins.status, admins.json.error.code], [400, "body_too_large"], admins.text);
  assert.ok(admins.sent < total / 2, `answered only after ${admins.sent} of ${total} bytes`);
  const signature = sign("sha256", Buffer.alloc(2 * MIB, 0x20), github.privateKey).toString("base64");
  const signed = { ...json, "github-public-key-identifier": KEY_ID, "github-public-key-signature": signature };
  const report = await trickle(GITHUB_ROUTE, { headers: signed, total: 2 * MIB });
  assert.deepEqual([report.status, report.json.error.code], [413, "payload_too_large"], report.text);
  assert.ok(report.sent < 2 * MIB, `answered only after ${report.sent} bytes`);
  // Within the limit, the same routes still read and answer the whole body.
  const ok = await call(worker.url, "POST", "/admin/v1/projects", { body: { id: "gate", name: "Gate" } });
  assert.equal(ok.status, 201, ok.text);
});

test("failed admin sign-ins are throttled per client with 429 and Retry-After", async (t) => {
  const limit = 3;
  const w = await startWorker({ extra: { ratelimits: signinLimiter(limit) } });
  t.after(() => w.dispose());
  const as = (ip, token) => {
    const headers = ip ? { "cf-connecting-ip": ip } : {};
    return call(w.url, "GET", "/admin/v1/projects", { token, headers }).then((r) => {
      assertDocumented("GET", "/admin/v1/projects", r.status, r.json);
      return r;
    });
  };
  const attacker = "203.0.113.7";
  // No credentials guess nothing and are never counted.
  for (let i = 0; i < 2 * limit; i++) assert.equal((await as(attacker, null)).status, 401);
  // The binding counts per fixed window: should one end mid-test, the count starts again, so
  // the first 429 comes after between `limit` and `2 * limit` refusals.
  let refused = 0;
  let r;
  while ((r = await as(attacker, "wrong-guess")).status === 401 && refused <= 2 * limit) refused++;
  assert.equal(r.status, 429, r.text);
  assert.ok(refused >= limit && refused <= 2 * limit, `${refused} refusals before the 429`);
  assert.equal(r.json.error.code, "too_many_attempts");
  assert.equal(r.headers.get("retry-after"), "60");
  const right = await as(attacker, ADMIN_TOKEN);
  assert.equal(right.status, 429, "the throttled client waits, right token or not");
  // Another client is not slowed by the attacker's failures.
  assert.equal((await as("198.51.100.2", ADMIN_TOKEN)).status, 200);
  assert.equal((await as("198.51.100.2", "typo")).status, 401);
  // A throttled client's body is not read either.
  const headers = { ...json, "cf-connecting-ip": attacker, authorization: "Bearer wrong-guess" };
  const upload = await new Promise((resolve, reject) => {
    const req = http.request(w.url + "/admin/v1/projects", { method: "POST", headers, agent: false });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode);
      req.destroy();
    });
    req.on("error", reject);
    req.write(Buffer.alloc(1024, 0x20)); // the rest never comes: only an early answer settles this
    setTimeout(() => reject(new Error("no answer in 10 s: the worker waited for the body")), 10_000).unref();
  });
  assert.equal(upload, 429);
});

/** Admin calls to a worker with `ADMIN_TOKEN`, each compared with a wrong token's answer here. */
async function misconfigured(token, check) {
  const here = {
    wrong: await call(worker.url, "GET", "/admin/v1/keys", { token: "wrong" }),
    // No credentials: RFC 6750's bare challenge, whatever the configuration.
    none: await call(worker.url, "GET", "/admin/v1/keys", { token: null }),
  };
  const w = await startWorker({ vars: { ADMIN_TOKEN: token } });
  try {
    for (const [method, route] of [["GET", "/admin/v1/keys"], ["POST", "/admin/v1/projects"]]) {
      const body = method === "POST" ? { id: "p", name: "P" } : undefined;
      for (const sent of [null, "wrong"]) {
        const r = await call(w.url, method, route, { token: sent, body });
        assertDocumented(method, route, r.status, r.json);
        const same = here[sent === null ? "none" : "wrong"];
        assert.deepEqual([r.status, r.text], [401, same.text], `${method} ${route}: like a well-configured worker`);
        assert.equal(r.headers.get("www-authenticate"), same.headers.get("www-authenticate"));
      }
      await check?.(w, method, route, body);
    }
    return w.logs.join("");
  } finally {
    await w.dispose();
  }
}

test("a short ADMIN_TOKEN turns every admin call away; only its holder is told why", async () => {
  for (const token of ["changeme", "x".repeat(31)]) {
    const logs = await misconfigured(token, async (w, method, route, body) => {
      const own = await call(w.url, method, route, { token, body });
      assertDocumented(method, route, own.status, own.json);
      assert.equal(own.status, 403, own.text);
      assert.equal(own.json.error.code, "admin_token_too_short");
      assert.match(own.json.error.message, /32 characters.*openssl rand -hex 32/);
    });
    assert.match(logs, /ADMIN_TOKEN is shorter than 32 characters/);
    assert.ok(!logs.includes(token), "the token itself is never logged");
  }
});

test("an unset ADMIN_TOKEN is answered like a wrong token; the log says why", async () => {
  const logs = await misconfigured("");
  assert.match(logs, /ADMIN_TOKEN is not set/);
});
