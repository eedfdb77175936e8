//! The `KeyChanges` Durable Object, home of the change log, and the worker's client for it
//! ([`DoFeed`]): the only module that touches Durable Objects. One instance serves every
//! location; it keeps only the last few minutes of changes (see `changes::WINDOW_MS`).
//!
//! Its storage holds one entry per changed key (`k/{hash}`: that key's recent versions as JSON),
//! so a commit writes only the keys it touches. Storage writes close the object's input gate,
//! so commits are applied one at a time: that is what serializes racing admin writes. An alarm
//! writes settled versions to KV and prunes (`changes::settle`).

use crate::changes::{settle, Change, ChangeFeed, ChangeLog, Conflict, Write};
use crate::json;
use crate::key::KeyHash;
use crate::kv::Kv;
use crate::repo::Repo;
use crate::store::StoreError;
use crate::time::Millis;
use std::cell::{Cell, OnceCell, RefCell};
use wasm_bindgen::JsValue;
use worker::{
    console_error, durable_object, Date, DurableObject, Env, Method, Request, Response, Result,
    State, Stub,
};

/// The Durable Object namespace binding named in `wrangler.toml`.
pub const BINDING: &str = "KEY_CHANGES";
/// The one instance every location talks to.
const INSTANCE: &str = "global";
const ENTRY: &str = "k/";

#[durable_object(alarm)]
pub struct KeyChanges {
    state: State,
    env: Env,
    log: RefCell<ChangeLog>,
    loaded: Cell<bool>,
}

impl KeyChanges {
    /// Reads the persisted log once per object lifetime.
    async fn load(&self) -> Result<()> {
        if self.loaded.get() {
            return Ok(());
        }
        let stored = self.state.storage().list().await?;
        let mut entries = Vec::new();
        for value in stored.values() {
            let text = value?.as_string().unwrap_or_default();
            match json::from_str::<Vec<Change>>(&text) {
                Ok(changes) => entries.push(changes),
                Err(e) => console_error!("change log entry does not decode, dropped: {e}"),
            }
        }
        *self.log.borrow_mut() = ChangeLog::from_entries(entries);
        self.loaded.set(true);
        Ok(())
    }

    /// Writes the entries of the keys `touched` changed, then arranges the next alarm.
    async fn persist(&self, touched: &[KeyHash]) -> Result<()> {
        let storage = self.state.storage();
        for hash in touched {
            let name = format!("{ENTRY}{}", hash.as_str());
            let entry = self.log.borrow().entry(hash).map(json::to_string);
            match entry {
                Some(json) => storage.put_raw(&name, JsValue::from_str(&json)).await?,
                None => storage.delete(&name).await.map(drop)?,
            }
        }
        let wakeup = self.log.borrow().next_wakeup();
        if let Some(at) = wakeup {
            storage
                .set_alarm(i64::try_from(at).unwrap_or(i64::MAX))
                .await?;
        }
        Ok(())
    }
}

fn reply(status: u16, body: String) -> Result<Response> {
    Ok(Response::ok(body)?.with_status(status))
}

impl DurableObject for KeyChanges {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            log: RefCell::default(),
            loaded: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.load().await?;
        let now = Date::now().as_millis();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/commit") => {
                let writes: Vec<Write> = match json::from_str(&req.text().await?) {
                    Ok(writes) => writes,
                    Err(e) => {
                        let mut body = String::new();
                        json::ObjectWriter::new(&mut body)
                            .str("error", &e.to_string())
                            .end();
                        return reply(400, body);
                    }
                };
                let committed = self.log.borrow_mut().commit(&writes, now);
                match committed {
                    Ok(touched) => {
                        self.persist(&touched).await?;
                        reply(200, "{}".into())
                    }
                    Err(conflict) => reply(409, json::to_string(&conflict)),
                }
            }
            (Method::Get, "/recent") => reply(200, json::to_string(&self.log.borrow().recent(now))),
            _ => reply(404, "{}".into()),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.load().await?;
        let kv = Kv::bind(&self.env);
        let (touched, failures) = settle(&self.log, &Repo::new(&kv), Date::now().as_millis()).await;
        for line in failures {
            console_error!("{line}");
        }
        self.persist(&touched).await?;
        Response::ok("")
    }
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
            let ns = self.env.durable_object(BINDING).ok()?;
            ns.id_from_name(INSTANCE).ok()?.get_stub().ok()
        });
        stub.as_ref()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> std::result::Result<(u16, String), StoreError> {
        let failed = |e: worker::Error| StoreError(format!("change log {path}: {e}"));
        let stub = self
            .stub()
            .ok_or_else(|| StoreError(format!("Durable Object binding {BINDING} is missing")))?;
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        if let Some(body) = body {
            init.set_body(&JsValue::from_str(&body));
        }
        let url = format!("https://key-changes{path}");
        let req =
            web_sys::Request::new_with_str_and_init(&url, &init).map_err(|e| failed(e.into()))?;
        let mut res = stub.fetch_with_request(req.into()).await.map_err(failed)?;
        let text = res.text().await.map_err(failed)?;
        Ok((res.status_code(), text))
    }
}

fn decode<T: for<'t> json::FromJson<'t>>(
    path: &str,
    text: &str,
) -> std::result::Result<T, StoreError> {
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
    ) -> std::result::Result<std::result::Result<(), Conflict>, StoreError> {
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

    async fn recent(&self, _now: Millis) -> std::result::Result<Vec<Change>, StoreError> {
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
