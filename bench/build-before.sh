#!/usr/bin/env bash
# bench/build-before.sh [REV]: builds the worker as of REV into bench/out/before/build, for the
# "before" rows of the far-log case (bench/lib/far-log.mjs). REV defaults to c425a6e, the last
# commit with the awaited refresh (every isolate asks the log itself, and the request that finds
# its overlay due waits for the answer). Shares this checkout's target/ (only the workspace
# crates recompile), tools and npm packages; refuses a REV whose package-lock.json differs
# (that would need another npm install).
set -euo pipefail
cd "$(dirname "$0")/.."
REV="${1:-c425a6e}"
OUT=bench/out/before
if ! git diff --quiet "$REV" -- package-lock.json; then
  echo "build-before: $REV has another package-lock.json; build it in a checkout of its own" >&2
  exit 1
fi
rm -rf "$OUT"
mkdir -p "$OUT"
git archive "$REV" | tar -x -C "$OUT"
ln -s "$PWD/.tools" "$OUT/.tools"
ln -s "$PWD/node_modules" "$OUT/node_modules"
CARGO_TARGET_DIR="$PWD/target" bash "$OUT/scripts/build.sh"
echo "build-before: $OUT/build/index.js is $REV"
