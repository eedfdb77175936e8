//! The Cloudflare Worker shell: binds `lumiqtrace_core` to the platform through the `worker`
//! crate. `entry` is the `#[event(fetch)]` handler; `kv` the core's `Store` over Workers KV;
//! `change_log` the `KeyChanges` Durable Object and its client; `admin_tokens` the
//! `AdminTokens` Durable Object (organization admin tokens) and its client; `github` GitHub's public keys;
//! `forward` the call on to the ingest origin; `signin` the limiter of failed admin sign-ins;
//! `usage` the isolate's tally of verifications, its reports and the `KeyUsage` Durable Object;
//! `body`, `respond` and `settings` the request body, the response and the vars around them.
//! JSON text is read with `serde_json::from_slice`, as the core reads it: `from_str` would put a
//! second copy of serde_json's parser, and of each type's decoder, into the wasm.
//! Built with worker-build as it ships (its own JS entry, which starts a fresh Wasm instance
//! after a panic).

mod admin_tokens;
mod body;
mod change_log;
mod entry;
mod forward;
mod github;
mod kv;
mod object;
mod respond;
mod settings;
mod signin;
mod usage;

pub use admin_tokens::AdminTokens;
pub use change_log::KeyChanges;
pub use usage::KeyUsage;

/// Now, in milliseconds since the Unix epoch (the runtime's clock, `Date.now()`: in Workers it
/// advances only across I/O).
pub(crate) fn clock() -> lumiqtrace_core::time::Millis {
    js_sys::Date::now() as lumiqtrace_core::time::Millis
}
