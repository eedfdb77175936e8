//! The `KeyChanges` Durable Object, home of the change log, and the worker's client for it
//! ([`DoFeed`]): the only module that touches Durable Objects. One instance serves every
//! location; it keeps only the last few minutes of changes (see `changes::WINDOW_MS`).
//!
//! Its storage holds one entry per changed key (`k/{hash}`: that key's recent versions as JSON),
//! so a commit writes only the keys it touches. Storage writes close the object's input gate,
//! so commits are applied one at a time: that is what serializes racing admin writes. An alarm
//! writes settled versions to KV and prunes (`changes::settle`).

use crate::api::split_url;
use crate::changes::{settle, Change, ChangeFeed, ChangeLog, Conflict, Write};
use crate::entry::{answer, binding};
use crate::executor;
use crate::json;
use crate::key::KeyHash;
use crate::kv::Kv;
use crate::promise::{self, error_text};
use crate::repo::Repo;
use crate::store::StoreError;
use crate::time::Millis;
use js_sys::{Map, Promise};
use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use worker::{console_error, Env};

/// The Durable Object namespace binding named in `wrangler.toml`.
pub const BINDING: &str = "KEY_CHANGES";
/// The one instance every location talks to.
const INSTANCE: &str = "global";
const ENTRY: &str = "k/";

// The runtime's Durable Object API, bound directly: worker's `#[durable_object]` glue and
// its error type cost about 9 KB of wasm (4 KB gzip) for the two calls this object answers.
#[wasm_bindgen]
extern "C" {
    /// `DurableObjectState`.
    pub type ObjectState;
    #[wasm_bindgen(method, getter)]
    fn storage(this: &ObjectState) -> Storage;

    /// `DurableObjectStorage`.
    type Storage;
    #[wasm_bindgen(method, catch)]
    fn list(this: &Storage) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn put(this: &Storage, key: &str, value: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn delete(this: &Storage, key: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = setAlarm)]
    fn set_alarm(this: &Storage, at: f64) -> Result<Promise, JsValue>;

    /// `DurableObjectNamespace`.
    type Namespace;
    #[wasm_bindgen(method, catch, js_name = idFromName)]
    fn id_from_name(this: &Namespace, name: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn get(this: &Namespace, id: &JsValue) -> Result<Stub, JsValue>;

    /// A `DurableObjectStub`.
    type Stub;
    #[wasm_bindgen(method, catch)]
    fn fetch(this: &Stub, request: &web_sys::Request) -> Result<Promise, JsValue>;
}

/// The Durable Object class (`scripts/shim.js` exports it to the runtime).
#[wasm_bindgen]
pub struct KeyChanges(Rc<Log>);

struct Log {
    state: ObjectState,
    env: Env,
    log: RefCell<ChangeLog>,
    loaded: Cell<bool>,
}

#[wasm_bindgen]
impl KeyChanges {
    #[wasm_bindgen(constructor)]
    pub fn new(state: ObjectState, env: Env) -> KeyChanges {
        KeyChanges(Rc::new(Log {
            state,
            env,
            log: RefCell::default(),
            loaded: Cell::new(false),
        }))
    }

    /// `POST /commit` with `[Write]`: 200, or 409 with the [`Conflict`]; `GET /recent`: the
    /// latest version of every key changed within the window.
    pub fn fetch(&self, request: web_sys::Request) -> Result<JsValue, JsValue> {
        let log = Rc::clone(&self.0);
        answer(executor::start(async move {
            log.fetch(request).await.map(JsValue::from)
        }))
    }

    /// Writes settled versions to KV, prunes, and arranges the next alarm.
    pub fn alarm(&self) -> Result<JsValue, JsValue> {
        let log = Rc::clone(&self.0);
        answer(executor::start(async move {
            log.alarm().await.map(|()| JsValue::UNDEFINED)
        }))
    }
}

impl Log {
    /// Reads the persisted log once per object lifetime.
    async fn load(&self) -> Result<(), JsValue> {
        if self.loaded.get() {
            return Ok(());
        }
        let stored: Map = promise::settle(self.state.storage().list())
            .await?
            .unchecked_into();
        let mut entries = Vec::new();
        stored.for_each(&mut |value, _name| {
            let text = value.as_string().unwrap_or_default();
            match json::from_str::<Vec<Change>>(&text) {
                Ok(changes) => entries.push(changes),
                Err(e) => console_error!("change log entry does not decode, dropped: {e}"),
            }
        });
        *self.log.borrow_mut() = ChangeLog::from_entries(entries);
        self.loaded.set(true);
        Ok(())
    }

    /// Writes the entries of the keys `touched` changed, then arranges the next alarm.
    async fn persist(&self, touched: &[KeyHash], now: Millis) -> Result<(), JsValue> {
        let storage = self.state.storage();
        for hash in touched {
            let name = format!("{ENTRY}{}", hash.as_str());
            let entry = self.log.borrow().entry(hash).map(json::to_string);
            match entry {
                Some(json) => promise::settle(storage.put(&name, &json)).await?,
                None => promise::settle(storage.delete(&name)).await?,
            };
        }
        let wakeup = self.log.borrow().next_wakeup(now);
        if let Some(at) = wakeup {
            promise::settle(storage.set_alarm(at as f64)).await?;
        }
        Ok(())
    }

    async fn fetch(&self, request: web_sys::Request) -> Result<web_sys::Response, JsValue> {
        self.load().await?;
        let now = js_sys::Date::now() as Millis;
        let url = request.url();
        match (request.method().as_str(), split_url(&url).0) {
            ("POST", "/commit") => {
                let text = promise::settle(request.text())
                    .await?
                    .as_string()
                    .unwrap_or_default();
                let writes: Vec<Write> = match json::from_str(&text) {
                    Ok(writes) => writes,
                    Err(e) => {
                        let body = json::object(|body| {
                            body.str("error", &e.to_string());
                        });
                        return reply(400, &body);
                    }
                };
                let committed = self.log.borrow_mut().commit(&writes, now);
                match committed {
                    Ok(touched) => {
                        self.persist(&touched, now).await?;
                        reply(200, "{}")
                    }
                    Err(conflict) => reply(409, &json::to_string(&conflict)),
                }
            }
            ("GET", "/recent") => reply(200, &json::to_string(&self.log.borrow().recent(now))),
            _ => reply(404, "{}"),
        }
    }

    async fn alarm(&self) -> Result<(), JsValue> {
        self.load().await?;
        let kv = Kv::bind(&self.env);
        let now = js_sys::Date::now() as Millis;
        let (touched, failures) = settle(&self.log, &Repo::new(&kv), now).await;
        for line in failures {
            console_error!("{line}");
        }
        self.persist(&touched, now).await
    }
}

fn reply(status: u16, body: &str) -> Result<web_sys::Response, JsValue> {
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    web_sys::Response::new_with_opt_str_and_init(Some(body), &init)
}

/// The worker's side of the change log; switched off (`CHANGES_OVERLAY = "off"`) it behaves
/// as `changes::NoFeed`: KV alone decides.
pub struct DoFeed<'a> {
    on: bool,
    env: &'a Env,
    /// Made on first use: most requests (a refresh is due once per interval) never need it.
    stub: OnceCell<Option<Stub>>,
}

