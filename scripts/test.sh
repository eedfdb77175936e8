#!/usr/bin/env bash
# `npm test`: the whole suite. Lints, host unit tests of the pure core, the wasm build, then
# end-to-end and browser tests against the built worker in workerd, then short bounded runs of
# the fuzzers, the contract fuzzer and the load soak (longer runs: see docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tools.sh

if ! command -v chromium >/dev/null; then
  echo "[test] installing Debian's chromium for the browser tests" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi

cargo fmt --check
cargo fmt --check --manifest-path fuzz/Cargo.toml
cargo clippy --quiet --all-targets -- -D warnings
cargo test --quiet
bash scripts/build.sh >/dev/null
node --test --test-concurrency=1 tests/e2e/*.test.mjs
bash scripts/fuzz.sh 15
bash scripts/contract.sh
bash scripts/soak.sh 10
