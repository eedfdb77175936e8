// bench/lib/prices.mjs: Cloudflare's published prices (Workers Paid plan, usage beyond the
// included amounts) and what one million verifies cost at them. Read on 2026-11-30 from:
// - Workers Standard: https://developers.cloudflare.com/workers/platform/pricing/
//   "+$0.30 per additional million" requests; "+$0.02 per additional million CPU milliseconds".
// - Workers KV: https://developers.cloudflare.com/kv/platform/pricing/
//   read requests "+ $0.50/million"; write, delete and list requests "+ $5.00/million" each.
//   Reads of missing keys are billed too. A bulk get is counted here as one read per key.
// - Durable Objects: https://developers.cloudflare.com/durable-objects/platform/pricing/
//   requests "+ $0.15/million" (HTTP requests, RPC sessions, WebSocket messages, alarm
//   invocations); duration "+ $12.50/million GB-s" of wall time while an object is active (an
//   idle object that can hibernate is not billed), at 128 MB per object; SQLite-backed storage
//   "Rows written" "+$1.00 / million rows".
// The included amounts (10 million requests a month, ...) are left out: this is the marginal
// cost of a verify at scale. Update the figures and the date together.
export const PRICES = {
  date: "2026-11-30",
  requestPerM: 0.3,
  cpuMsPerM: 0.02,
  kvReadPerM: 0.5,
  kvWritePerM: 5,
  kvDeletePerM: 5,
  kvListPerM: 5,
  doRequestPerM: 0.15,
  doGbSecondPerM: 12.5,
  doGb: 0.128,
  doRowWritePerM: 1,
};

/**
 * USD per million verifies, by part, from per-request averages: `cpuUs` (µs of CPU), `kv` ({ reads,
 * writes, deletes, lists } per request), `dos` ({ requests, activeMs } per request).
 */
export function costPerMillion({ cpuUs, kv, dos }) {
  const p = PRICES;
  const parts = {
    requests: p.requestPerM,
    cpu: (cpuUs / 1000) * p.cpuMsPerM,
    kv: kv.reads * p.kvReadPerM + kv.writes * p.kvWritePerM + kv.deletes * p.kvDeletePerM + kv.lists * p.kvListPerM,
    durableObjects: dos.requests * p.doRequestPerM + (dos.activeMs / 1000) * p.doGb * p.doGbSecondPerM
      + (dos.storageRows ?? 0) * p.doRowWritePerM,
  };
  return { ...parts, total: parts.requests + parts.cpu + parts.kv + parts.durableObjects };
}
