#!/usr/bin/env bash
# The `[build]` command of wrangler.toml: builds build/ (worker shim + optimised wasm) with worker-build.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tools.sh
exec "$WORKER_BUILD" --release
