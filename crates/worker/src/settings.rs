//! The deployment's vars and secrets (wrangler.toml `[vars]`, `wrangler secret put`), read once
//! per isolate: a deploy or a secret change starts new isolates, so they never change under one.
//! `ADMIN_TOKEN` is kept only as its SHA-256 digest and length (`api::AdminToken`).

use lumiqtrace_core::api::{self, AdminToken, Config};
use lumiqtrace_core::changes::DEFAULT_REFRESH_MS;
use lumiqtrace_core::time::{parse_seconds, Millis};
use lumiqtrace_core::usage::{DEFAULT_FLUSH_MS, DEFAULT_QUIET_MS, MAX_FLUSH_MS};
use sha2::{Digest, Sha256};
use std::cell::OnceCell;
use std::rc::Rc;
use worker::{console_error, Env};

/// What the shell reads from `env` besides its bindings.
pub struct Settings {
    /// `ADMIN_TOKEN` (secret, as its digest), `ROTATION_GRACE_SECONDS`,
    /// `CHANGES_REFRESH_SECONDS`, `USAGE_QUIET_SECONDS`.
    pub config: Config,
    /// `CHANGES_OVERLAY`: anything but `"off"` keeps the change log on.
    pub overlay_on: bool,
    /// `INGEST_ORIGIN`: where authorized ingest calls go; `None`: answer 202.
    pub ingest_origin: Option<String>,
    /// `GITHUB_KEYS_URL`: GitHub's public-keys document; `None`: GitHub's own.
    pub github_keys_url: Option<String>,
    /// `USAGE_FLUSH_SECONDS`, in milliseconds: how long an isolate holds counted uses before it
    /// reports them; at most `usage::MAX_FLUSH_MS`.
    pub flush_ms: Millis,
}

thread_local! {
    static SETTINGS: OnceCell<Rc<Settings>> = const { OnceCell::new() };
}

impl Settings {
    /// This isolate's settings, read from `env` on first use.
    pub fn get(env: &Env) -> Rc<Settings> {
        SETTINGS.with(|cell| Rc::clone(cell.get_or_init(|| Rc::new(Self::read(env)))))
    }

    fn read(env: &Env) -> Self {
        Self {
            config: config(env),
            overlay_on: var(env, "CHANGES_OVERLAY").is_none_or(|v| v.trim() != "off"),
            ingest_origin: var(env, "INGEST_ORIGIN"),
            github_keys_url: var(env, "GITHUB_KEYS_URL"),
            flush_ms: seconds(env, "USAGE_FLUSH_SECONDS", DEFAULT_FLUSH_MS).min(MAX_FLUSH_MS),
        }
    }
}

/// A var holding a number of seconds, in milliseconds; `default` when unset or not a number
/// (logged).
fn seconds(env: &Env, name: &str, default: Millis) -> Millis {
    match var(env, name).map(|s| parse_seconds(&s)) {
        Some(Some(ms)) => ms,
        Some(None) => {
            console_error!(
                "{name} is not a number of seconds; using {}",
                default / 1000
            );
            default
        }
        None => default,
    }
}

/// A var or secret (both are plain strings in `env`), if set and not blank.
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
        // Trimmed as the token a caller presents is: a secret saved with a trailing newline still works.
        admin_token: var(env, "ADMIN_TOKEN").map(|token| admin_token(token.trim())),
        grace_ms: grace_seconds.saturating_mul(1000),
        refresh_ms: seconds(env, "CHANGES_REFRESH_SECONDS", DEFAULT_REFRESH_MS),
        quiet_ms: seconds(env, "USAGE_QUIET_SECONDS", DEFAULT_QUIET_MS),
    }
}

/// The secret `token` as the core checks it: its SHA-256 and its length in characters. The
/// plaintext goes no further than this function.
fn admin_token(token: &str) -> AdminToken {
    AdminToken {
        sha256: Sha256::digest(token.as_bytes()).into(),
        chars: token.chars().count(),
    }
}
