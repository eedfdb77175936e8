// worker-build's own recovery after a Rust panic: the worker crate's panic hook flags the isolate
// as critical, and worker-build's JS entry (build/index.js) starts a fresh Wasm instance before
// the next call; the next request must answer as before, and the KeyChanges Durable Object
// (every admin write commits through it) must carry on too.
//
// No request can make this worker panic, so a test wrapper around the built entry makes one panic
// for real: for the request sent to /__test/panic it replaces the global `Response` with one
// whose constructor throws, once. The worker crate turns the Rust response into the runtime's
// with `Response::new(..).unwrap()`, so that request panics inside the Wasm instance, through
// the real panic hook and abort. The wrapper also reads the instance counter the worker crate
// keeps (`globalThis.__worker_init_state`).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import { startWorker, call, ROOT } from "../support/worker.mjs";

const WRAPPER = `
import worker, { AdminTokens, KeyChanges, KeyUsage } from "./index.js";
export { AdminTokens, KeyChanges, KeyUsage };
const state = () => globalThis.__worker_init_state;

export default class extends worker {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === "/__test/instance") return new Response(String(state().instanceId));
    if (pathname !== "/__test/panic") return super.fetch(request);
    const Original = globalThis.Response;
    globalThis.Response = class {
      constructor() {
        globalThis.Response = Original;
        throw new TypeError("test: this Response cannot be made");
      }
    };
    const malformed = new Request(new URL("/v1/auth/verify", request.url), {
      headers: { authorization: "Bearer lqt_nope" },
    });
    // The panicking call never answers: its promise is left behind after a moment.
    const outcome = await Promise.race([
      super.fetch(malformed).then(() => "answered", (e) => "threw: " + e),
      new Promise((resolve) => setTimeout(() => resolve("no answer"), 500)),
    ]);
    globalThis.Response = Original;
    return new Original(JSON.stringify({ outcome, critical: state().criticalError }));
  }
}`;

let worker;
const key = "lqt_" + randomBytes(32).toString("hex");

before(async () => {
  worker = await startWorker({
    extra: {
      script: WRAPPER,
      scriptPath: path.join(ROOT, "build/recovery-wrapper.mjs"),
      modulesRoot: path.join(ROOT, "build"),
      // Imported from the wrapper, worker-build's index.js is an ES module, not CommonJS.
      modulesRules: [
        { type: "ESModule", include: ["**/*.js"] },
        { type: "CompiledWasm", include: ["**/*.wasm"] },
      ],
    },
  });
  const hash = createHash("sha256").update(key).digest("hex");
  const record = {
    id: "key_" + randomBytes(12).toString("hex"), hash, name: "recovery", project_id: "web-app",
    prefix: key.slice(0, 12), created_at: Date.now(), grace_expires_at: null, revoked_at: null,
    rotated_from: null, rotated_to: null,
  };
  await worker.kv.put(`key/${hash}`, JSON.stringify(record));
});
after(() => worker?.dispose());

/** How often worker-build's entry has started a fresh instance after a critical error. */
const reinitialized = () => worker.logs.join("").split("Reinitializing Wasm application").length - 1;

const instance = async () => Number(await (await fetch(`${worker.url}/__test/instance`)).text());

/** Makes one request panic; returns what became of it. */
async function panic() {
  const seen = await (await fetch(`${worker.url}/__test/panic`)).json();
  assert.notEqual(seen.outcome, "answered", "the panicking request must not answer normally");
  assert.equal(seen.critical, true, "the panic hook flags the isolate as critical");
  return seen;
}

/** An admin write (a commit through the Durable Object), then the new key verified. */
async function issueAndVerify(project) {
  const made = await call(worker.url, "POST", "/admin/v1/projects", { body: { id: project, name: project } });
  assert.equal(made.status, 201, made.text);
  const created = await call(worker.url, "POST", `/admin/v1/projects/${project}/keys`, { body: { name: "k" } });
  assert.equal(created.status, 201, created.text);
  const verified = await call(worker.url, "GET", "/v1/auth/verify", { token: created.json.key });
  assert.equal(verified.status, 200, verified.text);
  assert.equal(verified.json.project_id, project);
}

test("after a panic the next request runs on a fresh instance and answers as before", async () => {
  assert.equal((await call(worker.url, "GET", "/v1/auth/verify", { token: key })).status, 200);
  const first = await instance();
  assert.ok(first >= 1, `the worker crate counts instances from 1, got ${first}`);

  await panic();
  assert.ok(worker.logs.join("").includes("Rust panic"), "the panic hook logged the panic");
  const afterPanic = await call(worker.url, "GET", "/v1/auth/verify", { token: key });
  assert.equal(afterPanic.status, 200, afterPanic.text);
  assert.equal(afterPanic.json.status, "active");
  const second = await instance();
  assert.ok(second > first, `a new Wasm instance was started (${first} → ${second})`);
  assert.equal(reinitialized(), 1, "worker-build's entry started it");

  const malformed = await call(worker.url, "GET", "/v1/auth/verify", { token: "lqt_nope" });
  assert.equal(malformed.status, 401);
  assert.equal(malformed.json.error.code, "malformed_key");
  assert.equal(malformed.headers.get("cache-control"), "no-store");
  assert.equal(await instance(), second, "no further restart without a new panic");
});

test("the change log's Durable Object works on across a recovery", async () => {
  await issueAndVerify("before");
  const [first, restarts] = [await instance(), reinitialized()];
  await panic();
  await issueAndVerify("after");
  assert.ok((await instance()) > first, "the admin writes ran on a fresh instance");
  assert.equal(reinitialized(), restarts + 1, "worker-build's entry started it");
});
