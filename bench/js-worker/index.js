// bench/js-worker: the baseline for the benchmark — GET /v1/auth/verify written the usual way in
// plain JavaScript (strict regex, crypto.subtle SHA-256 → hex, KV get of `key/{hex}`, JSON.parse,
// the same status decision, JSON bodies and response headers as the Rust worker). Not deployed; bench only.

const KEY_RE = /^lqt_[0-9a-f]{64}$/;
const WWW_AUTH = { "WWW-Authenticate": 'Bearer realm="lumiqtrace"' };

function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "Content-Type": "application/json; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      ...headers,
    },
  });
}

function refuse(status, code, message) {
  return json(status, { error: { code, message } }, status === 401 ? WWW_AUTH : {});
}

async function sha256Hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function verify(request, env) {
  const header = request.headers.get("Authorization");
  if (!header) return refuse(401, "missing_key", "send the key as Authorization: Bearer <key>");
  const key = header.startsWith("Bearer ") ? header.slice(7) : "";
  if (!KEY_RE.test(key)) {
    return refuse(401, "malformed_key", "API keys are `lqt_` followed by 64 lowercase hex characters");
  }
  let text;
  try {
    text = await env.KEYS.get("key/" + (await sha256Hex(key)));
  } catch {
    return refuse(503, "unavailable", "key storage is unavailable, try again");
  }
  if (text === null) return refuse(401, "invalid_key", "no such API key");
  const record = JSON.parse(text);
  const now = Date.now();
  if (record.revoked_at != null) return refuse(401, "key_revoked", "this API key was revoked");
  const grace = record.grace_expires_at;
  if (grace != null && now >= grace) return refuse(401, "key_expired", "this API key's grace period is over");
  return json(200, {
    project_id: record.project_id,
    key_id: record.id,
    key_name: record.name,
    status: grace == null ? "active" : "grace",
    grace_expires_at: grace == null ? null : new Date(grace).toISOString(),
  });
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/v1/auth/verify" && request.method === "GET") return verify(request, env);
    return refuse(404, "not_found", "no such route");
  },
};
