//! The `KeyChanges` Durable Object, home of the change log (the logic is the core's
//! [`ChangeLog`]), and the worker's client for it ([`DoFeed`]): the only module that touches
//! Durable Objects. One instance (named [`INSTANCE`]) serves every location; it keeps only the
//! last few minutes of changes (`changes::WINDOW_MS`).
//!
//! Its storage holds one entry per changed key (`k/{hash}`: that key's recent versions as JSON
//! text), so a commit writes only the keys it touches. Storage writes close the object's input
//! gate, so commits are applied one at a time: that is what serializes racing admin writes. An
//! alarm writes settled versions to KV and prunes (`changes::settle`).
//!
//! Protocol (worker → object, JSON bodies): `POST /commit` with `[Write]` answers 200 `{}`, or
//! 409 with the [`Conflict`], or 400 for a body that does not decode; `GET /recent` answers the
//! latest version of every key changed within the window (`[Change]`).
//!
//! Isolates read `recent` through their location's copy ([`LocationCopy`], the Cache API: one
//! copy per data center, not replicated elsewhere), so the object sees about one `GET /recent`
//! per location per `CHANGES_REFRESH_SECONDS` whatever the number of isolates ([`nearest`]).
//! Commits always go to the object: the one commit point.

use crate::kv::Kv;
use crate::object::{bad_request, reply, Client};
use lumiqtrace_core::changes::{
    settle, Cached, Change, ChangeFeed, ChangeLog, Conflict, NearbyCopy, Snapshot, Write,
};
use lumiqtrace_core::key::KeyHash;
use lumiqtrace_core::repo::Repo;
use lumiqtrace_core::store::StoreError;
use lumiqtrace_core::time::Millis;
use std::cell::{Cell, RefCell};
use wasm_bindgen::JsValue;
use worker::{
    console_error, durable_object, Cache, DurableObject, Env, Method, Request, Response, Result,
    ScheduledTime, State,
};

/// The Durable Object namespace binding named in `wrangler.toml`.
pub const BINDING: &str = "KEY_CHANGES";
/// The one instance every location talks to.
pub const INSTANCE: &str = "global";
/// Storage names of the log's entries: `k/` and the key's hash.
const ENTRY: &str = "k/";

/// The Durable Object class (`KeyChanges` in `wrangler.toml`): answers `fetch` (the protocol
/// above) and `alarm` (settle and prune).
#[durable_object(alarm)]
pub struct KeyChanges {
    state: State,
    env: Env,
    log: RefCell<ChangeLog>,
    loaded: Cell<bool>,
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
        let now = crate::clock();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/commit") => {
                let text = req.text().await?;
                let writes: Vec<Write> = match serde_json::from_slice(text.as_bytes()) {
                    Ok(writes) => writes,
                    Err(e) => return bad_request(e),
                };
                let committed = self.log.borrow_mut().commit(&writes, now);
                match committed {
                    Ok(touched) => {
                        self.persist(&touched, now).await?;
                        reply(200, "{}".into())
                    }
                    Err(conflict) => reply(409, serde_json::to_string(&conflict)?),
                }
            }
            (Method::Get, "/recent") => {
                let recent = self.log.borrow().recent(now);
                reply(200, serde_json::to_string(&recent)?)
            }
            _ => reply(404, "{}".into()),
        }
    }

    /// Writes settled versions to KV, prunes, and arranges the next alarm.
    async fn alarm(&self) -> Result<Response> {
        self.load().await?;
        let now = crate::clock();
        let kv = Kv::new(&self.env);
        let (touched, failures) = settle(&self.log, &Repo::new(&kv), now).await;
        for line in failures {
            console_error!("{line}");
        }
        self.persist(&touched, now).await?;
        Response::empty()
    }
}

impl KeyChanges {
    /// Reads the persisted log once per object lifetime.
    async fn load(&self) -> Result<()> {
        if self.loaded.get() {
            return Ok(());
        }
        let stored = self.state.storage().list().await?;
        let mut entries = Vec::new();
        stored.for_each(&mut |value, _name| {
            let text = value.as_string().unwrap_or_default();
            match serde_json::from_slice::<Vec<Change>>(text.as_bytes()) {
                Ok(changes) => entries.push(changes),
                Err(e) => console_error!("change log entry does not decode, dropped: {e}"),
            }
        });
        *self.log.borrow_mut() = ChangeLog::from_entries(entries);
        self.loaded.set(true);
        Ok(())
    }

    /// Writes the entries of the keys `touched` changed, then arranges the next alarm.
    async fn persist(&self, touched: &[KeyHash], now: Millis) -> Result<()> {
        let storage = self.state.storage();
        for hash in touched {
            let name = format!("{ENTRY}{}", hash.as_str());
            let entry = self.log.borrow().entry(hash).map(serde_json::to_string);
            match entry {
                Some(json) => storage.put_raw(&name, JsValue::from(json?)).await?,
                None => drop(storage.delete(&name).await?),
            }
        }
        let wakeup = self.log.borrow().next_wakeup(now);
        if let Some(at) = wakeup {
            let at = js_sys::Date::new(&JsValue::from_f64(at as f64));
            storage.set_alarm(ScheduledTime::new(at)).await?;
        }
        Ok(())
    }
}

