// Contract fuzzing: schemathesis (pinned, from PyPI, in the git-ignored .tools/) against the
// running worker's /openapi.json in workerd, admin routes with the admin token, ingest routes
// with a real key, real project and key ids mixed into the generated ones. Bounded by
// CONTRACT_MAX_EXAMPLES (per operation and phase) and CONTRACT_DEADLINE_SECONDS. Run it with
// `bash scripts/contract.sh`, which installs schemathesis first.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startWorker, call, signinLimiter, ADMIN_TOKEN, ROOT } from "../support/worker.mjs";

const ST = process.env.SCHEMATHESIS_BIN ?? path.join(ROOT, ".tools/schemathesis-4.32.5/bin/st");
const MAX_EXAMPLES = Number(process.env.CONTRACT_MAX_EXAMPLES ?? 40);
const DEADLINE_MS = Number(process.env.CONTRACT_DEADLINE_SECONDS ?? 420) * 1000;
// Every check schemathesis has.
const CHECKS = [
  "not_a_server_error",
  "unsupported_method",
  "status_code_conformance",
  "content_type_conformance",
  "response_schema_conformance",
  "response_headers_conformance",
  "positive_data_acceptance",
  "negative_data_rejection",
  "missing_required_header",
  "ignored_auth",
  "use_after_free",
  "ensure_resource_availability",
];

const work = mkdtempSync(path.join(tmpdir(), "lqt-contract-"));
let worker;

before(async () => {
  // schemathesis's ignored_auth check sends wrong admin tokens: with the deployed budget its
  // own client would soon be throttled (429) for the right token too.
  worker = await startWorker({ extra: { ratelimits: signinLimiter(1_000_000) } });
});
after(async () => {
  await worker?.dispose();
  rmSync(work, { recursive: true, force: true });
});

async function admin(method, route, body) {
  const r = await call(worker.url, method, route, { body });
  assert.ok(r.status < 300, `${method} ${route}: ${r.status} ${r.text}`);
  return r.json;
}

/** schemathesis.toml for this run: bearer tokens per security scheme, real ids in dictionaries. */
function config({ ingestKey, keyIds, projectIds }) {
  const list = (values) => JSON.stringify(values);
  return `
[auth.openapi]
apiKey = { bearer = "${ingestKey}" }
adminToken = { bearer = "${ADMIN_TOKEN}" }

[generation]
database = ":memory:"

# schemathesis's default rejection statuses, plus 413: a leak report over 1,000 entries is
# documented as 413 (nothing revoked), whatever else is wrong with it.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

[dictionaries.key_ids]
values = ${list(keyIds)}

[dictionaries.project_ids]
values = ${list(projectIds)}

[parameters]
"path.key_id" = { dictionary = "key_ids", probability = 0.5 }
"path.project_id" = { dictionary = "project_ids", probability = 0.5 }
"query.project_id" = { dictionary = "project_ids", probability = 0.5 }
`;
}

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(ST, args, {
      cwd: work,
      env: { ...process.env, NO_COLOR: "1", SCHEMATHESIS_TELEMETRY: "false" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), DEADLINE_MS);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    });
  });
}

test("schemathesis: no 5xx, every response as openapi.json documents it", async () => {
  assert.ok(existsSync(ST), `schemathesis is not installed: run bash scripts/contract.sh`);
  await admin("POST", "/admin/v1/projects", { id: "contract", name: "Contract" });
  await admin("POST", "/admin/v1/projects", { id: "other", name: "Other" });
  const ingest = await admin("POST", "/admin/v1/projects/contract/keys", { name: "ingest" });
  const keyIds = [];
  for (const project of ["contract", "contract", "other"]) {
    const created = await admin("POST", `/admin/v1/projects/${project}/keys`, { name: "fuzzed" });
    keyIds.push(created.api_key.id);
  }
  const toml = path.join(work, "schemathesis.toml");
  writeFileSync(
    toml,
    config({
      ingestKey: ingest.key,
      // Real ids, and ids longer than a KV key name may be (512 bytes): bad input, never a 5xx.
      keyIds: [...keyIds, "key_" + "a".repeat(600)],
      projectIds: ["contract", "other", "p".repeat(600)],
    }),
  );
  const { code, signal, out } = await run([
    "--config-file", toml,
    "run", `${worker.url}/openapi.json`,
    "--checks", CHECKS.join(","),
    "--max-examples", String(MAX_EXAMPLES),
    // One thread. CPython 3.11 (the machines' python3) keeps ast.parse's recursion depth in
    // interpreter-wide state: two threads parsing at different stack depths crash it with
    // "SystemError: AST constructor recursion depth mismatch", which hypothesis's strategy
    // reprs did under --workers 2 (2 CI runs in about 7). 3.12 does not; one thread costs
    // about 20 s here.
    "--workers", "1",
    "--request-timeout", "10",
  ]);
  const generated = out.match(/(\d+) generated/)?.[1];
  const summary = out.slice(out.indexOf("SUMMARY")).split("\n").filter((l) => l.trim() && !/^=+/.test(l));
  console.log(`contract: schemathesis sent ${generated ?? "?"} generated requests\n${summary.join("\n")}`);
  assert.equal(signal, null, `schemathesis ran past ${DEADLINE_MS / 1000} s\n${out}`);
  assert.equal(code, 0, out);
  assert.ok(Number(generated) > 0, out);
  const crashes = worker.logs.join("").match(/panicked|RuntimeError|Uncaught/g);
  assert.equal(crashes, null, worker.logs.join(""));
});
