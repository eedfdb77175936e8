#!/usr/bin/env node
// bench/kept-reads.mjs: KV reads of one hot key over a window longer than a kept read's minute,
// so that it holds its renewal (or, in a build without renewals, its expiry). Starts our worker
// as `npm run bench` does (bench/lib/workers.mjs, counted KV calls), sends one warm-up request,
// then loads `GET /v1/auth/verify` with wrk, 8 connections, and prints the reads counted.
//
//   node bench/kept-reads.mjs [seconds (70)] [entry module of another build]
//
// Build first (`bash scripts/build.sh`); `bash bench/build-before.sh` builds an older commit.
import { bearer, startWorker } from "./lib/workers.mjs";
import { ensureWrk, runWrk } from "./lib/load.mjs";

const [seconds = "70", main] = process.argv.slice(2);
ensureWrk();
const w = await startWorker("rust", {}, main ? { main } : {});
try {
  const target = `${w.url}/v1/auth/verify`;
  const auth = bearer(w, "valid");
  await (await fetch(target, { headers: { authorization: auth } })).arrayBuffer();
  const before = (await w.counts()).kv.reads;
  const load = await runWrk(target, auth, { seconds: Number(seconds), connections: 8 });
  const reads = (await w.counts()).kv.reads - before;
  console.log(`${main ?? "build/"}: ${load.requests} verifies in ${seconds} s, ${reads} KV reads ` +
    `(${((1000 * reads) / load.requests).toFixed(4)} per 1,000), ${load.non2xx} not 2xx`);
} finally {
  await w.dispose();
}
