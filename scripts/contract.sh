#!/usr/bin/env bash
# Contract fuzzing: schemathesis against the built worker's /openapi.json in workerd
# (tests/contract/). Installs the pinned schemathesis into the git-ignored .tools/ once, builds the
# worker if build/ is missing. `bash scripts/contract.sh [max-examples]` (default 40 per
# operation and phase; a longer run: `bash scripts/contract.sh 500`).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="4.32.5"
VENV=".tools/schemathesis-$SCHEMATHESIS_VERSION"
if [ ! -x "$VENV/bin/st" ]; then
  echo "[contract] installing schemathesis $SCHEMATHESIS_VERSION into $VENV (first run only)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi
[ -f build/index.js ] || bash scripts/build.sh >/dev/null
export SCHEMATHESIS_BIN="$PWD/$VENV/bin/st"
export CONTRACT_MAX_EXAMPLES="${1:-${CONTRACT_MAX_EXAMPLES:-40}}"
exec node --test tests/contract/*.test.mjs
