// bench/lib/report.mjs: turns the measured windows into per-path figures, the targets' verdicts
// and the Markdown report (bench/out/results.md; bench/RESULTS.md on a recorded run).
import { costPerMillion, PRICES } from "./prices.mjs";

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sum = (xs, f) => xs.reduce((a, x) => a + f(x), 0);
const fmt = (n, d = 0) => (n == null || Number.isNaN(n) ? "—" : Number(n).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }));
const usd = (n) => `$${n.toFixed(5)}`;
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

/**
 * windows[worker][case] = [{ requests, rps, cpuUs, kv, dos }] (one per run) → stats[worker][case]:
 * CPU µs per request (median of the runs), KV operations and DO requests per 1,000 requests
 * (summed over every run), req/s (median) and the cost per million verifies.
 */
export function summarise(windows) {
  const stats = {};
  for (const [w, byCase] of Object.entries(windows)) {
    stats[w] = {};
    for (const [c, runs] of Object.entries(byCase)) {
      const requests = sum(runs, (r) => r.requests);
      const perRequest = (group) => Object.fromEntries(Object.keys(runs[0][group]).map((k) => [k, sum(runs, (r) => r[group][k]) / requests]));
      const kv = perRequest("kv"), dos = perRequest("dos");
      const cpuUs = median(runs.map((r) => r.cpuUs));
      stats[w][c] = { cpuUs, kv, dos, requests, rps: median(runs.map((r) => r.rps)), runs: runs.length, cost: costPerMillion({ cpuUs, kv, dos }) };
    }
  }
  return stats;
}

/** The benchmark issue's targets, each { name, measured, pass } (pass null: not measured). */
export function targets(stats, bundle) {
  const [t, j, r] = [stats.trivial, stats.js, stats.rust];
  const list = [];
  if (r && j) {
    const ratio = j.valid.cpuUs / r.valid.cpuUs;
    list.push({ name: "hot valid key ≥ 3× cheaper in CPU than the JavaScript worker",
      measured: `${fmt(ratio, 2)}× (${fmt(r.valid.cpuUs)} vs ${fmt(j.valid.cpuUs)} µs/req)`, pass: ratio >= 3 });
  }
  if (r) {
    const reads = r.valid.kv.reads * 1000;
    list.push({ name: "hot valid key < 0.05 KV reads per 1,000 requests", measured: `${fmt(reads, 3)} per 1,000`, pass: reads < 0.05 });
  }
  if (r && t) {
    for (const c of Object.keys(r)) {
      const ratio = r[c].cpuUs / t[c].cpuUs;
      list.push({ name: `${c} key within 2× of the trivial worker's CPU`,
        measured: `${fmt(ratio, 2)}× (${fmt(r[c].cpuUs)} vs ${fmt(t[c].cpuUs)} µs/req)`, pass: ratio <= 2 });
    }
  }
  if (r) {
    const cost = r.valid.cost.total, over = cost / PRICES.requestPerM - 1;
    list.push({ name: "cost per million hot verifies within 5% of the request fee alone",
      measured: `${usd(cost)} vs ${usd(PRICES.requestPerM)} (+${fmt(over * 100, 2)}%)`, pass: over <= 0.05 });
  }
  const gzip = bundle?.wranglerGzip ?? bundle?.gzip;
  list.push({ name: "gzip bundle < 256 KiB", measured: gzip ? `${kib(gzip)} (${kib(bundle.raw)} raw)` : "not measured",
    pass: gzip ? gzip < 256 * 1024 : null });
  return list;
}

const verdict = (p) => (p === null ? "n/a" : p ? "pass" : "**MISS**");