/// What isolates ask for the change log: the object behind the location's copy, with the
/// refresh interval (`CHANGES_REFRESH_SECONDS`, ms) as the copy's lifetime. Owns what it needs,
/// so a background refresh (`waitUntil`) can outlive the request that started it.
pub fn nearest(env: &Env, on: bool, interval: Millis) -> Cached<DoFeed, LocationCopy> {
    Cached {
        feed: DoFeed::new(env, on),
        copy: LocationCopy,
        lifetime: interval,
    }
}

/// The worker's side of the change log; switched off (`CHANGES_OVERLAY = "off"`) it behaves
/// as `changes::NoFeed`: KV alone decides.
pub struct DoFeed {
    on: bool,
    /// Its stub is made on first use: most requests (a refresh is due once per interval) never
    /// need it.
    log: Client,
}

impl DoFeed {
    pub fn new(env: &Env, on: bool) -> Self {
        Self {
            on,
            log: Client::new(env, BINDING, INSTANCE, "change log"),
        }
    }
}

impl ChangeFeed for DoFeed {
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
        let body = serde_json::to_string(writes)
            .map_err(|e| StoreError(format!("change log /commit: {e}")))?;
        match self.log.call(Method::Post, "/commit", Some(body)).await? {
            (200, _) => Ok(Ok(())),
            (409, text) => Ok(Err(self.log.decode("/commit", &text)?)),
            (status, text) => Err(self.log.unexpected("/commit", status, &text)),
        }
    }

    async fn recent(&self, _now: Millis) -> std::result::Result<Vec<Change>, StoreError> {
        if !self.on {
            return Ok(Vec::new());
        }
        match self.log.call(Method::Get, "/recent", None).await? {
            (200, text) => self.log.decode("/recent", &text),
            (status, text) => Err(self.log.unexpected("/recent", status, &text)),
        }
    }
}

/// The location's copy of the log's `recent` answer, in the Cache API (`caches.default`: one
/// copy per data center, never replicated outside it; developers.cloudflare.com/workers/
/// runtime-apis/cache/). Its body is the core's `Snapshot` as JSON; `Cache-Control: max-age`
/// keeps it no longer than its lifetime (whole seconds, rounded up: the core also checks the
/// stamp against the lifetime). Failures are logged and taken as a miss (the object answers).
/// On a `*.workers.dev` route the Cache API stores nothing: every refresh then asks the object.
pub struct LocationCopy;

/// Cache keys (URLs that never leave the cache): the copy and the refresh-ahead marker.
const COPY_URL: &str = "https://key-changes.lumiqtrace.internal/recent";
const MARKER_URL: &str = "https://key-changes.lumiqtrace.internal/recent-refreshing";

/// Puts `body` under `url` for `lifetime` ms (at least a second).
async fn cache_put(url: &str, body: String, lifetime: Millis) -> Result<()> {
    let seconds = lifetime.div_ceil(1000).max(1);
    let headers = worker::Headers::new();
    headers.set("cache-control", &format!("max-age={seconds}"))?;
    headers.set("content-type", "application/json")?;
    let response = Response::builder()
        .with_headers(headers)
        .fixed(body.into_bytes());
    Cache::default().put(url, response).await
}

impl NearbyCopy for LocationCopy {
    async fn get(&self) -> Option<Snapshot> {
        let read = async {
            let Some(mut held) = Cache::default().get(COPY_URL, false).await? else {
                return Ok(None);
            };
            let text = held.text().await?;
            serde_json::from_slice(text.as_bytes())
                .map(Some)
                .map_err(worker::Error::from)
        };
        read.await
            .map_err(|e| console_error!("location copy of the change log unreadable: {e}"))
            .ok()
            .flatten()
    }

    async fn put(&self, snapshot: &Snapshot, lifetime: Millis) {
        let put = async { cache_put(COPY_URL, serde_json::to_string(snapshot)?, lifetime).await };
        if let Err(e) = put.await {
            console_error!("location copy of the change log not stored: {e}");
        }
    }

    async fn claim(&self, for_ms: Millis) -> bool {
        let claimed = async {
            if Cache::default().get(MARKER_URL, false).await?.is_some() {
                return Ok(false);
            }
            cache_put(MARKER_URL, "{}".into(), for_ms)
                .await
                .map(|()| true)
        };
        claimed.await.unwrap_or_else(|e: worker::Error| {
            console_error!("refresh-ahead marker unusable: {e}");
            false
        })
    }
}
