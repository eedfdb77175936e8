//! The Worker's entry: the only module that touches `Request`/`Response`. It turns a request
//! into the core's [`HttpRequest`], answers with the core's [`Reply`], and forwards authorized
//! ingest calls to `INGEST_ORIGIN`.

use crate::admin::Keys;
use crate::api::{self, Config, HttpRequest, Outcome, Reply};
use crate::changes::{Overlay, DEFAULT_REFRESH_MS};
use crate::changes_do::DoFeed;
use crate::error::ApiError;
use crate::ingest::PROJECT_HEADER;
use crate::kv::Kv;
use crate::repo::Repo;
use crate::signature::{KEY_ID_HEADER as GITHUB_KEY_ID, SIGNATURE_HEADER as GITHUB_SIGNATURE};
use futures_util::StreamExt;
use std::cell::{OnceCell, RefCell};
use worker::{console_error, event, Context, Date, Env, Fetch, Headers, Request, Response, Result};

const KEY_ID_HEADER: &str = "x-lumiqtrace-key-id";

/// Takes and returns the runtime's own request and response objects: `worker::Request` would
/// eagerly copy the method, URL, headers and `cf` object of every request, most of which the
/// verify path never looks at (about 10 µs of the ~60 µs entry cost measured by the benchmark).
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    let now = Date::now().as_millis();
    let url = req.url();
    let (path, query) = split_url(&url);
    let method = req.method();
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let (authorization, project) = (header("authorization"), header(PROJECT_HEADER));
    let github = path == api::GITHUB_ROUTE;
    let (github_key_id, github_signature) = match github {
        true => (header(GITHUB_KEY_ID), header(GITHUB_SIGNATURE)),
        false => (None, None),
    };
    let (content_type, body) = match api::body_limit(&method, path) {
        Some(limit) => {
            let content_type = header("content-type");
            match read_limited(&req, limit).await {
                Ok(body) => (content_type, body),
                Err(ApiError::BodyTooLarge(_)) => {
                    return respond(Reply::error(&api::body_too_large(path, limit)))
                }
                Err(e) => return respond(Reply::error(&e)),
            }
        }
        None => (None, Vec::new()),
    };
    let request = HttpRequest {
        method: &method,
        path,
        query,
        authorization: authorization.as_deref(),
        content_type: content_type.as_deref(),
        project_header: project.as_deref(),
        body: &body,
        github_key_id: github_key_id.as_deref(),
        github_signature: github_signature.as_deref(),
    };
    let settings = SETTINGS.with(|s| *s).get_or_init(|| Settings::read(&env));
    let store = Kv::bind(&env);
    let feed = DoFeed::new(&env, settings.overlay_on);
    let keys = Keys {
        repo: Repo::new(&store),
        feed: &feed,
        overlay: OVERLAY.with(|o| *o),
    };
    if github {
        let signatures = crate::webcrypto::github_signatures(settings.github_keys_url.as_deref());
        return respond(api::github_secret_scanning(&keys, &signatures, &request, now).await);
    }
    let outcome = api::handle(&keys, &settings.config, &request, now).await;
    let reply = match outcome {
        Outcome::Reply(reply) => reply,
        Outcome::Ingest { grant, log } => {
            if let Some(line) = log {
                console_error!("{line}");
            }
            match &settings.ingest_origin {
                // The body went to the origin (or failed on the way): nothing left to discard.
                Some(origin) => match forward(&req, path, query, origin, &grant).await {
                    Ok(response) => return Ok(response.into()),
                    Err(e) => return respond(Reply::error(&e)),
                },
                None => api::accepted(&grant),
            }
        }
    };
    discard_body(&req).await;
    respond(reply)
}

thread_local! {
    /// This isolate's copy of the recent key changes, shared by every request it serves.
    static OVERLAY: &'static RefCell<Overlay> = Box::leak(Box::default());
    /// Vars and secrets, read once per isolate (a deploy or secret change starts new isolates).
    static SETTINGS: &'static OnceCell<Settings> = Box::leak(Box::default());
}

struct Settings {
    config: Config,
    overlay_on: bool,
    ingest_origin: Option<String>,
    github_keys_url: Option<String>,
}

impl Settings {
    fn read(env: &Env) -> Self {
        Self {
            config: config(env),
            overlay_on: var(env, "CHANGES_OVERLAY").is_none_or(|v| v.trim() != "off"),
            ingest_origin: var(env, "INGEST_ORIGIN"),
            github_keys_url: var(env, "GITHUB_KEYS_URL"),
        }
    }
}

/// Path and query of an absolute request URL (`https://host/path?query`), left percent-encoded.
/// Split by hand: the `url` crate would add ~25 KB of wasm for what the runtime already parsed.
fn split_url(url: &str) -> (&str, Option<&str>) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let target = rest.find('/').map_or("/", |i| &rest[i..]);
    let target = target.split('#').next().unwrap_or(target);
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