impl<'a> DoFeed<'a> {
    pub fn new(env: &'a Env, on: bool) -> Self {
        Self {
            on,
            env,
            stub: OnceCell::new(),
        }
    }

    fn stub(&self) -> Option<&Stub> {
        let stub = self.stub.get_or_init(|| {
            let namespace: Namespace = binding(self.env, BINDING)?;
            let id = namespace.id_from_name(INSTANCE).ok()?;
            namespace.get(&id).ok()
        });
        stub.as_ref()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, String), StoreError> {
        let failed = |e: JsValue| StoreError(format!("change log {path}: {}", error_text(&e)));
        let stub = self
            .stub()
            .ok_or_else(|| StoreError(format!("Durable Object binding {BINDING} is missing")))?;
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        if let Some(body) = body {
            init.set_body(&JsValue::from_str(&body));
        }
        let url = format!("https://key-changes{path}");
        let req = web_sys::Request::new_with_str_and_init(&url, &init).map_err(failed)?;
        let res: web_sys::Response = promise::settle(stub.fetch(&req))
            .await
            .map_err(failed)?
            .unchecked_into();
        let text = promise::settle(res.text()).await.map_err(failed)?;
        Ok((res.status(), text.as_string().unwrap_or_default()))
    }
}

fn decode<T: for<'t> json::FromJson<'t>>(path: &str, text: &str) -> Result<T, StoreError> {
    json::from_str(text).map_err(|e| StoreError(format!("change log {path}: {e}")))
}

impl ChangeFeed for DoFeed<'_> {
    fn durable(&self) -> bool {
        self.on
    }

    async fn commit(
        &self,
        writes: &[Write],
        _now: Millis,
    ) -> Result<Result<(), Conflict>, StoreError> {
        if !self.on {
            return Ok(Ok(()));
        }
        let body = json::to_string(writes);
        match self.call("POST", "/commit", Some(body)).await? {
            (200, _) => Ok(Ok(())),
            (409, text) => Ok(Err(decode("/commit", &text)?)),
            (status, text) => Err(StoreError(format!(
                "change log /commit answered {status}: {text}"
            ))),
        }
    }

    async fn recent(&self, _now: Millis) -> Result<Vec<Change>, StoreError> {
        if !self.on {
            return Ok(Vec::new());
        }
        match self.call("GET", "/recent", None).await? {
            (200, text) => decode("/recent", &text),
            (status, text) => Err(StoreError(format!(
                "change log /recent answered {status}: {text}"
            ))),
        }
    }
}
