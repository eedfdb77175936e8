#!/usr/bin/env bash
# The `[build]` command of wrangler.toml: worker-build as it ships, on crates/worker, with the
# pinned tools of scripts/tools.sh (wasm-bindgen, wasm-opt and esbuild through its *_BIN
# overrides). Output, at the repository root: build/index.js (worker-build's own JS entry,
# with its panic recovery, bundled with wasm-bindgen's glue) and build/index_bg.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tools.sh
cd crates/worker
"$WORKER_BUILD" --release --out-dir ../../build
