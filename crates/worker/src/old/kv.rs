//! The Workers KV adapter: the only module that touches KV. It implements [`Store`] over the
//! `KEYS` binding; a missing binding or any KV error becomes a [`StoreError`] (callers fail
//! closed). It calls the binding's JavaScript API directly rather than through `worker::KvStore`,
//! whose serde bridge for options and metadata costs about 20 KB of wasm.
//!
//! Platform limits this relies on (Cloudflare's documentation): KV is eventually consistent,
//! other locations may see a write up to ~60 s late; at most 1 write per second to the same
//! key; metadata up to 1024 bytes; a list page holds up to 1000 names. Reads use KV's default
//! edge cache (`cacheTtl` 60 s, its minimum): we add no cache of our own.

use crate::entry::binding;
use crate::promise;
use crate::store::{Listed, Store, StoreError};
use js_sys::{Array, Object, Promise, Reflect, JSON};
use std::cell::OnceCell;
use wasm_bindgen::prelude::*;

/// The KV namespace binding named in `wrangler.toml`.
pub const BINDING: &str = "KEYS";

#[wasm_bindgen]
extern "C" {
    /// The runtime's `KVNamespace` object.
    type KvNamespace;
    #[wasm_bindgen(method, catch)]
    fn get(this: &KvNamespace, key: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn put(
        this: &KvNamespace,
        key: &str,
        value: &str,
        options: &Object,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn list(this: &KvNamespace, options: &Object) -> Result<Promise, JsValue>;
    /// Bulk read: `get(names[], "text")` → `Map<name, string | null>`, one operation.
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_bulk(this: &KvNamespace, keys: &Array, kind: &str) -> Result<Promise, JsValue>;
}

/// [`Store`] over Workers KV. The binding is looked up on first use (most refusals never reach
/// storage), then kept for the isolate's life like the vars `entry` reads once: bindings only
/// change with a deploy, which starts new isolates. Looking it up per request cost ~8 µs.
pub struct Kv<'a> {
    env: &'a worker::Env,
}

thread_local! {
    static NAMESPACE: OnceCell<KvNamespace> = const { OnceCell::new() };
}

impl<'a> Kv<'a> {
    pub fn bind(env: &'a worker::Env) -> Self {
        Self { env }
    }

    /// Runs `op` on the binding, or fails (closed) if there is none.
    fn with_kv<T>(&self, op: impl FnOnce(&KvNamespace) -> T) -> Result<T, StoreError> {
        NAMESPACE.with(|cached| {
            if cached.get().is_none() {
                if let Some(found) = binding(self.env, BINDING) {
                    let _ = cached.set(found);
                }
            }
            match cached.get() {
                Some(kv) => Ok(op(kv)),
                None => Err(StoreError(format!("KV binding {BINDING} is missing"))),
            }
        })
    }
}

fn failed(op: &str, name: &str, e: JsValue) -> StoreError {
    StoreError(format!("KV {op} {name}: {}", promise::error_text(&e)))
}

async fn settle(
    op: &str,
    name: &str,
    promise: Result<Promise, JsValue>,
) -> Result<JsValue, StoreError> {
    promise::settle(promise)
        .await
        .map_err(|e| failed(op, name, e))
}

fn field(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn set(object: &Object, name: &str, value: &JsValue) -> Result<(), JsValue> {
    Reflect::set(object, &JsValue::from_str(name), value).map(drop)
}

impl Store for Kv<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let value = settle("get", key, self.with_kv(|kv| kv.get(key))?).await?;
        Ok(value.as_string())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        let first = keys.first().map_or("", String::as_str);
        let names: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
        let found = settle(
            "get",
            first,
            self.with_kv(|kv| kv.get_bulk(&names, "text"))?,
        )
        .await?;
        let map: js_sys::Map = found.unchecked_into();
        Ok(keys
            .iter()
            .map(|k| map.get(&JsValue::from_str(k)).as_string())
            .collect())
    }

    async fn put(&self, key: &str, value: &str, metadata: Option<&str>) -> Result<(), StoreError> {
        let options = Object::new();
        if let Some(meta) = metadata {
            let meta = JSON::parse(meta).map_err(|e| failed("put", key, e))?;
            set(&options, "metadata", &meta).map_err(|e| failed("put", key, e))?;
        }
        let put = self.with_kv(|kv| kv.put(key, value, &options))?;
        settle("put", key, put).await?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = JsValue::UNDEFINED;
        loop {
            let options = Object::new();
            set(&options, "prefix", &JsValue::from_str(prefix))
                .and_then(|()| set(&options, "cursor", &cursor))
                .map_err(|e| failed("list", prefix, e))?;
            let page = settle("list", prefix, self.with_kv(|kv| kv.list(&options))?).await?;
            for entry in Array::from(&field(&page, "keys")).iter() {
                let metadata = field(&entry, "metadata");
                out.push(Listed {
                    name: field(&entry, "name").as_string().unwrap_or_default(),
                    metadata: if metadata.is_object() {
                        JSON::stringify(&metadata).ok().map(String::from)
                    } else {
                        None
                    },
                });
            }
            cursor = field(&page, "cursor");
            let complete = field(&page, "list_complete").as_bool().unwrap_or(true);
            if complete || cursor.as_string().is_none_or(|c| c.is_empty()) {
                return Ok(out);
            }
        }
    }
}
