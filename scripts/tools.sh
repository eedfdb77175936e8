#!/usr/bin/env bash
# Installs (once) and exports the pinned build tools. Source it: `. scripts/tools.sh`.
# Slow installs go into .tools/ (git-ignored) so only the first run on a machine pays for them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
WORKER_BUILD_VERSION="0.8.7"   # keep equal to the `worker` version in crates/worker/Cargo.toml
# wasm-bindgen-cli must match the wasm-bindgen library in Cargo.lock exactly.
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"

log() { printf '[tools] %s\n' "$*" >&2; }

ensure_rust_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding rustup target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown >&2
  fi
}

# cargo_tool <crate> <version> <binary>: installs into .tools/<crate>-<version>/bin
cargo_tool() {
  local crate="$1" version="$2" bin="$3" dir="$TOOLS/$1-$2"
  if [ ! -x "$dir/bin/$bin" ]; then
    log "installing $crate $version into ${dir#"$ROOT"/} (first run only, several minutes)"
    cargo install --quiet "$crate" --version "=$version" --root "$dir" --target-dir "$TOOLS/cargo-target" >&2
  fi
  printf '%s\n' "$dir/bin/$bin"
}

ensure_node_modules() {
  # Reinstall when package-lock.json changed since the last install.
  local stamp="$ROOT/node_modules/.lumiqtrace-stamp"
  if [ ! -f "$stamp" ] || ! cmp -s "$ROOT/package-lock.json" "$stamp"; then
    log "installing npm packages (npm ci)"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2)
    cp "$ROOT/package-lock.json" "$stamp"
  fi
}

ensure_rust_target
ensure_node_modules
WORKER_BUILD="$(cargo_tool worker-build "$WORKER_BUILD_VERSION" worker-build)"
WASM_BINDGEN_BIN="$(cargo_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen)"
WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
export WORKER_BUILD WASM_BINDGEN_BIN WASM_OPT_BIN ESBUILD_BIN
