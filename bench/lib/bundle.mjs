// bench/lib/bundle.mjs: the deployable bundle. Runs `wrangler deploy --dry-run --outdir <tmp>`
// (which runs wrangler.toml's [build] command first) and measures every file it wrote, raw and gzip.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** Resolves to { files: [{ name, raw, gzip }], raw, gzip, wranglerLine, wranglerGzip (bytes) }. */
export function measureBundle() {
  const out = mkdtempSync(join(tmpdir(), "lqt-bundle-"));
  let log;
  try {
    log = execFileSync(join(ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", out], {
      cwd: ROOT, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20,
    });
    const files = readdirSync(out, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile() && !d.name.endsWith(".map") && d.name !== "README.md")
      .map((d) => {
        const buf = readFileSync(join(d.parentPath, d.name));
        return { name: d.name.replace(/^[0-9a-f]{40}-/, ""), raw: buf.length, gzip: gzipSync(buf, { level: 9 }).length };
      });
    const wranglerLine = (log.match(/Total Upload:.*$/m) || [""])[0].trim();
    const gzipKiB = wranglerLine.match(/gzip:\s*([\d.]+)\s*KiB/);
    return {
      files, wranglerLine,
      raw: files.reduce((s, f) => s + f.raw, 0),
      gzip: files.reduce((s, f) => s + f.gzip, 0),
      wranglerGzip: gzipKiB ? Number(gzipKiB[1]) * 1024 : null,
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
