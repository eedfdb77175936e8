//! The Worker's entry: the only module that touches `Request`/`Response`. It turns a request
//! into the core's [`HttpRequest`], answers with the core's [`Reply`], and forwards authorized
//! ingest calls to `INGEST_ORIGIN`.

use crate::admin::Keys;
use crate::api::{self, Config, HttpRequest, LazyHeader, Outcome, Reply};
use crate::changes::{Overlay, DEFAULT_REFRESH_MS};
use crate::changes_do::DoFeed;
use crate::error::ApiError;
use crate::executor::{self, Started};
use crate::forward::{CanonicalPath, FORWARDED_HEADERS};
use crate::ingest::PROJECT_HEADER;
use crate::kv::Kv;
use crate::promise::{self, error_text};
use crate::repo::Repo;
use crate::signature::{KEY_ID_HEADER as GITHUB_KEY_ID, SIGNATURE_HEADER as GITHUB_SIGNATURE};
use crate::throttle::{self, AttemptLimiter, Throttled};
use js_sys::{Promise, Reflect, Uint8Array};
use std::cell::{Cell, OnceCell, RefCell};
use std::ops::ControlFlow;
use wasm_bindgen::prelude::*;
use worker::{console_error, Env};

const KEY_ID_HEADER: &str = "x-lumiqtrace-key-id";
/// The Workers Rate Limiting binding that counts failed admin sign-ins (wrangler.toml).
const SIGNIN_LIMITER: &str = "ADMIN_SIGNIN_LIMITER";

/// The `fetch` handler (`scripts/shim.js` calls it). A refusal the request line and
/// `Authorization` decide ([`api::refused_at_once`], such as a malformed key) is sent straight
/// away. Anything else runs at once on [`executor`](crate::executor): an answer that needs no
/// waiting is returned as it is, with no promise made; one still waiting on KV, the change log
/// or a body is answered through a promise. An error is a rejected promise rather than a
/// `Result`: wasm-bindgen returns a `Result` as three values, which V8 leaves to a slow
/// generic JS-to-Wasm wrapper (about 3 µs a request, bench/profile.mjs).
/// The execution context is not passed in: nothing here uses `waitUntil`, and each argument
/// that crosses takes a table slot in Wasm (with the header read straight from the request
/// rather than through its `Headers`, about 2 µs a refusal less, bench/profile.mjs).
#[wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: Env) -> JsValue {
    let head = Head::read(&req);
    // A request with a body goes the long way, which reads the body before answering.
    if matches!(head.method.as_str(), "GET" | "HEAD") {
        let (path, _) = api::split_url(&head.url);
        let authorization = head.authorization.as_deref();
        let refusal = api::refused_at_once(&head.method, path, authorization);
        // Should the runtime refuse to make it, the long way answers (or reports why).
        if let Some(Ok(response)) = refusal.as_ref().map(respond_at_once) {
            return response.into();
        }
    }
    let answer = answer(executor::start(async move {
        finish(handle(req, head, env).await)
    }));
    answer.unwrap_or_else(|e| Promise::reject(&e).into())
}

/// What every request is read for first: its request line and `Authorization`.
struct Head {
    url: String,
    method: String,
    authorization: Option<String>,
}

impl Head {
    fn read(req: &web_sys::Request) -> Self {
        Self {
            url: req.url(),
            method: req.method(),
            authorization: AUTHORIZATION.with(|name| request_header(req, name)),
        }
    }
}

/// A started task's answer for JavaScript: the value itself if it is ready (no promise made),
/// else a promise of it.
pub(crate) fn answer(started: Started<Result<JsValue, JsValue>>) -> Result<JsValue, JsValue> {
    match started {
        Started::Done(answer) => answer,
        Started::Pending(pending) => {
            let mut pending = Some(pending);
            let promise = js_sys::Promise::new(&mut |resolve, reject| {
                let Some(pending) = pending.take() else {
                    return;
                };
                pending.on_done(move |answer| {
                    let _ = match answer {
                        Ok(response) => resolve.call1(&JsValue::UNDEFINED, &response),
                        Err(e) => reject.call1(&JsValue::UNDEFINED, &e),
                    };
                });
            });
            Ok(promise.into())
        }
    }
}

/// An error no reply covered becomes the generic JSON 500 (its detail goes to the log).
fn finish(answer: Result<web_sys::Response, JsValue>) -> Result<JsValue, JsValue> {
    match answer {
        Ok(response) => Ok(response.into()),
        Err(e) => Ok(respond(Reply::error(&ApiError::Internal(error_text(&e))))?.into()),
    }
}

