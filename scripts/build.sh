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
# scripts/shim.js recovers from a trap through two things in wasm-bindgen's glue: fail the build,
# not the first trap in production, if an update of wasm-bindgen moves them.
for used in "__wbg___wbindgen_reinit_" "__wbg_get_imports()"; do
  grep -qF "$used" build/worker/shim.mjs || {
    echo "build: wasm-bindgen's glue no longer has $used; update scripts/shim.js" >&2
    exit 1
  }
done
