#!/usr/bin/env node
// bench/profile.mjs: where a worker's CPU goes per request. Starts one benchmarked worker as
// `npm run bench` does (bench/lib/workers.mjs) with workerd's inspector on 127.0.0.1, loads
// `GET /v1/auth/verify` with wrk (pinned to CPUs the same way, bench/lib/load.mjs), samples the
// isolate with V8's CPU profiler, and prints self time per request by function (JavaScript, wasm
// and runtime builtins alike). Writes bench/out/<worker>-<case>.cpuprofile (open it in Chrome
// DevTools). The profile to read when a target of bench/RESULTS.md is missed.
//
//   npm exec -- node bench/profile.mjs [rust|js|trivial] [valid|malformed|unknown] [seconds]
//
// Build first (`bash scripts/build.sh`).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { bearer, CASES, ROOT, startWorker, WORKERS } from "./lib/workers.mjs";
import { ensureWrk, runWrk } from "./lib/load.mjs";

const [name = "rust", kase = "valid", seconds = "5"] = process.argv.slice(2);
if (!WORKERS[name]) throw new Error(`worker must be one of ${Object.keys(WORKERS).join(", ")}`);
if (!CASES[kase]) throw new Error(`case must be one of ${Object.keys(CASES).join(", ")}`);
const INSPECTOR = 9230 + Math.floor(Math.random() * 500);

ensureWrk();
const w = await startWorker(name, { inspectorPort: INSPECTOR });
const report = [];
try {
  const target = `${w.url}/v1/auth/verify`;
  const auth = bearer(w, kase);
  await runWrk(target, auth, { seconds: 2, connections: 8 }); // warm-up

  const [page] = await (await fetch(`http://127.0.0.1:${INSPECTOR}/json`)).json();
  const ws = new WebSocket(page.webSocketDebuggerUrl);
  await new Promise((ok, fail) => ws.once("open", ok).once("error", fail));
  let next = 0;
  const waiting = new Map();
  ws.on("message", (m) => {
    const msg = JSON.parse(m);
    waiting.get(msg.id)?.(msg.result);
    waiting.delete(msg.id);
  });
  const send = (method, params = {}) =>
    new Promise((ok) => {
      waiting.set(++next, ok);
      ws.send(JSON.stringify({ id: next, method, params }));
    });

  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 50 });
  await send("Profiler.start");
  const load = await runWrk(target, auth, { seconds: Number(seconds), connections: 8 });
  const { profile } = await send("Profiler.stop");
  ws.close();

  mkdirSync(join(ROOT, "bench/out"), { recursive: true });
  const file = join(ROOT, "bench/out", `${name}-${kase}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));

  const byNode = new Map();
  profile.samples.forEach((id, i) => byNode.set(id, (byNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const self = new Map();
  for (const n of profile.nodes) {
    const f = n.callFrame;
    const label = `${f.functionName || "(anonymous)"} ${f.url ? `${f.url.split("/").pop()}:${f.lineNumber + 1}` : ""}`.trim();
    self.set(label, (self.get(label) ?? 0) + (byNode.get(n.id) ?? 0));
  }
  const perReq = (us) => (us / load.requests).toFixed(2).padStart(9);
  const busy = [...self].filter(([k]) => k !== "(idle)").reduce((a, [, v]) => a + v, 0);
  report.push(`${name}/${kase}: ${load.requests} requests in ${seconds} s; isolate busy ${perReq(busy).trim()} µs/request`);
  report.push(`self time per request (µs), top 30 — full profile: ${file}`);
  for (const [label, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) report.push(`${perReq(us)} ${label}`);
} finally {
  await w.dispose(); // before any output: a reader that stops early (| head) must not orphan workerd
}
process.stdout.on("error", () => {});
console.log(report.join("\n"));
