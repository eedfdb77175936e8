//! LumiqTrace edge key authorizer, the platform-free core: key format, records, the
//! rotate/revoke/grace state machine, the authorize decision, admin operations, the change log's
//! logic, leak reports and the HTTP contract as plain types. Tested on the host; the Cloudflare
//! Worker shell (`lumiqtrace-worker`) binds it to the platform.
//!
//! Size of the wasm (the gzip bundle must stay under 256 KiB, docs/performance.md): maps and sets
//! are filled with `extend`, not `collect` (which sorts first: a stable sort per item type), and
//! JSON is read with `serde_json::from_slice` only (one parser).

pub mod admin;
pub mod api;
pub mod changes;
pub mod error;
pub mod forward;
pub mod json_object;
pub mod key;
pub mod leaks;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod orgs;
pub mod record;
pub mod repo;
pub mod signature;
pub mod store;
pub mod throttle;
pub mod time;
pub mod usage;
pub mod verify;
