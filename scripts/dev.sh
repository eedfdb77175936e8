#!/usr/bin/env bash
# `npm start`: serves the worker locally with `wrangler dev` (local KV persisted in
# .wrangler/state), installing the build tools first if this machine lacks them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tools.sh

if [ ! -f .dev.vars ]; then
  umask 077
  printf 'ADMIN_TOKEN=%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" > .dev.vars
  echo "Created $PWD/.dev.vars with a random ADMIN_TOKEN (git-ignored). Use it as the dashboard's admin token."
fi

export WRANGLER_SEND_METRICS=false
exec node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to .wrangler/state "$@"
