//! LumiqTrace edge key authorizer: a pure core (key format, records, the rotate/revoke/grace
//! state machine, the authorize decision and the HTTP contract), tested on the host, and on
//! `wasm32` the Cloudflare Worker shell around it (`entry`, `kv`, `changes_do`).

pub mod admin;
pub mod api;
pub mod changes;
pub mod error;
pub mod executor;
pub mod forward;
pub mod ingest;
pub mod json;
pub mod key;
pub mod leaks;
pub mod record;
pub mod repo;
pub mod signature;
pub mod sort;
pub mod store;
pub mod throttle;
pub mod time;

#[cfg(target_arch = "wasm32")]
mod changes_do;
#[cfg(target_arch = "wasm32")]
mod entry;
#[cfg(target_arch = "wasm32")]
mod kv;
#[cfg(target_arch = "wasm32")]
mod promise;
#[cfg(target_arch = "wasm32")]
mod webcrypto;
