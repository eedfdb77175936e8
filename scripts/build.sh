#!/usr/bin/env bash
# The `[build]` command of wrangler.toml: builds build/ (worker shim + optimised wasm) with
# worker-build, then strips the wasm names section that worker-build keeps on purpose
# (function names for panic traces: about 90 KB raw, 24 KB gzip, of a ~300 KB module).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tools.sh
"$WORKER_BUILD" --release
features=(mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)
"$WASM_OPT_BIN" build/index_bg.wasm -o build/index_bg.wasm --strip-debug --strip-producers \
  "${features[@]/#/--enable-}"
