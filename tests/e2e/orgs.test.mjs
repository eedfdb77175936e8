// Organizations end to end through workerd: two organizations with an admin token each, neither
// able to reach the other's projects or keys (404 on every route), each able to do all of it in
// its own, the operator in both; a revoked admin token refused at once (401); KV as the version
// before organizations wrote it, read without loss under `default`. Every answer is checked
// against openapi.json.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, call } from "../support/worker.mjs";
import { assertDocumented } from "../support/openapi.mjs";

let worker;

/** An admin call (with `token`: the operator's by default) whose answer must match openapi.json. */
async function api(method, route, options = {}) {
  const r = await call(worker.url, method, route, options);
  assertDocumented(method, route, r.status, r.json);
  return r;
}

before(async () => {
  worker = await startWorker();
});
after(() => worker?.dispose());

/** An organization and an admin token for it: the token's plaintext and view. */
async function orgWithToken(id) {
  assert.equal((await api("POST", "/admin/v1/orgs", { body: { id, name: `Org ${id}` } })).status, 201);
  const made = await api("POST", `/admin/v1/orgs/${id}/admin-tokens`, { body: { name: `${id}-ci` } });
  assert.equal(made.status, 201);
  assert.match(made.json.token, /^lqta_[0-9a-f]{64}$/);
  assert.equal(made.json.admin_token.prefix, made.json.token.slice(0, 13));
  return made.json;
}

/** A project and a key in it, with `token`: the key's id. */
async function projectAndKey(token, project) {
  assert.equal((await api("POST", "/admin/v1/projects", { token, body: { id: project, name: project } })).status, 201);
  const key = await api("POST", `/admin/v1/projects/${project}/keys`, { token, body: { name: "k" } });
  assert.equal(key.status, 201);
  return key.json.api_key.id;
}

/** Every route on `project` and its key `key`, with `token`: the statuses in order. */
async function everyRoute(token, org, project, key) {
  const routes = [
    ["GET", `/admin/v1/orgs/${org}`],
    ["GET", `/admin/v1/keys?project_id=${project}`],
    ["GET", `/admin/v1/keys/${key}`],
    ["POST", `/admin/v1/projects/${project}/keys`, { name: "x" }],
    ["GET", `/admin/v1/audit?project_id=${project}`],
    ["GET", `/admin/v1/audit?org_id=${org}`],
    ["POST", `/admin/v1/keys/${key}/rotate`],
    ["POST", `/admin/v1/keys/${key}/revoke`],
  ];
  const out = [];
  for (const [method, route, body] of routes) out.push((await api(method, route, { token, body })).status);
  return out;
}

test("two organizations: each admin token reaches only its own, the operator both, a revoked token at once nothing", async () => {
  const acme = await orgWithToken("acme");
  const globex = await orgWithToken("globex");
  const acmeKey = await projectAndKey(acme.token, "acme-web");
  const globexKey = await projectAndKey(globex.token, "globex-web");

  const ids = async (token, route, field) => (await api("GET", route, { token })).json[field].map((x) => x.id);
  assert.deepEqual(await ids(acme.token, "/admin/v1/projects", "projects"), ["acme-web"]);
  assert.deepEqual(await ids(globex.token, "/admin/v1/orgs", "orgs"), ["globex"]);
  const keys = (await api("GET", "/admin/v1/keys", { token: acme.token })).json.keys;
  assert.deepEqual(keys.map((k) => k.project_id), ["acme-web"]);

  const none = Array(8).fill(404);
  assert.deepEqual(await everyRoute(acme.token, "globex", "globex-web", globexKey), none);
  assert.deepEqual(await everyRoute(globex.token, "acme", "acme-web", acmeKey), none);
  for (const [method, route, body] of [
    ["POST", "/admin/v1/orgs", { id: "x", name: "X" }],
    ["POST", "/admin/v1/orgs/acme/admin-tokens", { name: "more" }],
    ["GET", "/admin/v1/orgs/acme/admin-tokens"],
    ["POST", `/admin/v1/admin-tokens/${globex.admin_token.id}/revoke`],
  ]) {
    assert.equal((await api(method, route, { token: acme.token, body })).status, 404, `${method} ${route}`);
  }

  const all = [200, 200, 200, 201, 200, 200, 201, 200];
  assert.deepEqual(await everyRoute(acme.token, "acme", "acme-web", acmeKey), all);
  assert.deepEqual(await everyRoute(globex.token, "globex", "globex-web", globexKey), all);
  const acmeOp = await projectAndKeyIn("acme-ops", "acme");
  const globexOp = await projectAndKeyIn("globex-ops", "globex");
  assert.deepEqual(await everyRoute(undefined, "acme", "acme-ops", acmeOp), all);
  assert.deepEqual(await everyRoute(undefined, "globex", "globex-ops", globexOp), all);

  const events = (await api("GET", "/admin/v1/audit?project_id=acme-web")).json.events;
  const created = events.find((e) => e.action === "key.created");
  assert.deepEqual([created.actor, created.actor_token_id, created.actor_token_name], ["admin_token", acme.admin_token.id, "acme-ci"]);

  // Revoked: refused at once, on every route.
  const revoked = await api("POST", `/admin/v1/admin-tokens/${acme.admin_token.id}/revoke`);
  assert.equal(revoked.json.status, "revoked");
  const refused = await api("GET", "/admin/v1/projects", { token: acme.token });
  assert.equal(refused.status, 401);
  assert.equal(refused.json.error.code, "admin_unauthorized");
  assert.equal((await api("GET", "/admin/v1/projects", { token: globex.token })).status, 200, "the other token still works");
  const listed = (await api("GET", "/admin/v1/orgs/acme/admin-tokens")).json.admin_tokens;
  assert.deepEqual(listed.map((t) => [t.name, t.status]), [["acme-ci", "revoked"]]);
  // An admin token is never an ingest key.
  assert.equal((await api("GET", "/v1/auth/verify", { token: globex.token })).status, 401);
});

