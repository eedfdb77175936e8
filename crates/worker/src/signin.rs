//! Failed admin sign-ins counted by the Workers Rate Limiting binding `ADMIN_SIGNIN_LIMITER`
//! (`[[ratelimits]]` in wrangler.toml, `worker::RateLimiter`) behind the core's
//! [`AttemptLimiter`], and this isolate's memory of the clients it saw go over their budget
//! ([`Throttled`]). The rule itself is the core's (`throttle::admin_sign_in`).

use lumiqtrace_core::throttle::{AttemptLimiter, Throttled};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::{console_error, Env, RateLimiter};

/// The binding's name in wrangler.toml.
pub const BINDING: &str = "ADMIN_SIGNIN_LIMITER";

thread_local! {
    /// Clients this isolate saw go over their budget of failed admin sign-ins.
    static THROTTLED: Rc<RefCell<Throttled>> = Rc::default();
    /// Whether a missing or unusable binding was logged (once per isolate).
    static UNBOUND_LOGGED: Cell<bool> = const { Cell::new(false) };
}

/// This isolate's throttled clients (the sign-in check borrows it for one request).
pub fn throttled() -> Rc<RefCell<Throttled>> {
    THROTTLED.with(Rc::clone)
}

/// [`AttemptLimiter`] over the `ADMIN_SIGNIN_LIMITER` binding, keyed by client. Without the
/// binding (an older wrangler.toml), or when it fails, nobody is throttled: it says so in the
/// log (once per isolate when the binding is missing).
pub struct SignInLimiter(worker::Result<RateLimiter>);

impl SignInLimiter {
    pub fn bind(env: &Env) -> Self {
        Self(env.rate_limiter(BINDING))
    }
}

impl AttemptLimiter for SignInLimiter {
    async fn allow(&self, client: &str) -> bool {
        let limiter = match &self.0 {
            Ok(limiter) => limiter,
            Err(e) => {
                if !UNBOUND_LOGGED.replace(true) {
                    console_error!("no usable {BINDING} binding ({e}): failed admin sign-ins are not throttled (see wrangler.toml)");
                }
                return true;
            }
        };
        match limiter.limit(client.to_owned()).await {
            Ok(outcome) => outcome.success,
            Err(e) => {
                console_error!("{BINDING} failed, sign-in not throttled: {e}");
                true
            }
        }
    }
}
