//! The Worker's `fetch` entry: turns a `worker::Request` into the core's [`HttpRequest`], calls
//! the core, and turns its [`Reply`] into a response (or forwards an authorized ingest call).
//! A body is read only once the caller is authenticated (the admin token, with failed sign-ins
//! throttled, or GitHub's signature headers), and only up to its route's limit (`body`).
//! Per-isolate state here: the overlay of recent key changes (with the records read
//! lately), shared by every request the isolate serves. After the answer, in the background
//! (`waitUntil`), it is refreshed when due, and kept reads due for renewal are read again. The
//! settings, GitHub's keys, the sign-in throttle and the usage tally keep their state in their
//! own modules.
//!
//! `/admin/` (the dashboard) and `/openapi.json` never reach this code: the assets binding
//! (`[assets]` in wrangler.toml) serves files of `public/` before the worker runs.

use crate::admin_tokens::DoTokens;
use crate::body;
use crate::change_log;
use crate::forward::forward;
use crate::github;
use crate::kv::Kv;
use crate::respond::respond;
use crate::settings::Settings;
use crate::signin::{self, SignInLimiter};
use crate::usage::{self, UsageClient};
use lumiqtrace_core::admin::Keys;
use lumiqtrace_core::api::{self, HttpRequest, Outcome, Reply, Usage};
use lumiqtrace_core::changes::{self, Overlay};
use lumiqtrace_core::error::ApiError;
use lumiqtrace_core::orgs::{Actor, TokenCache, Tokens};
use lumiqtrace_core::repo::Repo;
use lumiqtrace_core::signature::{KEY_ID_HEADER as GITHUB_KEY_ID, SIGNATURE_HEADER};
use lumiqtrace_core::throttle;
use lumiqtrace_core::verify::{self, PROJECT_HEADER};
use std::cell::RefCell;
use std::rc::Rc;
use worker::{console_error, event, Context, Env, Request, Response, Result};

thread_local! {
    /// This isolate's copy of the recent key changes, shared by every request it serves.
    static OVERLAY: Rc<RefCell<Overlay>> = Rc::default();
    /// This isolate's recent positive answers about organization admin tokens.
    static TOKEN_CACHE: Rc<RefCell<TokenCache>> = Rc::default();
}

/// Every request. An error no reply covered (the runtime refused to build a response, say)
/// becomes the generic JSON 500, its detail in the log.
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let answer = match handle(req, &env).await {
        Ok(response) => Ok(response),
        Err(e) => respond(Reply::error(&ApiError::Internal(e.to_string()))),
    };
    refresh_in_background(&env, &ctx);
    renew_in_background(&env, &ctx);
    // Uses counted by this request (or earlier ones) are reported later, in the background.
    usage::schedule_report(&env, &ctx, Settings::get(&env).flush_ms);
    answer
}

/// Starts the overlay's refresh after the answer, if one is due (`changes::begin_background`:
/// the overlay is live and its last refresh began an interval ago), without delaying the answer.
fn refresh_in_background(env: &Env, ctx: &Context) {
    let settings = Settings::get(env);
    let interval = settings.config.refresh_ms;
    let feed = change_log::nearest(env, settings.overlay_on, interval);
    let overlay = OVERLAY.with(Rc::clone);
    let now = crate::clock();
    if !changes::begin_background(&overlay, &feed, now, interval) {
        return;
    }
    ctx.wait_until(async move {
        if let Some(line) = changes::refresh(&overlay, &feed, now, interval).await {
            console_error!("{line}");
        }
    });
}

/// Reads again, after the answer, the keys whose kept KV read this request found due for
/// renewal (`Overlay::claim_renewal`), so a key in steady use never waits on KV after its first
/// request and its requests in flight when a read expires do not each read KV.
fn renew_in_background(env: &Env, ctx: &Context) {
    let overlay = OVERLAY.with(Rc::clone);
    let due = overlay.borrow_mut().take_renewals();
    if due.is_empty() {
        return;
    }
    let env = env.clone();
    let now = crate::clock();
    ctx.wait_until(async move {
        if let Some(line) = verify::renew(&Kv::new(&env), &overlay, due, now).await {
            console_error!("{line}");
        }
    });
}

