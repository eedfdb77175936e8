//! The Workers KV adapter: the only module that touches KV. It implements [`Store`] over the
//! `KEYS` binding; a missing binding or any KV error becomes a [`StoreError`] (callers fail
//! closed). It calls the binding's JavaScript API directly rather than through `worker::KvStore`,
//! whose serde bridge for options and metadata costs about 20 KB of wasm.
//!
//! Platform limits this relies on (Cloudflare's documentation): KV is eventually consistent,
//! other locations may see a write up to ~60 s late; at most 1 write per second to the same
//! key; metadata up to 1024 bytes; a list page holds up to 1000 names. Reads use KV's default
//! edge cache (`cacheTtl` 60 s, its minimum): we add no cache of our own.

use crate::store::{Listed, Store, StoreError};
use js_sys::{Array, Object, Promise, Reflect, JSON};
use std::cell::OnceCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

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

/// [`Store`] over Workers KV. The binding is looked up on first use: most refusals never
/// reach storage.
pub struct Kv<'a> {
    env: &'a worker::Env,
    namespace: OnceCell<Option<KvNamespace>>,
}

impl<'a> Kv<'a> {
    pub fn bind(env: &'a worker::Env) -> Self {
        Self {
            env,
            namespace: OnceCell::new(),
        }
    }

    fn kv(&self) -> Result<&KvNamespace, StoreError> {
        let namespace = self.namespace.get_or_init(|| {
            let binding = Reflect::get(self.env, &JsValue::from_str(BINDING)).ok();
            binding
                .filter(JsValue::is_object)
                .map(JsCast::unchecked_into)
        });
        namespace
            .as_ref()
            .ok_or_else(|| StoreError(format!("KV binding {BINDING} is missing")))
    }
}

fn failed(op: &str, name: &str, e: JsValue) -> StoreError {
    let detail = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{e:?}"));
    StoreError(format!("KV {op} {name}: {detail}"))
}

async fn settle(
    op: &str,
    name: &str,
    promise: Result<Promise, JsValue>,
) -> Result<JsValue, StoreError> {
    let promise = promise.map_err(|e| failed(op, name, e))?;
    JsFuture::from(promise)
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
        let value = settle("get", key, self.kv()?.get(key)).await?;
        Ok(value.as_string())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        let first = keys.first().map_or("", String::as_str);
        let names: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
        let found = settle("get", first, self.kv()?.get_bulk(&names, "text")).await?;
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
        settle("put", key, self.kv()?.put(key, value, &options)).await?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let kv = self.kv()?;
        let mut out = Vec::new();
        let mut cursor = JsValue::UNDEFINED;
        loop {
            let options = Object::new();
            set(&options, "prefix", &JsValue::from_str(prefix))
                .and_then(|()| set(&options, "cursor", &cursor))
                .map_err(|e| failed("list", prefix, e))?;
            let page = settle("list", prefix, kv.list(&options)).await?;
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
