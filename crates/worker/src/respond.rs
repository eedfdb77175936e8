//! The core's [`Reply`] as a `worker::Response`: the JSON body, its status, and the headers every
//! answer of ours carries (`Content-Type`, `Cache-Control: no-store`,
//! `X-Content-Type-Options: nosniff`), plus `WWW-Authenticate` on a 401, `Allow` on a 405 and
//! `Retry-After` on a 429.
//! The reply's log line goes to the log here.

use lumiqtrace_core::api::Reply;
use worker::{console_error, Headers, Response, Result};

/// Builds the response for `reply`, logging its `log` line (with the status) if it has one.
pub fn respond(reply: Reply) -> Result<Response> {
    if let Some(line) = &reply.log {
        console_error!("{} {line}", reply.status);
    }
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8")?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    if let Some(challenge) = reply.www_authenticate {
        headers.set("WWW-Authenticate", challenge)?;
    }
    if let Some(allow) = reply.allow {
        headers.set("Allow", allow)?;
    }
    if let Some(seconds) = reply.retry_after {
        headers.set("Retry-After", &seconds.to_string())?;
    }
    Ok(Response::builder()
        .with_status(reply.status)
        .with_headers(headers)
        .fixed(reply.body.into_bytes()))
}
