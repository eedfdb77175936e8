//! The Workers KV adapter: the only module that touches KV. It implements [`Store`] over the
//! `KEYS` binding; a missing binding or any KV error becomes a [`StoreError`] (the caller fails
//! closed).
//!
//! Platform limits this relies on (Cloudflare's documentation): KV is eventually consistent,
//! other locations may see a write up to ~60 s late; at most 1 write per second to the same
//! key; metadata up to 1024 bytes; a list page holds up to 1000 names. Reads use KV's default
//! edge cache (`cacheTtl` 60 s, its minimum): we add no cache of our own.

use crate::store::{Listed, Store, StoreError};
use worker::{Env, KvStore};

/// The KV namespace binding named in `wrangler.toml`.
pub const BINDING: &str = "KEYS";

/// [`Store`] over Workers KV.
pub struct Kv(Result<KvStore, String>);

impl Kv {
    pub fn bind(env: &Env) -> Self {
        Self(
            env.kv(BINDING)
                .map_err(|e| format!("KV binding {BINDING}: {e}")),
        )
    }

    fn kv(&self) -> Result<&KvStore, StoreError> {
        self.0.as_ref().map_err(|e| StoreError(e.clone()))
    }
}

fn failed(op: &str, name: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("KV {op} {name}: {e}"))
}

impl Store for Kv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let read = self.kv()?.get(key).text().await;
        read.map_err(|e| failed("get", key, e))
    }

    async fn put(&self, key: &str, value: &str, metadata: Option<&str>) -> Result<(), StoreError> {
        let mut put = self
            .kv()?
            .put(key, value)
            .map_err(|e| failed("put", key, e))?;
        if let Some(meta) = metadata {
            let meta: serde_json::Value =
                serde_json::from_str(meta).map_err(|e| failed("put", key, e))?;
            put = put.metadata(meta).map_err(|e| failed("put", key, e))?;
        }
        put.execute().await.map_err(|e| failed("put", key, e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let kv = self.kv()?;
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let mut list = kv.list().prefix(prefix.to_owned());
            if let Some(c) = cursor.take() {
                list = list.cursor(c);
            }
            let page = list
                .execute()
                .await
                .map_err(|e| failed("list", prefix, e))?;
            out.extend(page.keys.into_iter().map(|k| Listed {
                name: k.name,
                metadata: k.metadata.map(|m| m.to_string()),
            }));
            match page.cursor {
                Some(c) if !page.list_complete && !c.is_empty() => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }
}
