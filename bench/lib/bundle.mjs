// bench/lib/bundle.mjs: the deployable bundle — runs `wrangler deploy --dry-run --outdir <tmp>`
// (which runs the [build] command) and measures every file it wrote, raw and gzip.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, rmSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { ROOT } from "./workers.mjs";

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** Resolves to { files: [{ name, raw, gzip }], raw, gzip, wranglerLine, startupMs|null }. */
export function measureBundle() {
  const out = mkdtempSync(join(tmpdir(), "lqt-bundle-"));
  const log = execFileSync("npx", ["--no-install", "wrangler", "deploy", "--dry-run", "--outdir", out], {
    cwd: ROOT, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false", FORCE_COLOR: "0" },
    stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20,
  });
  const files = walk(out)
    .filter((p) => !p.endsWith(".map") && !p.endsWith("README.md"))
    .map((p) => {
      const buf = readFileSync(p);
      return { name: relative(out, p).replace(/^[0-9a-f]{40}-/, ""), raw: buf.length, gzip: gzipSync(buf, { level: 9 }).length };
    });
  rmSync(out, { recursive: true, force: true });
  const wranglerLine = (log.match(/Total Upload:.*$/m) || [""])[0].trim();
  const startup = log.match(/Startup Time:\s*([\d.]+)\s*ms/i);
  return {
    files,
    raw: files.reduce((s, f) => s + f.raw, 0),
    gzip: files.reduce((s, f) => s + f.gzip, 0),
    wranglerLine,
    startupMs: startup ? Number(startup[1]) : null,
  };
}
