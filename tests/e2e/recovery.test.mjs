// scripts/shim.js after a Rust panic: the worker crate's panic hook flags the isolate as
// critical, and the next request must run on a fresh Wasm instance, answering as before; the
// KeyChanges Durable Object (every admin write commits through it) must carry on too.
// A test wrapper around the built shim raises that flag (the panic hook's half: no request
// can make this worker panic) and reads the instance counter the worker crate keeps.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import { startWorker, call, ROOT } from "../support/worker.mjs";

const WRAPPER = `
import worker, { KeyChanges } from "./shim.mjs";
export { KeyChanges };
const state = () => globalThis.__worker_init_state;
export default {
  fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/__test/panic") {
      state().criticalError = true;
      return new Response("flagged");
    }
    if (pathname === "/__test/instance") return new Response(String(state().instanceId));
    return worker.fetch(request, env);
  },
};`;

let worker;
const key = "lqt_" + randomBytes(32).toString("hex");

before(async () => {
  worker = await startWorker({
    extra: {
      script: WRAPPER,
      scriptPath: path.join(ROOT, "build/worker/recovery-wrapper.mjs"),
      modulesRoot: path.join(ROOT, "build"),
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

const instance = async () => Number(await (await fetch(`${worker.url}/__test/instance`)).text());

const panic = async () => assert.equal(await (await fetch(`${worker.url}/__test/panic`)).text(), "flagged");

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
  const afterPanic = await call(worker.url, "GET", "/v1/auth/verify", { token: key });
  assert.equal(afterPanic.status, 200);
  assert.equal(afterPanic.json.status, "active");
  assert.equal(await instance(), first + 1, "a new Wasm instance was started");

  const malformed = await call(worker.url, "GET", "/v1/auth/verify", { token: "lqt_nope" });
  assert.equal(malformed.status, 401);
  assert.equal(malformed.json.error.code, "malformed_key");
  assert.equal(await instance(), first + 1, "no further restart without a new panic");
  assert.ok(worker.logs.join("").includes("starting a fresh Wasm instance"));
});

test("the change log's Durable Object works on across a recovery", async () => {
  await issueAndVerify("before");
  const first = await instance();
  await panic();
  await issueAndVerify("after");
  assert.equal(await instance(), first + 1);
});
