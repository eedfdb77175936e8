#!/usr/bin/env bash
# Load soak (tests/soak/): the built worker in workerd on 127.0.0.1 under mixed ingest traffic
# with admin writes interleaved, for a bounded time. `bash scripts/soak.sh [seconds]` (default
# 60; the test command runs 10). Builds the worker if build/ is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/index.js ] || bash scripts/build.sh >/dev/null
export SOAK_SECONDS="${1:-${SOAK_SECONDS:-60}}"
exec node --test tests/soak/*.test.mjs
