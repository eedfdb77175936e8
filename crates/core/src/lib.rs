//! LumiqTrace edge key authorizer, the platform-free core: key format, records, the
//! rotate/revoke/grace state machine, the authorize decision, admin operations, the change log's
//! logic, leak reports and the HTTP contract as plain types. Tested on the host; the Cloudflare
//! Worker shell (`lumiqtrace-worker`) binds it to the platform.

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