/// Takes and returns the runtime's own request and response objects: `worker::Request` would
/// eagerly copy the method, URL, headers and `cf` object of every request, most of which the
/// verify path never looks at (about 10 µs per request, bench/profile.mjs).
async fn handle(req: web_sys::Request, head: Head, env: Env) -> Result<web_sys::Response, JsValue> {
    let now = js_sys::Date::now() as crate::time::Millis;
    let Head {
        url,
        method,
        authorization,
    } = head;
    let headers = req.headers();
    let (path, query) = api::split_url(&url);
    let header = |name: &str| headers.get(name).ok().flatten();
    let project = || PROJECT.with(|name| request_header(&req, name));
    let github = path == api::GITHUB_ROUTE;
    let (github_key_id, github_signature) = match github {
        true => (header(GITHUB_KEY_ID), header(GITHUB_SIGNATURE)),
        false => (None, None),
    };
    let settings = SETTINGS.with(|s| *s).get_or_init(|| Settings::read(&env));
    let signatures =
        github.then(|| crate::webcrypto::github_signatures(settings.github_keys_url.as_deref()));
    // Who is calling is settled before a byte of body is read; a refused body is never kept.
    let refused = if api::is_admin_route(path) {
        let limiter = SignInLimiter(binding(&env, SIGNIN_LIMITER));
        let client = header(throttle::CLIENT_HEADER);
        let throttled = THROTTLED.with(|t| *t);
        let (auth, client) = (authorization.as_deref(), client.as_deref());
        let signed_in =
            throttle::admin_sign_in(&settings.config, auth, client, &limiter, throttled, now);
        signed_in.await.err()
    } else if let (Some(signatures), "POST") = (&signatures, method.as_str()) {
        let (key_id, signature) = (github_key_id.as_deref(), github_signature.as_deref());
        let checked = signatures.check_headers(key_id, signature, now).await;
        checked.err().map(ApiError::from)
    } else {
        None
    };
    if let Some(refusal) = refused {
        refuse_body(&req).await;
        return respond(Reply::error(&refusal));
    }
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
        project_header: LazyHeader(&project),
        body: &body,
        github_key_id: github_key_id.as_deref(),
        github_signature: github_signature.as_deref(),
    };
    let store = Kv::bind(&env);
    let feed = DoFeed::new(&env, settings.overlay_on);
    let keys = Keys {
        repo: Repo::new(&store),
        feed: &feed,
        overlay: OVERLAY.with(|o| *o),
    };
    if let Some(signatures) = &signatures {
        return respond(api::github_secret_scanning(&keys, signatures, &request, now).await);
    }
    let outcome = api::handle(&keys, &settings.config, &request, now).await;
    let reply = match outcome {
        Outcome::Reply(reply) => reply,
        Outcome::Ingest { grant, target, log } => {
            if let Some(line) = log {
                console_error!("{line}");
            }
            match &settings.ingest_origin {
                // The body went to the origin (or failed on the way): nothing left to discard.
                Some(origin) => match forward(&req, &target, origin, &grant).await {
                    Ok(response) => return Ok(response),
                    Err(e) => return respond(Reply::error(&e)),
                },
                None => api::accepted(&grant),
            }
        }
    };
    if !matches!(method.as_str(), "GET" | "HEAD") {
        discard_body(&req).await; // GET and HEAD requests carry no body
    }
    respond(reply)
}

thread_local! {
    /// This isolate's copy of the recent key changes, shared by every request it serves.
    static OVERLAY: &'static RefCell<Overlay> = Box::leak(Box::default());
    /// Vars and secrets, read once per isolate (a deploy or secret change starts new isolates).
    static SETTINGS: &'static OnceCell<Settings> = Box::leak(Box::default());
    /// Clients this isolate saw go over their budget of failed admin sign-ins.
    static THROTTLED: &'static RefCell<Throttled> = Box::leak(Box::default());
    /// Whether the missing `ADMIN_SIGNIN_LIMITER` binding was logged (once per isolate).
    static NO_LIMITER_LOGGED: Cell<bool> = const { Cell::new(false) };
}

#[wasm_bindgen]
extern "C" {
    /// A Workers Rate Limiting binding: `limit({ key })` resolves to `{ success }`.
    type RateLimiter;
    #[wasm_bindgen(method, catch)]
    fn limit(this: &RateLimiter, options: &js_sys::Object) -> Result<Promise, JsValue>;
}