async function projectAndKeyIn(project, org) {
  const made = await api("POST", "/admin/v1/projects", { body: { id: project, name: project, org_id: org } });
  assert.equal(made.status, 201);
  assert.equal(made.json.org_id, org);
  return (await api("POST", `/admin/v1/projects/${project}/keys`, { body: { name: "k" } })).json.api_key.id;
}

test("KV written before organizations is read without loss, its projects under default", async () => {
  // Exactly what the version before organizations writes for a project: no org_id, no org record.
  const old = JSON.stringify({ id: "legacy", name: "Legacy", created_at: 1700000000000 });
  await worker.kv.put("project/legacy", old, { metadata: JSON.parse(old) });
  const key = await api("POST", "/admin/v1/projects/legacy/keys", { body: { name: "still-here" } });
  assert.equal(key.status, 201);
  const projects = (await api("GET", "/admin/v1/projects?org_id=default")).json.projects;
  const legacy = projects.find((p) => p.id === "legacy");
  assert.deepEqual(legacy, { id: "legacy", name: "Legacy", created_at: "2023-11-14T22:13:20.000Z", org_id: "default", rotation_period_days: null });
  const org = await api("GET", "/admin/v1/orgs/default");
  assert.equal(org.status, 200);
  assert.equal(org.json.created_at <= legacy.created_at, true);
  assert.equal((await api("GET", "/v1/auth/verify", { token: key.json.key })).json.project_id, "legacy");
});

test("creating an organization and creating and revoking its admin tokens are audited; each org admin sees its own only", async () => {
  const initech = await orgWithToken("initech");
  const umbrella = await orgWithToken("umbrella");
  const spare = await api("POST", "/admin/v1/orgs/initech/admin-tokens", { body: { name: "initech-spare" } });
  assert.equal((await api("POST", `/admin/v1/admin-tokens/${spare.json.admin_token.id}/revoke`)).status, 200);
  // Revoking again changes nothing, and is not audited again.
  assert.equal((await api("POST", `/admin/v1/admin-tokens/${spare.json.admin_token.id}/revoke`)).status, 200);

  const orgEvents = (events) => events.filter((e) => e.action.startsWith("org.") || e.action.startsWith("admin_token."));
  const summary = (events) =>
    orgEvents(events)
      .map((e) => [e.action, e.actor, e.org_id, e.admin_token_id ?? null, "project_id" in e])
      .sort();
  const asOperator = (await api("GET", "/admin/v1/audit?org_id=initech")).json.events;
  assert.deepEqual(summary(asOperator), [
    ["admin_token.created", "operator", "initech", initech.admin_token.id, false],
    ["admin_token.created", "operator", "initech", spare.json.admin_token.id, false],
    ["admin_token.revoked", "operator", "initech", spare.json.admin_token.id, false],
    ["org.created", "operator", "initech", null, false],
  ].sort());
  const asInitech = (await api("GET", "/admin/v1/audit", { token: initech.token })).json.events;
  assert.deepEqual(summary(asInitech), summary(asOperator), "its own organization's events");
  assert.ok(asInitech.every((e) => e.org_id === undefined || e.org_id === "initech"), JSON.stringify(asInitech));
  const asUmbrella = (await api("GET", "/admin/v1/audit", { token: umbrella.token })).json.events;
  assert.deepEqual(summary(asUmbrella).map((e) => e[2]), ["umbrella", "umbrella"]);
  assert.equal((await api("GET", "/admin/v1/audit?org_id=initech", { token: umbrella.token })).status, 404);
  // A project filter shows that project's events only: none of these.
  assert.equal((await api("POST", "/admin/v1/projects", { token: initech.token, body: { id: "initech-web", name: "w" } })).status, 201);
  const ofProject = (await api("GET", "/admin/v1/audit?project_id=initech-web")).json.events;
  assert.deepEqual(ofProject.map((e) => e.action), ["project.created"]);
});
