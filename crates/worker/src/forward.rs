//! The forwarder: an authorized ingest call goes on to `INGEST_ORIGIN` with the same method,
//! path, query and body, without `Authorization` (and without any project or key-id header the
//! caller sent), with the key's project and id added. The origin's answer is passed back as it
//! is; an origin that cannot be reached is a 502.

use lumiqtrace_core::error::ApiError;
use lumiqtrace_core::record::Grant;
use lumiqtrace_core::verify::PROJECT_HEADER;
use worker::{Fetch, Request, RequestInit, Response};

/// The header naming the key (its id, never the key) on a forwarded call.
pub const KEY_ID_HEADER: &str = "x-lumiqtrace-key-id";

/// Sends `req` (its `method`, as the runtime read it) on to `origin` + `path` + `query`.
/// `Internal` when `origin` is not an http(s) URL; `UpstreamUnavailable` when the call fails.
pub async fn forward(
    req: &Request,
    method: &str,
    path: &str,
    query: Option<&str>,
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
    let target = match query {
        Some(q) => format!("{origin}{path}?{q}"),
        None => format!("{origin}{path}"),
    };
    let headers = req.headers().clone(); // a copy: the incoming request's headers are immutable
    for ours in ["authorization", "host", PROJECT_HEADER, KEY_ID_HEADER] {
        headers.delete(ours).map_err(upstream)?;
    }
    headers
        .set(PROJECT_HEADER, &grant.project_id)
        .map_err(upstream)?;
    headers
        .set(KEY_ID_HEADER, &grant.key_id)
        .map_err(upstream)?;
    let mut init = RequestInit::new();
    init.with_headers(headers);
    if !matches!(method, "GET" | "HEAD") {
        // The body streams through untouched (`Request::inner`: the worker crate offers the
        // body only as a Rust stream, which would copy every chunk through wasm memory).
        init.with_body(req.inner().body().map(Into::into));
    }
    // The method is set on the runtime's own `RequestInit`: `worker::Method` has no variant for
    // an extension method (it would become GET), and the call keeps the method as it came.
    let init = worker::web_sys::RequestInit::from(&init);
    init.set_method(method);
    let outbound = worker::web_sys::Request::new_with_str_and_init(&target, &init)
        .map_err(|e| upstream(e.into()))?;
    Fetch::Request(Request::from(outbound))
        .send()
        .await
        .map_err(upstream)
}