fn var(env: &Env, name: &str) -> Option<String> {
    let value = env.var(name).ok()?.to_string();
    (!value.trim().is_empty()).then_some(value)
}

fn config(env: &Env) -> Config {
    let grace_seconds = match var(env, "ROTATION_GRACE_SECONDS").map(|s| s.trim().parse::<u64>()) {
        Some(Ok(seconds)) => seconds,
        Some(Err(_)) => {
            console_error!("ROTATION_GRACE_SECONDS is not a whole number of seconds; using 24 h");
            api::DEFAULT_GRACE_SECONDS
        }
        None => api::DEFAULT_GRACE_SECONDS,
    };
    let refresh_ms = match var(env, "CHANGES_REFRESH_SECONDS").map(|s| s.trim().parse::<f64>()) {
        Some(Ok(seconds)) if seconds >= 0.0 => (seconds * 1000.0) as u64,
        Some(_) => {
            console_error!("CHANGES_REFRESH_SECONDS is not a number of seconds; using 2");
            DEFAULT_REFRESH_MS
        }
        None => DEFAULT_REFRESH_MS,
    };
    Config {
        admin_token: var(env, "ADMIN_TOKEN"),
        grace_ms: grace_seconds.saturating_mul(1000),
        refresh_ms,
    }
}

/// Reads at most `limit` bytes of body; a larger one is refused without buffering it all.
async fn read_limited(
    req: &web_sys::Request,
    limit: usize,
) -> std::result::Result<Vec<u8>, ApiError> {
    let declared = req.headers().get("content-length").ok().flatten();
    if declared
        .and_then(|n| n.trim().parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        discard_body(req).await;
        return Err(ApiError::BodyTooLarge(limit));
    }
    if req.body().is_none() {
        return Ok(Vec::new());
    }
    let Ok(mut stream) = Request::from(<web_sys::Request as Clone>::clone(req)).stream() else {
        return Ok(Vec::new()); // no body
    };
    let mut body = Vec::new();
    let mut too_large = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody(format!("unreadable body: {e}")))?;
        // Past the limit, read on without keeping anything (see `discard_body`).
        too_large |= body.len() + chunk.len() > limit;
        if !too_large {
            body.extend_from_slice(&chunk);
        }
    }
    match too_large {
        true => Err(ApiError::BodyTooLarge(limit)),
        false => Ok(body),
    }
}

/// Reads and drops a request body the worker answers without using. In workerd, answering
/// while the body is still unread can fail the next request on the same keep-alive connection
/// (seen locally: `fetch failed` on about 1 follow-up request in 8).
/// Only an untouched body is read: taking a reader on a locked stream would trap.
async fn discard_body(req: &web_sys::Request) {
    if req.body().is_none_or(|body| body.locked()) {
        return;
    }
    if let Ok(mut stream) = Request::from(<web_sys::Request as Clone>::clone(req)).stream() {
        while let Some(Ok(_)) = stream.next().await {}
    }
}

/// Sends the request on to the ingest origin: same method, path, query and body, without
/// `Authorization`, with the key's project and id added. The origin's answer is passed back.
async fn forward(
    req: &web_sys::Request,
    path: &str,
    query: Option<&str>,
    origin: &str,
    grant: &crate::record::Grant,
) -> std::result::Result<Response, ApiError> {
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
    let headers = Headers::new();
    for (name, value) in Headers(req.headers()).entries() {
        let ours = matches!(
            name.as_str(),
            "authorization" | "host" | PROJECT_HEADER | KEY_ID_HEADER
        );
        if !ours {
            headers.append(&name, &value).map_err(upstream)?;
        }
    }
    headers
        .set(PROJECT_HEADER, &grant.project_id)
        .map_err(upstream)?;
    headers
        .set(KEY_ID_HEADER, &grant.key_id)
        .map_err(upstream)?;
    // web_sys's RequestInit directly: worker's RequestInit serializes cf options through serde.
    let init = web_sys::RequestInit::new();
    let method = req.method();
    init.set_method(&method);
    init.set_headers(&headers.0);
    if !matches!(method.as_str(), "GET" | "HEAD") {
        if let Some(body) = req.body() {
            init.set_body(&body);
        }
    }
    let outbound =
        web_sys::Request::new_with_str_and_init(&target, &init).map_err(|e| upstream(e.into()))?;
    Fetch::Request(outbound.into())
        .send()
        .await
        .map_err(upstream)
}

fn respond(reply: Reply) -> Result<web_sys::Response> {
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
    let init = web_sys::ResponseInit::new();
    init.set_status(reply.status);
    init.set_headers(&headers.0);
    Ok(web_sys::Response::new_with_opt_str_and_init(
        Some(&reply.body),
        &init,
    )?)
}
