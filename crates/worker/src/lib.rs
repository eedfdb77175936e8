//! The Cloudflare Worker shell: binds `lumiqtrace_core` to the platform (the fetch entry, KV,
//! the change-log Durable Object and the forwarder). The previous shell's files are kept under
//! `old/` (not compiled) while it is rewritten on the worker crate's own types.