async fn handle(req: Request, env: &Env) -> Result<Response> {
    let now = crate::clock();
    // The method as the runtime read it: `worker::Method` turns an extension method into GET.
    // A `HEAD` is answered as the `GET` it names (the core routes it so); the runtime sends no
    // body with the answer.
    let method = req.inner().method();
    // Path and query as the runtime serialized them (percent-encoded): the worker crate's
    // `path()`, and what follows the first `?`, which a serialized path never holds. Parsing
    // the URL again (`Request::url`) would bring in the `url` crate and its IDNA tables for
    // nothing: about 110 KB of wasm data and 80 KB of code.
    let path = req.path();
    let url = req.inner().url();
    let query = url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(q));
    let path = path.as_str();
    let headers = req.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let github = path == api::GITHUB_ROUTE;
    let (github_key_id, github_signature) = match github {
        true => (header(GITHUB_KEY_ID), header(SIGNATURE_HEADER)),
        false => (None, None),
    };
    let authorization = header("authorization");
    let settings = Settings::get(env);
    let cache = github::cache();
    let signatures =
        github.then(|| github::signatures(settings.github_keys_url.as_deref(), &cache));
    let authority = DoTokens::new(env);
    let token_cache = TOKEN_CACHE.with(Rc::clone);
    let tokens = Tokens {
        authority: &authority,
        cache: &token_cache,
    };
    // Who is calling is settled before a byte of body is read; a refused body is never kept.
    let refused = if api::is_admin_route(path) {
        let limiter = SignInLimiter::bind(env);
        let client = header(throttle::CLIENT_HEADER);
        let throttled = signin::throttled();
        let signed_in = throttle::admin_sign_in(
            &settings.config,
            &tokens,
            authorization.as_deref(),
            client.as_deref(),
            &limiter,
            &throttled,
            now,
        );
        signed_in.await.err()
    } else if let (Some(signatures), "POST") = (&signatures, method.as_str()) {
        let (key_id, signature) = (github_key_id.as_deref(), github_signature.as_deref());
        let checked = signatures.check_headers(key_id, signature, now).await;
        checked.err().map(ApiError::from)
    } else {
        None
    };
    if let Some(refusal) = refused {
        body::refuse(&req).await;
        return respond(Reply::error(&refusal));
    }
    let (content_type, body) = match api::body_limit(&method, path) {
        Some(limit) => match body::read_limited(&req, limit).await {
            Ok(body) => (header("content-type"), body),
            Err(ApiError::BodyTooLarge(_)) => {
                return respond(Reply::error(&api::body_too_large(path, limit)))
            }
            Err(e) => return respond(Reply::error(&e)),
        },
        None => (None, Vec::new()),
    };
    let project = header(PROJECT_HEADER);
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
    let store = Kv::new(env);
    let feed = change_log::nearest(env, settings.overlay_on, settings.config.refresh_ms);
    let overlay = OVERLAY.with(Rc::clone);
    let keys = Keys {
        repo: Repo::new(&store),
        feed: &feed,
        overlay: &overlay,
        // The core signs an admin caller in again and acts as it; ingest names no actor.
        actor: &Actor::Operator,
    };
    if let Some(signatures) = &signatures {
        let reply = api::github_secret_scanning(&keys, &tokens, signatures, &request, now);
        return respond(reply.await);
    }
    let tally = usage::tally();
    let usage = Usage {
        tally: &tally,
        source: &UsageClient { env },
    };
    let handled = api::handle(&keys, &usage, &settings.config, &tokens, &request, now);
    let reply = match handled.await {
        Outcome::Reply(reply) => reply,
        Outcome::Forward { grant, target, log } => {
            if let Some(line) = log {
                console_error!("{line}");
            }
            match &settings.ingest_origin {
                // The body went to the origin (or failed on the way): nothing left to discard.
                Some(origin) => {
                    return match forward(&req, &method, &target, origin, &grant).await {
                        Ok(response) => Ok(response),
                        Err(e) => respond(Reply::error(&e)),
                    }
                }
                None => api::accepted(&grant),
            }
        }
    };
    if !matches!(method.as_str(), "GET" | "HEAD") {
        // Whatever the answer, a body not yet read is never read to its end: small ones are
        // drained (the connection stays usable), the rest cancelled. GET and HEAD carry none.
        body::refuse(&req).await;
    }
    respond(reply)
}
