#!/usr/bin/env bash
# `npm start`: serves the worker locally with `wrangler dev` (local KV persisted in
# .wrangler/state), installing the build tools first if this machine lacks them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f .dev.vars ]; then
  umask 077
  printf 'ADMIN_TOKEN=%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" > .dev.vars
  echo "Created $PWD/.dev.vars with a random ADMIN_TOKEN (git-ignored). Use it as the dashboard's admin token."
fi

# The worker refuses an ADMIN_TOKEN shorter than 32 characters on every admin route: say so now.
# .dev.vars is read with Node's own dotenv parser (util.parseEnv, Node 20.12 and later).
node - <<'JS'
const { parseEnv } = require("node:util");
const text = require("node:fs").readFileSync(".dev.vars", "utf8");
if (!parseEnv) {
  console.warn("Node before 20.12 cannot read .dev.vars here: ADMIN_TOKEN's length is not checked.");
} else if ([...(parseEnv(text).ADMIN_TOKEN ?? "")].length < 32) {
  console.error(`ADMIN_TOKEN in ${process.cwd()}/.dev.vars is missing or shorter than 32 characters, so the
admin API and the dashboard would refuse it. Make a new one with \`openssl rand -hex 32\` and put it
in .dev.vars as ADMIN_TOKEN=<it>, or delete .dev.vars and run \`npm start\` again for a random one.`);
  process.exit(1);
}
JS

. scripts/tools.sh
export WRANGLER_SEND_METRICS=false
exec node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to .wrangler/state "$@"
