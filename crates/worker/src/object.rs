//! What the three Durable Objects (`KeyChanges`, `AdminTokens`, `KeyUsage`) share: the worker's
//! client of one of them ([`Client`]), and the plain answers they give. One copy of each in the
//! wasm.

use lumiqtrace_core::store::StoreError;
use serde::de::DeserializeOwned;
use std::cell::OnceCell;
use wasm_bindgen::JsValue;
use worker::{Env, Method, Request, RequestInit, Response, Result, Stub};

/// The worker's client of one object instance: binding `binding` (wrangler.toml), the instance
/// named `instance`, called `what` in errors. Its stub is made on first use: most requests
/// never call it. Every failure (binding, call, answer that does not decode) is the core's
/// [`StoreError`] naming the object and the route.
pub struct Client {
    env: Env,
    binding: &'static str,
    instance: String,
    what: &'static str,
    stub: OnceCell<std::result::Result<Stub, String>>,
}

impl Client {
    pub fn new(env: &Env, binding: &'static str, instance: &str, what: &'static str) -> Self {
        Self {
            env: env.clone(),
            binding,
            instance: instance.to_owned(),
            what,
            stub: OnceCell::new(),
        }
    }

    fn stub(&self) -> std::result::Result<&Stub, StoreError> {
        let stub = self.stub.get_or_init(|| {
            let stub = || {
                let namespace = self.env.durable_object(self.binding)?;
                namespace.id_from_name(&self.instance)?.get_stub()
            };
            let binding = self.binding;
            stub().map_err(|e| format!("Durable Object binding {binding} is unusable: {e}"))
        });
        stub.as_ref().map_err(|e| StoreError(e.clone()))
    }

    /// One call: `method` on route `path` with `body` as text; the status and body text.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> std::result::Result<(u16, String), StoreError> {
        let stub = self.stub()?;
        let failed = |e: worker::Error| StoreError(format!("{} {path}: {e}", self.what));
        let mut init = RequestInit::new();
        init.with_method(method).with_body(body.map(JsValue::from));
        // The host is never read: an object routes on the path alone.
        let url = format!("https://object{path}");
        let req = Request::new_with_init(&url, &init).map_err(failed)?;
        let mut res = stub.fetch_with_request(req).await.map_err(failed)?;
        let text = res.text().await.map_err(failed)?;
        Ok((res.status_code(), text))
    }

    /// An answer of route `path`, decoded.
    pub fn decode<T: DeserializeOwned>(
        &self,
        path: &str,
        text: &str,
    ) -> std::result::Result<T, StoreError> {
        serde_json::from_slice(text.as_bytes())
            .map_err(|e| StoreError(format!("{} {path}: {e}", self.what)))
    }

    /// The error for an answer route `path` should not give.
    pub fn unexpected(&self, path: &str, status: u16, text: &str) -> StoreError {
        StoreError(format!("{} {path} answered {status}: {text}", self.what))
    }
}

/// An object's answer: `status` with `body` (JSON text).
pub fn reply(status: u16, body: String) -> Result<Response> {
    Ok(Response::builder()
        .with_status(status)
        .fixed(body.into_bytes()))
}

/// 400 `{"error": "…"}`: a body that does not decode.
pub fn bad_request(error: serde_json::Error) -> Result<Response> {
    reply(
        400,
        serde_json::json!({ "error": error.to_string() }).to_string(),
    )
}
