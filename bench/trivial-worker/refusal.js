// bench/trivial-worker/refusal.js: the trivial worker, but answering every request with the Rust
// worker's malformed-key refusal, prebuilt: the same status, headers and body (bench/run.mjs
// checks they match). Beside the bare ceiling it shows what the answer's shape alone costs,
// before any request is read.
const BODY = JSON.stringify({
  error: {
    code: "malformed_key",
    message: "malformed API key: expected `Authorization: Bearer lqt_` followed by 64 lowercase hex characters",
  },
});
const HEADERS = new Headers({
  "Content-Type": "application/json; charset=utf-8",
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "WWW-Authenticate": 'Bearer realm="lumiqtrace"',
});
export default {
  fetch() {
    return new Response(BODY, { status: 401, headers: HEADERS });
  },
};
