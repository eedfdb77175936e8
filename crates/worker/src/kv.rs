//! The core's [`Store`] over Workers KV (`worker::KvStore`, binding `KEYS`): the only module that
//! touches KV. A missing binding or any KV error becomes a [`StoreError`] (callers fail closed).
//!
//! Platform limits this relies on (Cloudflare's KV documentation): KV is eventually consistent,
//! other locations may see a write up to ~60 s late; at most 1 write per second to one key;
//! metadata up to 1024 bytes; a list page holds up to 1000 names; a bulk get takes up to 100
//! names and counts as one operation. Reads use KV's default edge cache (`cacheTtl` 60 s).

use lumiqtrace_core::store::{Listed, Store, StoreError};
use std::cell::OnceCell;
use worker::{Env, KvStore};

/// The KV namespace binding named in `wrangler.toml`.
pub const BINDING: &str = "KEYS";

/// [`Store`] over the `KEYS` namespace of `env`, bound on first use (most refusals never reach
/// storage).
pub struct Kv<'a> {
    env: &'a Env,
    store: OnceCell<Result<KvStore, String>>,
}

impl<'a> Kv<'a> {
    pub fn new(env: &'a Env) -> Self {
        Self {
            env,
            store: OnceCell::new(),
        }
    }

    fn store(&self) -> Result<&KvStore, StoreError> {
        let bound = self.store.get_or_init(|| {
            self.env
                .kv(BINDING)
                .map_err(|e| format!("KV binding {BINDING} is unusable: {e}"))
        });
        bound.as_ref().map_err(|e| StoreError(e.clone()))
    }
}

/// A KV error as the core's [`StoreError`], naming the operation and the name it was on.
fn failed<'a>(op: &'a str, name: &'a str) -> impl FnOnce(worker::KvError) -> StoreError + 'a {
    move |e| StoreError(format!("KV {op} {name}: {e}"))
}

impl Store for Kv<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store()?
            .get(key)
            .text()
            .await
            .map_err(failed("get", key))
    }

    /// One bulk read (`KvStore::get_bulk`), in the order of `keys`.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        let first = keys.first().map_or("", String::as_str);
        let found = self
            .store()?
            .get_bulk(keys)
            .text()
            .await
            .map_err(failed("get", first))?;
        Ok(keys
            .iter()
            .map(|k| found.get(k).cloned().flatten())
            .collect())
    }

    async fn put(&self, key: &str, value: &str, metadata: Option<&str>) -> Result<(), StoreError> {
        let mut put = self.store()?.put(key, value).map_err(failed("put", key))?;
        if let Some(meta) = metadata {
            let meta: serde_json::Value = serde_json::from_slice(meta.as_bytes())
                .map_err(|e| StoreError(format!("KV put {key}: metadata is not JSON: {e}")))?;
            put = put.metadata(meta).map_err(failed("put", key))?;
        }
        put.execute().await.map_err(failed("put", key))
    }

    /// Every name under `prefix` with its metadata, page after page.
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let store = self.store()?;
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let mut list = store.list().prefix(prefix.to_owned());
            if let Some(cursor) = cursor.take() {
                list = list.cursor(cursor);
            }
            let page = list.execute().await.map_err(failed("list", prefix))?;
            out.extend(page.keys.into_iter().map(|key| {
                Listed {
                    name: key.name,
                    metadata: key
                        .metadata
                        .filter(serde_json::Value::is_object)
                        .map(|m| m.to_string()),
                }
            }));
            match page.cursor.filter(|c| !c.is_empty()) {
                Some(next) if !page.list_complete => cursor = Some(next),
                _ => return Ok(out),
            }
        }
    }
}
