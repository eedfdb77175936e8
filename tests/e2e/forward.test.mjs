// The forwarder end to end (issue 16): a key of one project never reaches the origin naming
// another, whatever the spelling of the path or query; only allowlisted request headers go on;
// redirects are passed back, not followed; every relayed answer is `Cache-Control: no-store`.
// The origin is a local stub that records every request it gets.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { startWorker } from "../support/worker.mjs";
import { assertDocumented } from "../support/openapi.mjs";

const OWN = "ours";
const OTHER = "evil";
/** The request headers the worker passes on (crates/core/src/forward.rs, FORWARDED_HEADERS; docs/design.md, README Routes). */
const FORWARDED = [
  "accept",
  "accept-encoding",
  "content-encoding",
  "content-length",
  "content-type",
  "idempotency-key",
  "traceparent",
  "tracestate",
  "user-agent",
];
/** What the worker sets itself. */
const OURS = ["x-lumiqtrace-project-id", "x-lumiqtrace-key-id"];
/** What the runtime's fetch adds on its own: the connection, INGEST_ORIGIN's host, `CF-Worker`. */
const RUNTIME = ["host", "connection", "transfer-encoding", "cf-worker"];

const newKey = () => "lqt_" + randomBytes(32).toString("hex");
const sha256 = (s) => createHash("sha256").update(s).digest("hex");

let worker, stub, key, record;
const seen = [];

before(async () => {
  stub = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
      if (req.url === "/v1/redirect") {
        const to = `http://127.0.0.1:${stub.address().port}/v1/landed`;
        res.writeHead(302, { location: to, "cache-control": "public, max-age=600" });
        return res.end();
      }
      res.writeHead(req.url === "/v1/missing" ? 404 : 200, {
        "content-type": "application/json",
        "cache-control": "public, max-age=600",
      });
      res.end(JSON.stringify({ origin: true }));
    });
  });
  await new Promise((ok) => stub.listen(0, "127.0.0.1", ok));
  worker = await startWorker({ vars: { INGEST_ORIGIN: `http://127.0.0.1:${stub.address().port}` } });
  key = newKey();
  record = {
    id: "key_" + randomBytes(12).toString("hex"),
    hash: sha256(key),
    name: "seeded",
    project_id: OWN,
    prefix: key.slice(0, 12),
    created_at: Date.now(),
    grace_expires_at: null,
    revoked_at: null,
    rotated_from: null,
    rotated_to: null,
  };
  await worker.kv.put(`key/${record.hash}`, JSON.stringify(record));
});
after(async () => {
  await worker?.dispose();
  stub?.close();
});

/**
 * Sends `target` exactly as written (no URL parsing on the way: `fetch` would resolve dot
 * segments itself) on a connection of its own; never follows a redirect.
 */
function send(target, { method = "POST", headers = {}, body = "{}" } = {}) {
  const url = new URL(worker.url);
  const sent = { authorization: `Bearer ${key}`, ...headers };
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: target, method, headers: sent, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode, headers: res.headers, json, text });
        });
      },
    );
    req.on("error", reject);
    req.end(method === "GET" || method === "HEAD" ? undefined : body);
  });
}

const hex = (c, lower) => {
  const h = c.charCodeAt(0).toString(16).padStart(2, "0");
  return "%" + (lower ? h : h.toUpperCase());
};

/**
 * Spellings of a template: as written; each separator (`/ . \ ? & = ;`) or letter of `project`
 * and of the other project's id alone as `%XX` or `%xx`; all separators, all letters, and
 * everything involved at once as `%XX`, as `%xx`, and double-encoded (`%252F`).
 */
function spellings(template) {
  const lower = template.toLowerCase();
  const letters = new Set();
  for (const word of ["project", OTHER]) {
    for (let at = lower.indexOf(word); at >= 0; at = lower.indexOf(word, at + 1)) {
      for (let i = at; i < at + word.length; i++) letters.add(i);
    }
  }
  const separators = new Set([...template].flatMap((c, i) => (i >= 3 && "/.\\?&=;".includes(c) ? [i] : [])));
  const spell = (positions, encode) => [...template].map((c, i) => (positions.has(i) ? encode(c) : c)).join("");
  const out = new Set([template]);
  for (const i of [...separators, ...letters]) {
    for (const lowerHex of [false, true]) out.add(spell(new Set([i]), (c) => hex(c, lowerHex)));
  }
  const everything = new Set([...separators, ...letters]);
  for (const positions of [separators, letters, everything]) {
    for (const lowerHex of [false, true]) out.add(spell(positions, (c) => hex(c, lowerHex)));
    out.add(spell(positions, (c) => "%25" + hex(c, false).slice(1)));
  }
  return [...out];
}