/// Counts failed admin sign-ins in the `ADMIN_SIGNIN_LIMITER` binding, keyed by client. Without
/// the binding (an older wrangler.toml), or when it fails, nobody is throttled: it says so in
/// the log (once per isolate when missing).
struct SignInLimiter(Option<RateLimiter>);

impl AttemptLimiter for SignInLimiter {
    async fn allow(&self, client: &str) -> bool {
        let Some(limiter) = &self.0 else {
            if !NO_LIMITER_LOGGED.replace(true) {
                console_error!("no {SIGNIN_LIMITER} binding: failed admin sign-ins are not throttled (see wrangler.toml)");
            }
            return true;
        };
        let options = js_sys::Object::new();
        let counted = match Reflect::set(&options, &"key".into(), &client.into()) {
            Ok(_) => promise::settle(limiter.limit(&options)).await,
            Err(e) => Err(e),
        };
        let success = counted.and_then(|answer| Reflect::get(&answer, &"success".into()));
        match success {
            Ok(success) => success.as_bool() != Some(false),
            Err(e) => {
                console_error!(
                    "{SIGNIN_LIMITER} failed, sign-in not throttled: {}",
                    error_text(&e)
                );
                true
            }
        }
    }
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

/// A binding of `env` (a KV or Durable Object namespace), if it is there.
pub(crate) fn binding<T: JsCast>(env: &Env, name: &str) -> Option<T> {
    let found = Reflect::get(env, &JsValue::from_str(name)).ok()?;
    found.is_object().then(|| found.unchecked_into())
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
    let refresh_ms =
        match var(env, "CHANGES_REFRESH_SECONDS").map(|s| crate::time::parse_seconds(&s)) {
            Some(Some(ms)) => ms,
            Some(None) => {
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

/// Reads at most `limit` bytes of body. A larger one is refused when its `Content-Length`
/// says so, before a byte is kept (see [`refuse_body`]), else as soon as it crosses `limit`:
/// the rest is cancelled unread.
async fn read_limited(req: &web_sys::Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    if declared_length(req).is_some_and(|n| n > limit as u64) {
        refuse_body(req).await;
        return Err(ApiError::BodyTooLarge(limit));
    }
    let mut body = Vec::new();
    let read = read_body(req, |chunk| {
        let start = body.len();
        if start + chunk.length() as usize > limit {
            return ControlFlow::Break(());
        }
        body.resize(start + chunk.length() as usize, 0);
        chunk.copy_to(&mut body[start..]);
        ControlFlow::Continue(())
    });
    match read.await {
        Ok(ControlFlow::Continue(())) => Ok(body),
        Ok(ControlFlow::Break(())) => Err(ApiError::BodyTooLarge(limit)),
        Err(e) => Err(ApiError::InvalidBody(format!(
            "unreadable body: {}",
            error_text(&e)
        ))),
    }
}

/// Reads and drops a request body the worker answers without using. In workerd, answering
/// while the body is still unread can fail the next request on the same keep-alive connection
/// (seen locally: `fetch failed` on about 1 follow-up request in 8).
async fn discard_body(req: &web_sys::Request) {
    let _ = read_body(req, |_| ControlFlow::Continue(())).await;
}

/// A refused body that says it is at most this many bytes (64 KiB) is read and dropped rather
/// than cancelled.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// Leaves a body the worker refuses (an unauthenticated caller's, or one whose `Content-Length`
/// is over the route's limit) without keeping any of it. One whose `Content-Length` is at most
/// [`DRAIN_LIMIT`] is read to its end and dropped: a body left unread fails the next request on
/// the same keep-alive connection in workerd behind the assets router (`wrangler dev`, the
/// tests: about 1 follow-up in 5; none once it is read). Any other (larger, or of unknown
/// length) is cancelled unread: the runtime stops taking it from the client.
async fn refuse_body(req: &web_sys::Request) {
    if declared_length(req).is_some_and(|n| n <= DRAIN_LIMIT) {
        discard_body(req).await;
    } else if let Some(stream) = req.body().filter(|body| !body.locked()) {
        let _ = promise::settle(Ok(stream.cancel())).await;
    }
}

/// The request's `Content-Length`, if it has a valid one.
fn declared_length(req: &web_sys::Request) -> Option<u64> {
    let declared = req.headers().get("content-length").ok().flatten()?;
    declared.trim().parse().ok()
}

/// Hands each chunk of the request body to `chunk` until the end, or until `chunk` breaks:
/// then the rest is cancelled unread (`Break` is returned). Only an untouched body is read:
/// taking a reader on a locked stream would throw.
async fn read_body(
    req: &web_sys::Request,
    mut chunk: impl FnMut(Uint8Array) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, JsValue> {
    let Some(stream) = req.body().filter(|body| !body.locked()) else {
        return Ok(ControlFlow::Continue(()));
    };
    let reader: BodyReader = stream.get_reader().unchecked_into();
    let (done, value) = (JsValue::from_str("done"), JsValue::from_str("value"));
    loop {
        let step = promise::settle(reader.read()).await?;
        if Reflect::get(&step, &done)?.is_truthy() {
            return Ok(ControlFlow::Continue(()));
        }
        if chunk(Reflect::get(&step, &value)?.unchecked_into()).is_break() {
            let _ = promise::settle(reader.cancel()).await;
            return Ok(ControlFlow::Break(()));
        }
    }
}

/// Sends the request on to the ingest origin: same method and body, to the origin followed by
/// exactly the checked `target` (path and query as received), with only the headers of
/// [`FORWARDED_HEADERS`] and the key's project and id added. Redirects are not followed: the
/// origin's answer, a 3xx too, is passed back as [`relayed`].
async fn forward(
    req: &web_sys::Request,
    target: &CanonicalPath,
    origin: &str,
    grant: &crate::record::Grant,
) -> Result<web_sys::Response, ApiError> {
    let upstream = |e: JsValue| ApiError::UpstreamUnavailable(error_text(&e));
    let origin = origin.trim().trim_end_matches('/');
    if !(origin.starts_with("https://") || origin.starts_with("http://")) {
        return Err(ApiError::Internal(format!(
            "INGEST_ORIGIN is not an http(s) URL: {origin}"
        )));
    }
    let url = format!("{origin}{}", target.target());
    let sent = req.headers();
    let headers = web_sys::Headers::new().map_err(upstream)?;
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
    let init = web_sys::RequestInit::new();
    let method = req.method();
    init.set_method(&method);
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if !matches!(method.as_str(), "GET" | "HEAD") {
        if let Some(body) = req.body() {
            init.set_body(&body);
        }
    }
    let outbound = web_sys::Request::new_with_str_and_init(&url, &init).map_err(upstream)?;
    let answered = promise::settle(fetch_outbound(&outbound)).await;
    relayed(answered.map_err(upstream)?.unchecked_into())
        .map_err(|e| ApiError::Internal(error_text(&e)))
}

/// The origin's answer as the client gets it: its status, headers and body, with
/// `Cache-Control: no-store` set (every answer of the worker is no-store, README Reliability).
fn relayed(answer: web_sys::Response) -> Result<web_sys::Response, JsValue> {
    let headers = web_sys::Headers::new_with_headers(&answer.headers())?;
    headers.set("Cache-Control", "no-store")?;
    let init = web_sys::ResponseInit::new();
    init.set_status(answer.status());
    init.set_status_text(&answer.status_text());
    init.set_headers(&headers);
    web_sys::Response::new_with_opt_readable_stream_and_init(answer.body().as_ref(), &init)
}

/// Sends a refusal of [`api::refused_at_once`]: its body, status and headers are made once
/// per isolate, code and `Allow` (about 3 µs a request less than [`respond`]).
fn respond_at_once(refusal: &ApiError) -> Result<web_sys::Response, JsValue> {
    let id = (refusal.code(), refusal.allow());
    let sent = AT_ONCE.with_borrow(|all| {
        let (_, (body, status, headers)) = all.iter().find(|(i, _)| *i == id)?;
        Some(json_response(body, *status, headers))
    });
    if let Some(sent) = sent {
        return sent;
    }
    let (body, status, headers) = parts(Reply::error(refusal))?;
    let response = json_response(&body, status, &headers);
    AT_ONCE.with_borrow_mut(|all| all.push((id, (body, status, headers))));
    response
}

type Parts = (JsValue, u16, web_sys::Headers);
/// A refusal's error code and `Allow` header.
type RefusalId = (&'static str, Option<&'static str>);

thread_local! {
    /// What [`respond_at_once`] sends, by error code and `Allow` (a handful of fixed refusals).
    static AT_ONCE: RefCell<Vec<(RefusalId, Parts)>> = const { RefCell::new(Vec::new()) };
}

fn respond(reply: Reply) -> Result<web_sys::Response, JsValue> {
    let (body, status, headers) = parts(reply)?;
    json_response(&body, status, &headers)
}

/// A reply's body as a JS string, its status and its headers; its log line goes to the log.
fn parts(reply: Reply) -> Result<Parts, JsValue> {
    if let Some(line) = &reply.log {
        console_error!("{} {line}", reply.status);
    }
    let headers = base_headers(reply.www_authenticate)?;
    let headers = match (reply.allow, reply.retry_after) {
        (None, None) => headers,
        (allow, retry_after) => {
            let own = web_sys::Headers::new_with_headers(&headers)?;
            if let Some(allow) = allow {
                own.set("Allow", allow)?;
            }
            if let Some(seconds) = retry_after {
                own.set("Retry-After", &seconds.to_string())?;
            }
            own
        }
    };
    let (body, status) = (&reply.body, reply.status);
    if !matches!(status, 401 | 403) {
        return Ok((JsValue::from_str(body), status, headers));
    }
    let body = REFUSALS.with_borrow_mut(|cached| {
        let known = cached.iter().find(|(text, _)| text == body);
        match known {
            Some((_, js)) => js.clone(),
            None => {
                let js = JsValue::from_str(body);
                if cached.len() < MAX_CACHED_REFUSALS {
                    cached.push((body.clone(), js.clone()));
                }
                js
            }
        }
    });
    Ok((body, status, headers))
}

/// Refusal bodies kept as JS strings; each is one of a few fixed texts.
const MAX_CACHED_REFUSALS: usize = 16;

thread_local! {
    /// The bodies of 401 and 403 answers (a missing, malformed, unknown, revoked or expired key,
    /// or another project's), which never vary, as JS strings: decoding one from wasm memory on
    /// every refusal cost about 11 µs in workerd (`TextDecoder`, bench/profile.mjs).
    static REFUSALS: RefCell<Vec<(String, JsValue)>> = const { RefCell::new(Vec::new()) };
}

#[wasm_bindgen(inline_js = "export function json_response(body, status, headers) {
    return new Response(body, { status, headers });
}
export function request_header(request, name) {
    return request.headers.get(name);
}")]
extern "C" {
    /// One call across the boundary where `ResponseInit` takes three.
    #[wasm_bindgen(catch)]
    fn json_response(
        body: &JsValue,
        status: u16,
        headers: &web_sys::Headers,
    ) -> Result<web_sys::Response, JsValue>;

    /// `request.headers.get(name)` with a name made once per isolate: a Rust `&str` would be
    /// decoded into a new JS string on every call (about 3 µs in workerd, bench/profile.mjs), and
    /// bringing `headers` across first would take a table slot in Wasm. It cannot throw: reading
    /// `headers` does not, nor does `get` with a valid name.
    fn request_header(request: &web_sys::Request, name: &JsValue) -> Option<String>;
}

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, for the ingest origin.
    #[wasm_bindgen(catch, js_name = fetch)]
    fn fetch_outbound(request: &web_sys::Request) -> Result<Promise, JsValue>;

    /// A `ReadableStreamDefaultReader` of a request body.
    type BodyReader;
    #[wasm_bindgen(method, catch)]
    fn read(this: &BodyReader) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn cancel(this: &BodyReader) -> Result<Promise, JsValue>;
}

thread_local! {
    /// Names of the headers every verify or ingest call reads.
    static AUTHORIZATION: JsValue = JsValue::from_str("authorization");
    static PROJECT: JsValue = JsValue::from_str(PROJECT_HEADER);
}

thread_local! {
    /// The headers every JSON answer carries, one set per `WWW-Authenticate` challenge, built
    /// once per isolate: `new Response` copies them, and setting them one by one on every answer
    /// cost about 12 µs per request.
    static BASE_HEADERS: RefCell<Vec<(Option<&'static str>, web_sys::Headers)>> = const { RefCell::new(Vec::new()) };
}

fn base_headers(challenge: Option<&'static str>) -> Result<web_sys::Headers, JsValue> {
    let cached = BASE_HEADERS.with_borrow(|all| {
        all.iter()
            .find(|(c, _)| *c == challenge)
            .map(|(_, h)| h.clone())
    });
    if let Some(headers) = cached {
        return Ok(headers);
    }
    let headers = web_sys::Headers::new()?;
    headers.set("Content-Type", "application/json; charset=utf-8")?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    if let Some(challenge) = challenge {
        headers.set("WWW-Authenticate", challenge)?;
    }
    BASE_HEADERS.with_borrow_mut(|all| all.push((challenge, headers.clone())));
    Ok(headers)
}
