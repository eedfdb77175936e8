//! The Worker's entry: the only module that touches `Request`/`Response`. It turns a request
//! into the core's [`HttpRequest`], answers with the core's [`Reply`], and forwards authorized
//! ingest calls to `INGEST_ORIGIN`.

use crate::admin::Keys;
use crate::api::{self, Config, HttpRequest, Outcome, Reply, MAX_ADMIN_BODY};
use crate::changes::{Overlay, DEFAULT_REFRESH_MS};
use crate::changes_do::DoFeed;
use crate::error::ApiError;
use crate::ingest::PROJECT_HEADER;
use crate::kv::Kv;
use crate::repo::Repo;
use futures_util::StreamExt;
use std::cell::{OnceCell, RefCell};
use worker::{console_error, event, Context, Date, Env, Fetch, Headers, Request, Response, Result};

const KEY_ID_HEADER: &str = "x-lumiqtrace-key-id";

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let now = Date::now().as_millis();
    let url = req.inner().url();
    let (path, query) = split_url(&url);
    let method = req.method().to_string();
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let (authorization, project) = (header("authorization"), header(PROJECT_HEADER));
    let (content_type, body) = if api::reads_body(&method, path) {
        let content_type = header("content-type");
        match read_limited(&mut req, MAX_ADMIN_BODY).await {
            Ok(body) => (content_type, body),
            Err(e) => return respond(Reply::error(&e)),
        }
    } else {
        (None, Vec::new())
    };
    let request = HttpRequest {
        method: &method,
        path,
        query,
        authorization: authorization.as_deref(),
        content_type: content_type.as_deref(),
        project_header: project.as_deref(),
        body: &body,
    };
    let settings = SETTINGS.with(|s| *s).get_or_init(|| Settings::read(&env));
    let store = Kv::bind(&env);
    let feed = DoFeed::new(&env, settings.overlay_on);
    let keys = Keys {
        repo: Repo::new(&store),
        feed: &feed,
        overlay: OVERLAY.with(|o| *o),
    };
    match api::handle(&keys, &settings.config, &request, now).await {
        Outcome::Reply(reply) => respond(reply),
        Outcome::Ingest { grant, log } => {
            if let Some(line) = log {
                console_error!("{line}");
            }
            match &settings.ingest_origin {
                Some(origin) => match forward(&req, path, query, origin, &grant).await {
                    Ok(response) => Ok(response),
                    Err(e) => respond(Reply::error(&e)),
                },
                None => respond(api::accepted(&grant)),
            }
        }
    }
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
}

impl Settings {
    fn read(env: &Env) -> Self {
        Self {
            config: config(env),
            overlay_on: var(env, "CHANGES_OVERLAY").is_none_or(|v| v.trim() != "off"),
            ingest_origin: var(env, "INGEST_ORIGIN"),
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
async fn read_limited(req: &mut Request, limit: usize) -> std::result::Result<Vec<u8>, ApiError> {
    let declared = req.headers().get("content-length").ok().flatten();
    if declared
        .and_then(|n| n.trim().parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        return Err(ApiError::BodyTooLarge(limit));
    }
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new()); // no body
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody(format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Sends the request on to the ingest origin: same method, path, query and body, without
/// `Authorization`, with the key's project and id added. The origin's answer is passed back.
async fn forward(
    req: &Request,
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
    for (name, value) in req.headers().entries() {
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
    let method = req.inner().method();
    init.set_method(&method);
    init.set_headers(&headers.0);
    if !matches!(method.as_str(), "GET" | "HEAD") {
        if let Some(body) = req.inner().body() {
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

fn respond(reply: Reply) -> Result<Response> {
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
    Ok(Response::ok(reply.body)?
        .with_status(reply.status)
        .with_headers(headers))
}
