//! The forwarder: the call on to `INGEST_ORIGIN` of an authorized ingest request, built from
//! what the core checked (`lumiqtrace_core::forward`: the canonical path and query, the headers
//! that may pass). Same method and body; only [`FORWARDED_HEADERS`] of the client's headers,
//! plus the key's project and id; redirects not followed. The origin's answer is passed back
//! with `Cache-Control: no-store`; an origin that cannot be reached is a 502.

use lumiqtrace_core::error::ApiError;
use lumiqtrace_core::forward::{CanonicalPath, FORWARDED_HEADERS};
use lumiqtrace_core::record::Grant;
use lumiqtrace_core::verify::PROJECT_HEADER;
use worker::{Fetch, Headers, Request, RequestInit, RequestRedirect, Response};

/// The header naming the key (its id, never the key) on a forwarded call.
pub const KEY_ID_HEADER: &str = "x-lumiqtrace-key-id";

/// Sends `req` (its `method`, as the runtime read it) on to `origin` followed by exactly the
/// checked `target` (path and query as received). The origin's answer, a 3xx too, comes back
/// as [`relayed`]. `Internal` when `origin` is not an http(s) URL; `UpstreamUnavailable` when
/// the call fails.
pub async fn forward(
    req: &Request,
    method: &str,
    target: &CanonicalPath,
    origin: &str,
    grant: &Grant,
) -> Result<Response, ApiError> {
    let upstream = |e: worker::Error| ApiError::UpstreamUnavailable(e.to_string());
    let origin = origin.trim().trim_end_matches('/');
    if !(origin.starts_with("https://") || origin.starts_with("http://")) {
        return Err(ApiError::Internal(format!(
            "INGEST_ORIGIN is not an http(s) URL: {origin}"
        )));
    }
    let url = format!("{origin}{}", target.target());
    let sent = req.headers();
    let headers = Headers::new();
    for &name in FORWARDED_HEADERS {
        if let Some(value) = sent.get(name).map_err(upstream)? {
            headers.set(name, &value).map_err(upstream)?;
        }
    }
    headers
        .set(PROJECT_HEADER, &grant.project_id)
        .map_err(upstream)?;
    headers
        .set(KEY_ID_HEADER, &grant.key_id)
        .map_err(upstream)?;
    let mut init = RequestInit::new();
    init.with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if !matches!(method, "GET" | "HEAD") {
        // The body streams through untouched (`Request::inner`: the worker crate offers the
        // body only as a Rust stream, which would copy every chunk through wasm memory).
        init.with_body(req.inner().body().map(Into::into));
    }
    // The method is set on the runtime's own `RequestInit`: `worker::Method` has no variant for
    // an extension method (it would become GET), and the call keeps the method as it came.
    let init = worker::web_sys::RequestInit::from(&init);
    init.set_method(method);
    let outbound = worker::web_sys::Request::new_with_str_and_init(&url, &init)
        .map_err(|e| upstream(e.into()))?;
    let answer = Fetch::Request(Request::from(outbound))
        .send()
        .await
        .map_err(upstream)?;
    relayed(answer).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The origin's answer as the client gets it: its status, headers and body, with
/// `Cache-Control: no-store` set (every answer of the worker is no-store, docs/reliability.md).
/// A fetched response's headers are immutable: they are copied first (`Headers::clone`).
fn relayed(answer: Response) -> worker::Result<Response> {
    let headers = answer.headers().clone();
    headers.set("Cache-Control", "no-store")?;
    Ok(answer.with_headers(headers))
}