export function markdown({ machine, settings, stats, coldStartMs, bundle, notes, labels }) {
  const workers = Object.keys(stats), cases = Object.keys(stats[workers[0]]);
  const L = [];
  L.push(`${settings.quick ? "**Quick run** (`npm run bench -- --quick`: one short run; indicative only)" : `Full run (\`npm run bench\`: ${settings.runs} runs)`}, ${machine.date}  `);
  L.push(`Machine: ${machine.cpu}, ${machine.nproc} CPUs, ${machine.memGiB} GiB RAM, ${machine.os}; load average as the load started: ${machine.load}  `);
  L.push(`Code: ${machine.commit}; ${machine.tools}`, "");

  L.push("## Targets", "", "| target | measured | result |", "| --- | --- | --- |");
  for (const t of targets(stats, bundle)) L.push(`| ${t.name} | ${t.measured} | ${verdict(t.pass)} |`);

  L.push("", "## Per request: `GET /v1/auth/verify`", "");
  L.push("| path | worker | workerd CPU µs/req | × trivial | KV reads /1,000 | DO requests /1,000 | of which KeyUsage | DO storage rows written /1,000 | $ per million | req/s |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const c of cases) for (const w of workers) {
    const s = stats[w]?.[c];
    if (!s) continue;
    const ratio = stats.trivial?.[c] ? s.cpuUs / stats.trivial[c].cpuUs : null;
    L.push(`| ${w === workers[0] ? labels[c] : ""} | ${labels[w]} | ${fmt(s.cpuUs)} | ${fmt(ratio, 2)} | ${fmt(s.kv.reads * 1000, 3)} | ${fmt(s.dos.requests * 1000, 3)} | ${fmt((s.dos.KeyUsageRequests ?? 0) * 1000, 3)} | ${fmt((s.dos.storageRows ?? 0) * 1000, 3)} | ${usd(s.cost.total)} | ${fmt(s.rps)} |`);
  }
  L.push("", "JavaScript worker ÷ ours, CPU per request: " + cases.map((c) => (stats.js?.[c] && stats.rust?.[c] ? `${labels[c]} ${fmt(stats.js[c].cpuUs / stats.rust[c].cpuUs, 2)}×` : null)).filter(Boolean).join(", ") + ".");

  L.push("", `## Cost per million verifies (USD, prices of ${PRICES.date}: bench/lib/prices.mjs)`, "");
  L.push("| path | worker | requests | CPU | KV | Durable Objects | total | over the request fee |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const c of cases) for (const w of workers) {
    const k = stats[w]?.[c]?.cost;
    if (k) L.push(`| ${labels[c]} | ${labels[w]} | ${usd(k.requests)} | ${usd(k.cpu)} | ${usd(k.kv)} | ${usd(k.durableObjects)} | ${usd(k.total)} | +${fmt((k.total / k.requests - 1) * 100, 2)}% |`);
  }

  if (Object.keys(coldStartMs).length) {
    L.push("", "## Cold start: a fresh workerd (Miniflare) until its first answer", "", "| worker | ms (median) | × trivial |", "| --- | ---: | ---: |");
    for (const w of workers) if (coldStartMs[w] != null) L.push(`| ${labels[w]} | ${fmt(coldStartMs[w])} | ${fmt(coldStartMs[w] / coldStartMs.trivial, 2)} |`);
  }

  if (bundle) {
    L.push("", "## Bundle (`wrangler deploy --dry-run --outdir`)", "", "| file | raw | gzip -9 |", "| --- | ---: | ---: |");
    for (const f of bundle.files) L.push(`| ${f.name} | ${fmt(f.raw)} B | ${fmt(f.gzip)} B |`);
    L.push(`| **total** | **${kib(bundle.raw)}** | **${kib(bundle.gzip)}** |`, "", `wrangler: \`${bundle.wranglerLine || "(no Total Upload line)"}\``);
  }

  L.push("", "## Method", "");
  L.push(`Each run starts a fresh workerd per worker through Miniflare (cold start: from \`new Miniflare\` to the answer to a first malformed key), gives it a key (ours issues one through its admin API), warms every path up for ${settings.warmupSeconds} s, then loads each path for ${settings.seconds} s with ${settings.wrk} (${settings.connections} connections${settings.pinning ? `, pinned to CPU ${settings.pinning.wrk}, every workerd to CPU ${settings.pinning.workers}` : ""}) straight to the worker's own socket, workers in rotating order. ${settings.runs} run(s).`);
  L.push("", "- **CPU per request**: the workerd process's CPU time (user + system, all threads) over the window ÷ requests answered; median of the runs. It includes Miniflare's local KV, which runs in the same workerd: a path that reads KV pays for the local KV's work here as well.");
  L.push("- **KV reads and DO requests**: counted, not estimated, inside the worker's isolate for the measured window (warm-up excluded): every call on the KV binding (a bulk get counts one read per key) and every invocation of a Durable Object class wrangler.toml binds, with its active wall time; summed over the runs ÷ requests. See bench/lib/workers.mjs. Requests still in flight when wrk stops are not in its count (at most one per connection), so a path that reads KV on every request shows a little over 1,000.");
  L.push("- **Key usage** (issue 19): the columns above count KeyUsage requests and storage rows only when a report happens to land in a window; the section at the end measures them in a window long enough to hold one.");
  L.push("- **Cost**: request fee + CPU + KV operations + DO requests, duration and storage rows written, at Cloudflare's published Workers Standard, KV and Durable Objects prices (bench/lib/prices.mjs cites each page), without the monthly included amounts. DO requests per verify fall as traffic per isolate rises (the change log is read at most every CHANGES_REFRESH_SECONDS per isolate); under this load that is the best case.");
  for (const n of notes) L.push("", `> ${n}`);
  return L.join("\n") + "\n";
}

