//! The Worker's entry: the only module that touches `Request`/`Response`. It turns a request
//! into the core's [`HttpRequest`], answers with the core's [`Reply`], and forwards authorized
//! ingest calls to `INGEST_ORIGIN`.

use crate::api::{self, Config, HttpRequest, Outcome, Reply, MAX_ADMIN_BODY};
use crate::error::ApiError;
use crate::ingest::PROJECT_HEADER;
use crate::kv::Kv;
use futures_util::StreamExt;
use worker::{
    console_error, event, Context, Date, Env, Fetch, Headers, Method, Request, RequestInit,
    Response, Result,
};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let now = Date::now().as_millis();
    let url = match req.url() {
        Ok(url) => url,
        Err(_) => return respond(Reply::error(&ApiError::NotFound)),
    };
    let method = req.method().to_string();
    let path = url.path();
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let (authorization, content_type, project) = (
        header("authorization"),
        header("content-type"),
        header(PROJECT_HEADER),
    );
    let body = if api::reads_body(&method, path) {
        match read_limited(&mut req, MAX_ADMIN_BODY).await {
            Ok(body) => body,
            Err(e) => return respond(Reply::error(&e)),
        }
    } else {
        Vec::new()
    };
    let request = HttpRequest {
        method: &method,
        path,
        query: url.query(),
        authorization: authorization.as_deref(),
        content_type: content_type.as_deref(),
        project_header: project.as_deref(),
        body: &body,
    };
    let store = Kv::bind(&env);
    match api::handle(&store, &config(&env), &request, now).await {
        Outcome::Reply(reply) => respond(reply),
        Outcome::Ingest(grant) => match var(&env, "INGEST_ORIGIN") {
            Some(origin) => match forward(&req, &url, &origin, &grant).await {
                Ok(response) => Ok(response),
                Err(e) => respond(Reply::error(&e)),
            },
            None => respond(api::accepted(&grant)),
        },
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
    Config {
        admin_token: var(env, "ADMIN_TOKEN"),
        grace_ms: grace_seconds.saturating_mul(1000),
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
    url: &worker::Url,
    origin: &str,
    grant: &crate::record::Grant,
) -> std::result::Result<Response, ApiError> {
    let upstream = |e: worker::Error| ApiError::UpstreamUnavailable(e.to_string());
    let mut target = worker::Url::parse(origin)
        .map_err(|e| ApiError::Internal(format!("INGEST_ORIGIN is not a URL: {e}")))?;
    target.set_path(url.path());
    target.set_query(url.query());
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
        if !matches!(
            name.as_str(),
            "authorization" | "host" | PROJECT_HEADER | "x-lumiqtrace-key-id"
        ) {
            headers.append(&name, &value).map_err(upstream)?;
        }
    }
    headers
        .set("X-LumiqTrace-Project-Id", &grant.project_id)
        .map_err(upstream)?;
    headers
        .set("X-LumiqTrace-Key-Id", &grant.key_id)
        .map_err(upstream)?;
    let method = req.method();
    let mut init = RequestInit::new();
    init.with_method(method.clone()).with_headers(headers);
    if !matches!(method, Method::Get | Method::Head) {
        init.with_body(req.inner().body().map(Into::into));
    }
    let outbound = Request::new_with_init(target.as_str(), &init).map_err(upstream)?;
    Fetch::Request(outbound).send().await.map_err(upstream)
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
