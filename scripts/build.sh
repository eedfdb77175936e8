#!/usr/bin/env bash
# The `[build]` command of wrangler.toml: builds build/ with worker-build around our own entry
# (scripts/shim.js, see there why), then strips the wasm names section that worker-build keeps
# on purpose (function names for panic traces: about 90 KB raw, 24 KB gzip).
# Output: build/index.js → build/worker/shim.mjs (the bundled JS) + build/worker/index.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tools.sh
rm -rf build
CUSTOM_SHIM="$PWD/scripts/shim.js" "$WORKER_BUILD" --release
features=(mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)
"$WASM_OPT_BIN" build/worker/index.wasm -o build/worker/index.wasm --strip-debug --strip-producers \
  "${features[@]/#/--enable-}"
