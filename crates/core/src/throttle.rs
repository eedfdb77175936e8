//! Throttling of failed admin sign-ins, per client: the admin token check the shell runs on every
//! admin route before it reads a body ([`admin_sign_in`]). Failures are counted by the Workers
//! Rate Limiting binding (`ADMIN_SIGNIN_LIMITER` in wrangler.toml, behind [`AttemptLimiter`]);
//! a client over its budget is answered 429 `too_many_attempts` with `Retry-After`, its right
//! token included, for [`PERIOD_SECONDS`] after this isolate saw it go over ([`Throttled`]).
//!
//! Only a failed sign-in that sent some `Authorization` counts: successes never do, and neither
//! does a request without credentials (it guesses nothing). A client is its `CF-Connecting-IP`
//! (set by Cloudflare's edge, and by `wrangler dev`), so an admin is slowed only by failures
//! from its own address; requests without that header share one budget ([`UNKNOWN_CLIENT`]).

use crate::api::{sign_in, Config};
use crate::error::ApiError;
use crate::orgs::{Actor, TokenAuthority, Tokens};
use crate::time::Millis;
use std::cell::RefCell;
use std::collections::HashMap;

/// The request header that names the client: the visitor's IP address, which Cloudflare sets
/// on every request (<https://developers.cloudflare.com/fundamentals/reference/http-headers/>).
pub const CLIENT_HEADER: &str = "cf-connecting-ip";
/// The client of a request without [`CLIENT_HEADER`].
pub const UNKNOWN_CLIENT: &str = "unknown";
/// The limiter's period (60 s) and the `Retry-After` of a 429: equal to `simple.period` of
/// `ADMIN_SIGNIN_LIMITER` in wrangler.toml (the binding allows 10 or 60, and does not say
/// when its window ends:
/// <https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/>).
pub const PERIOD_SECONDS: u32 = 60;
/// At most this many throttled clients are remembered per isolate; past it, expired entries
/// are dropped and, if none has expired, a new one is not kept (the binding still refuses
/// that client's failures).
pub const MAX_THROTTLED: usize = 1024;

/// Counts one failed sign-in of `client`.
#[allow(async_fn_in_trait)] // single-threaded Workers runtime: no `Send` bound wanted
pub trait AttemptLimiter {
    /// `false`: the client is over its budget. A limiter that is missing or fails answers
    /// `true` (throttling fails open; the admin token still decides) and logs why itself.
    async fn allow(&self, client: &str) -> bool;
}

/// The clients this isolate saw go over their budget, and until when (ms) they are refused.
#[derive(Debug, Default)]
pub struct Throttled(HashMap<String, Millis>);

impl Throttled {
    fn is_throttled(&self, client: &str, now: Millis) -> bool {
        self.0.get(client).is_some_and(|&until| now < until)
    }

    fn throttle(&mut self, client: &str, now: Millis) {
        if self.0.len() >= MAX_THROTTLED {
            self.0.retain(|_, until| now < *until);
        }
        if self.0.len() < MAX_THROTTLED || self.0.contains_key(client) {
            let until = now + Millis::from(PERIOD_SECONDS) * 1000;
            self.0.insert(client.to_owned(), until);
        }
    }
}

/// Checks the admin token of a request from `client` (its [`CLIENT_HEADER`], if any) at `now`:
/// 429 [`ApiError::TooManyAttempts`] if the client is throttled, else what [`sign_in`]
/// decides (the operator's token, or an organization admin token); a failure that sent
/// `Authorization` is counted by `limiter`, and the one that goes over the budget is already
/// answered 429. An authority that cannot answer (503) counts nothing.
pub async fn admin_sign_in<L: AttemptLimiter, T: TokenAuthority>(
    config: &Config,
    tokens: &Tokens<'_, T>,
    authorization: Option<&str>,
    client: Option<&str>,
    limiter: &L,
    throttled: &RefCell<Throttled>,
    now: Millis,
) -> Result<Actor, ApiError> {
    let client = client.map(str::trim).filter(|c| !c.is_empty());
    let client = client.unwrap_or(UNKNOWN_CLIENT);
    if throttled.borrow().is_throttled(client, now) {
        return Err(ApiError::TooManyAttempts(PERIOD_SECONDS));
    }
    let refused = match sign_in(config, tokens, authorization, now).await {
        Err(e @ (ApiError::AdminUnauthorized | ApiError::AdminDisabled(_))) => e,
        decided => return decided,
    };
    let guessed = authorization.is_some_and(|a| !a.trim().is_empty());
    // No `RefCell` borrow is held across the limiter's await.
    if guessed && !limiter.allow(client).await {
        throttled.borrow_mut().throttle(client, now);
        return Err(ApiError::TooManyAttempts(PERIOD_SECONDS));
    }
    Err(refused)
}

#[cfg(test)]
mod tests;
