#!/usr/bin/env bash
# `npm test`: the whole suite. Lints (the workspace on the host, the shell also on wasm32, and
# fuzz/), host unit tests of the workspace, the wasm build, then end-to-end and browser tests
# against the built worker in workerd, then short bounded runs of the fuzzers, the contract
# fuzzer and the load soak (longer runs: see docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tools.sh

if ! command -v chromium >/dev/null; then
  echo "[test] installing Debian's chromium for the browser tests" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi

cargo fmt --all --check
cargo fmt --check --manifest-path fuzz/Cargo.toml
cargo clippy --quiet --workspace --all-targets -- -D warnings
cargo clippy --quiet -p lumiqtrace-worker --target wasm32-unknown-unknown -- -D warnings
cargo test --quiet --workspace
bash scripts/build.sh >/dev/null
node --test --test-concurrency=1 tests/e2e/*.test.mjs
bash scripts/fuzz.sh 15
bash scripts/contract.sh
bash scripts/soak.sh 10