function decode(text, rounds) {
  for (let i = 0; i < rounds; i++) {
    let again;
    try {
      again = decodeURIComponent(text);
    } catch {
      again = text.replace(/%([0-9a-f]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
    }
    if (again === text) break;
    text = again;
  }
  return text;
}

/**
 * The ways an origin might read a request target: percent-decoded never, once, or as often as
 * it decodes, before or after splitting off the query; `\` as `/`; `;` parameters and trailing
 * dots cut off; dot segments resolved; lowercased. Returns [segments, [name, value] pairs].
 */
function originViews(target) {
  const views = [];
  for (const rounds of [0, 1, 100]) {
    for (const decodeFirst of [false, true]) {
      const whole = decodeFirst ? decode(target, rounds) : target;
      const q = whole.indexOf("?");
      let [path, query] = q < 0 ? [whole, ""] : [whole.slice(0, q), whole.slice(q + 1)];
      if (!decodeFirst) [path, query] = [decode(path, rounds), decode(query, rounds)];
      const segments = [];
      for (let s of path.replaceAll("\\", "/").toLowerCase().split("/")) {
        s = s.split(";")[0];
        if (s !== "." && s !== "..") s = s.replace(/[. ]+$/, "");
        if (s === "" || s === ".") continue;
        if (s === "..") segments.pop();
        else segments.push(s);
      }
      const pairs = query
        .toLowerCase()
        .split(/[&;]/)
        .map((p) => [p.split("=")[0], p.split("=").slice(1).join("=")]);
      views.push([segments, pairs]);
    }
  }
  return views;
}

const mentionsProject = (s) => s.replace(/[^a-z0-9]/gi, "").toLowerCase().includes("project");

/** Every project a reading names: after a segment mentioning `project`, or as such a parameter's value. */
function namedProjects([segments, pairs]) {
  const byPath = segments.flatMap((s, i) => (mentionsProject(s) && i + 1 < segments.length ? [segments[i + 1]] : []));
  const byQuery = pairs.filter(([name]) => mentionsProject(name)).map(([, value]) => value);
  return [...byPath, ...byQuery];
}

const ATTACKS = [
  "/v1/projects/evil/ingest",
  "/v1//projects/evil/ingest",
  "/v1/Projects/evil/ingest",
  "/v1/project/evil/ingest",
  "/v1/projects./evil/ingest",
  "/v1/projects/ours/../evil/ingest",
  "/v1/projects/ours/..\\evil/ingest",
  "/v1/projects/ours/./../evil/ingest",
  "/v1/projects/ours/..;/evil/ingest",
  "/v1/ingest/../projects/evil/ingest",
  "/v1/projects/ours/projects/evil/ingest",
  "/v1/x/projects/evil/ingest",
  "/v1/projects/ours/ingest?project_id=evil",
  "/v1/projects/ours/ingest?projectId=evil",
  "/v1/ingest?a=1&project=evil",
  "/v1/ingest?a=1;Project-Id=evil",
];

test("no spelling of another project's path or query reaches the origin naming it", async () => {
  // The oracle can tell: each attack as written names the other project by some reading.
  for (const attack of ATTACKS) {
    assert.ok(originViews(attack).some((v) => namedProjects(v).includes(OTHER)), attack);
  }
  const from = seen.length;
  const answers = [];
  for (const attack of ATTACKS) {
    for (const target of spellings(attack)) answers.push([target, await send(target)]);
  }
  assert.ok(answers.length > 400, `${answers.length} spellings`);
  // What reached the origin: nothing naming another project, by any reading.
  for (const got of seen.slice(from)) {
    assert.equal(got.headers["x-lumiqtrace-project-id"], OWN, got.url);
    const others = originViews(got.url).flatMap((view) => namedProjects(view).filter((p) => p !== OWN));
    assert.deepEqual([...new Set(others)], [], `${got.url} reached the origin naming other projects`);
  }
  // What the client got: a documented 4xx JSON refusal, or the origin's answer to a request that
  // named no other project (the runtime resolves dot segments before the worker sees the URL:
  // `/v1/projects%2Fours/../evil/ingest` arrives as `/v1/evil/ingest`).
  const statuses = new Map();
  for (const [target, r] of answers) {
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    assert.equal(r.headers["cache-control"], "no-store", target);
    if (r.status === 200) {
      assert.deepEqual(r.json, { origin: true }, target);
      continue;
    }
    assert.ok(r.status >= 400 && r.status < 500, `${target}: ${r.status} ${r.text}`);
    assert.ok(r.json?.error?.code, `${target}: ${r.status} ${r.text}`);
    if (r.status === 404) {
      // `/v1` then an escaped `/`: not an ingest route at all.
      assert.ok(!target.startsWith("/v1/"), target);
      assert.equal(r.json.error.code, "not_found");
    } else {
      assertDocumented("POST", `/v1/projects/${OWN}/ingest`, r.status, r.json);
    }
  }
  assert.equal(statuses.get(200) ?? 0, seen.length - from, "every 200 came from the origin");
  assert.ok(statuses.get(400) > 0 && statuses.get(403) > 0, JSON.stringify([...statuses]));
  // The key's own project still goes through, path and query unchanged.
  const own = await send(`/v1/projects/${OWN}/ingest?batch=7&service=my-project`);
  assert.equal(own.status, 200, own.text);
  assert.equal(seen.at(-1).url, `/v1/projects/${OWN}/ingest?batch=7&service=my-project`);
  assert.equal(seen.at(-1).headers["x-lumiqtrace-project-id"], OWN);
});

test("only allowlisted request headers reach the origin; the client's X-LumiqTrace-* never do", async () => {
  const allowed = {
    accept: "application/json",
    "content-type": "application/json",
    "idempotency-key": "batch-42",
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    tracestate: "vendor=1",
    "user-agent": "lumiqtrace-py/1.2",
  };
  const dropped = {
    "x-lumiqtrace-key-name": "spoofed",
    "x-lumiqtrace-key-id": "key_spoofed",
    "x-lumiqtrace-project-id": OWN, // names the key's own project: passes the check, still replaced
    "x-lumiqtrace-anything": "spoofed",
    "x-sdk": "py/1.2",
    cookie: "session=1",
    "x-forwarded-for": "203.0.113.9",
    forwarded: "for=203.0.113.9",
  };
  const r = await send("/v1/ingest", { headers: { ...allowed, ...dropped }, body: '{"spans":[]}' });
  assert.equal(r.status, 200, r.text);
  const got = seen.at(-1).headers;
  for (const [name, value] of Object.entries(allowed)) assert.equal(got[name], value, name);
  assert.equal(got["x-lumiqtrace-project-id"], OWN);
  assert.equal(got["x-lumiqtrace-key-id"], record.id);
  assert.equal(got.authorization, undefined);
  for (const name of Object.keys(got)) {
    assert.ok([...FORWARDED, ...OURS, ...RUNTIME].includes(name), `${name}: ${got[name]} was forwarded`);
  }
  assert.ok(!JSON.stringify(got).includes("spoofed"));
});

test("a redirect from the origin is passed back, not followed", async () => {
  const from = seen.length;
  const r = await send("/v1/redirect");
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, `http://127.0.0.1:${stub.address().port}/v1/landed`);
  assert.equal(r.headers["cache-control"], "no-store");
  assert.deepEqual(seen.slice(from).map((g) => g.url), ["/v1/redirect"]);
});

test("every relayed answer is Cache-Control: no-store, whatever the origin said", async () => {
  for (const [target, status] of [
    ["/v1/ingest", 200],
    ["/v1/missing", 404],
    [`/v1/projects/${OWN}/ingest`, 200],
  ]) {
    for (const method of ["POST", "GET"]) {
      const r = await send(target, { method });
      assert.equal(r.status, status, `${method} ${target}`);
      assert.deepEqual(r.json, { origin: true });
      assert.equal(r.headers["cache-control"], "no-store", `${method} ${target}`);
      assert.equal(r.headers["content-type"], "application/json");
    }
  }
});
