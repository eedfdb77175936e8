#!/usr/bin/env bash
# Fuzzing: runs each cargo-fuzz (libFuzzer) target of fuzz/ for a bounded time and reports its
# executions. `bash scripts/fuzz.sh [seconds-per-target] [target...]`: default 20 s each (the test
# command's short run); a longer run is e.g. `bash scripts/fuzz.sh 600`. cargo-fuzz is installed
# once into the git-ignored .tools/. libFuzzer's -Z flags need nightly features: this machine has
# one (stable) toolchain, so RUSTC_BOOTSTRAP=1 enables them. Fails on any crash, with its input.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${1:-20}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(key_parse bearer_header admin_body stored_record serde_decoders)
CARGO_FUZZ_VERSION="0.13.2"
CARGO_FUZZ="$PWD/.tools/cargo-fuzz-$CARGO_FUZZ_VERSION/bin/cargo-fuzz"
if [ ! -x "$CARGO_FUZZ" ]; then
  echo "[fuzz] installing cargo-fuzz $CARGO_FUZZ_VERSION into .tools/ (first run only)" >&2
  cargo install --quiet cargo-fuzz --version "=$CARGO_FUZZ_VERSION" \
    --root ".tools/cargo-fuzz-$CARGO_FUZZ_VERSION" --target-dir .tools/cargo-target >&2
fi
export RUSTC_BOOTSTRAP=1
# Options go before the target: whatever follows `--` is handed to libFuzzer itself.
fuzz() { local cmd="$1"; shift; "$CARGO_FUZZ" "$cmd" --fuzz-dir fuzz --debug-assertions "$@"; }

# Seed corpora (git-ignored; libFuzzer adds what it finds to them).
seed() { mkdir -p "fuzz/corpus/$1"; printf '%s' "$3" > "fuzz/corpus/$1/seed-$2"; }
KEY="lqt_$(printf '0123456789abcdef%.0s' 1 2 3 4)"
seed key_parse 1 "$KEY"
seed key_parse 2 "${KEY^^}"
seed key_parse 3 " $KEY"
seed bearer_header 1 "Bearer $KEY"
seed bearer_header 2 "bearer   $KEY  "
seed bearer_header 3 "Basic $KEY"
# admin_body: first byte picks route (low 2 bits) and Content-Type (high 4 bits).
seed admin_body 1 '0{"id":"web-app","name":"Web app"}'
seed admin_body 2 '1{"name":" production-web "}'
seed admin_body 3 '2{}'
seed admin_body 4 '3 '
seed admin_body 5 '0{"id":"a","name":"b","extra":1}'
seed admin_body 6 'q{"name":"x"}'
seed admin_body 7 '1{"name":"a\u0000b"}'
seed admin_body 8 ' ["web-app","Web app"]'
seed stored_record 1 "{\"id\":\"key_1\",\"hash\":\"$(printf 'ab%.0s' $(seq 32))\",\"name\":\"n\",\"project_id\":\"p\",\"prefix\":\"lqt_abababab\",\"created_at\":1,\"grace_expires_at\":5,\"revoked_at\":null,\"rotated_from\":null,\"rotated_to\":\"key_2\"}"
seed stored_record 2 '{"id":"web-app","name":"Web app","created_at":1795689954123}'
seed stored_record 3 '{"id":"evt_1","actor":"admin","action":"key.created","project_id":"p","key_id":"key_1","at":18446744073709551615}'
# serde_decoders: records, change-log entries and reports, as objects and as arrays of fields.
HASH="$(printf 'ab%.0s' $(seq 32))"
RECORD="{\"id\":\"key_1\",\"hash\":\"$HASH\",\"name\":\"n\",\"project_id\":\"p\",\"prefix\":\"lqt_abababab\",\"created_at\":1,\"grace_expires_at\":null,\"revoked_at\":null,\"rotated_from\":null,\"rotated_to\":null}"
seed serde_decoders 1 "$RECORD"
seed serde_decoders 2 "[\"key_1\",\"$HASH\",\"n\",\"p\",\"lqt_abababab\",1,null,null,null,null,null]"
seed serde_decoders 3 "{\"record\":$RECORD,\"at\":5,\"settled\":true,\"settled_at\":9}"
seed serde_decoders 4 "[{\"prev\":null,\"next\":$RECORD},{\"prev\":$RECORD,\"next\":$RECORD}]"
seed serde_decoders 5 "{\"keys\":[\"$KEY\",\"lqt_short\"],\"source\":\"incident INC-1\"}"
seed serde_decoders 6 "[{\"token\":\"$KEY\",\"type\":\"lumiqtrace_api_key\",\"url\":\"https://github.com/o/r\",\"source\":\"content\"}]"
seed serde_decoders 7 '["web-app","Web app"]'
seed serde_decoders 8 '{"public_keys":[{"key_identifier":"k","key":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----","is_current":true}]}'

fuzz build >&2
total=0
for target in "${TARGETS[@]}"; do
  log="fuzz/artifacts/$target.log"
  mkdir -p "fuzz/artifacts/$target"
  # cargo-fuzz runs the target inside fuzz/: give libFuzzer an absolute corpus path.
  if ! fuzz run "$target" "$PWD/fuzz/corpus/$target" -- -max_total_time="$SECONDS_EACH" \
      -max_len=17000 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "[fuzz] $target FAILED; the crashing input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs="$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")"
  total=$((total + runs))
  echo "[fuzz] $target: $runs inputs in ${SECONDS_EACH} s, no crash"
done
echo "[fuzz] ${#TARGETS[@]} targets: $total inputs, 0 crashes"
