//! The `AdminTokens` Durable Object, the source of truth of organization admin tokens (the logic
//! is the core's [`TokenBook`]), and the worker's client for it ([`DoTokens`]). One instance
//! ([`INSTANCE`]) serves every location, so a revocation is refused everywhere the moment it is
//! answered (bar each isolate's positive answers, kept at most `CHANGES_REFRESH_SECONDS`:
//! `orgs::TokenCache`).
//!
//! Storage: one entry per token, `t/{sha256 hex}` → the record's JSON (never the token).
//! Protocol (worker → object, JSON): `POST /create` with a record → 200 `{}` or 409 (id or hash
//! taken); `GET /hash/{hex}` → 200 record or 404; `POST /hashes` with `["hex", …]` → 200
//! `[record or null]` in the same order (GitHub's leak reports, 100 a call); `GET /org/{id}` →
//! 200 `[record]`; `POST /revoke/{id}` with `{"at": ms, "reason"?: "…"}` → 200
//! `{"record", "changed"}` or 404.

use crate::object::{bad_request, reply, Client};
use lumiqtrace_core::json_object;
use lumiqtrace_core::key::KeyHash;
use lumiqtrace_core::orgs::{
    create_persisted, revoke_persisted, TokenAuthority, TokenBook, TokenRevoked,
};
use lumiqtrace_core::record::AdminTokenRecord;
use lumiqtrace_core::store::StoreError;
use lumiqtrace_core::time::Millis;
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use wasm_bindgen::JsValue;
use worker::{
    console_error, durable_object, DurableObject, Env, Method, Request, Response, Result, State,
};

/// The Durable Object namespace binding named in `wrangler.toml`.
pub const BINDING: &str = "ADMIN_TOKENS";
/// The one instance every location talks to.
pub const INSTANCE: &str = "global";
const ENTRY: &str = "t/";

/// The Durable Object class (`AdminTokens` in `wrangler.toml`).
#[durable_object(fetch)]
pub struct AdminTokens {
    state: State,
    book: RefCell<TokenBook>,
    loaded: Cell<bool>,
}

#[derive(Deserialize)]
struct RevokeAt {
    at: Millis,
    #[serde(default)]
    reason: Option<String>,
}

impl DurableObject for AdminTokens {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            book: RefCell::default(),
            loaded: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.load().await?;
        let path = req.path();
        match (req.method(), path.split('/').collect::<Vec<_>>().as_slice()) {
            (Method::Post, ["", "create"]) => {
                let record: AdminTokenRecord = match json_object::from_str(&req.text().await?) {
                    Ok(record) => record,
                    Err(e) => return bad_request(e),
                };
                let persist = async |record: &AdminTokenRecord| self.persist(record).await;
                match create_persisted(&self.book, record, persist).await? {
                    true => reply(200, "{}".into()),
                    false => reply(409, "{}".into()),
                }
            }
            (Method::Get, ["", "hash", hex]) => {
                let found =
                    KeyHash::from_hex(hex).and_then(|h| self.book.borrow().by_hash(&h).cloned());
                match found {
                    Some(record) => reply(200, serde_json::to_string(&record)?),
                    None => reply(404, "{}".into()),
                }
            }
            (Method::Post, ["", "hashes"]) => {
                let hexes: Vec<String> = match serde_json::from_slice(req.text().await?.as_bytes())
                {
                    Ok(hexes) => hexes,
                    Err(e) => return bad_request(e),
                };
                let book = self.book.borrow();
                let found: Vec<Option<&AdminTokenRecord>> = (hexes.iter())
                    .map(|hex| KeyHash::from_hex(hex).and_then(|h| book.by_hash(&h)))
                    .collect();
                reply(200, serde_json::to_string(&found)?)
            }
            (Method::Get, ["", "org", org]) => {
                reply(200, serde_json::to_string(&self.book.borrow().list(org))?)
            }
            (Method::Post, ["", "revoke", id]) => {
                let (at, reason) = match json_object::from_str::<RevokeAt>(&req.text().await?) {
                    Ok(RevokeAt { at, reason }) => (at, reason),
                    Err(e) => return bad_request(e),
                };
                let persist = async |record: &AdminTokenRecord| self.persist(record).await;
                let revoked = revoke_persisted(&self.book, id, at, reason.as_deref(), persist);
                match revoked.await? {
                    Some(revoked) => reply(200, serde_json::to_string(&revoked)?),
                    None => reply(404, "{}".into()),
                }
            }
            _ => reply(404, "{}".into()),
        }
    }
}

impl AdminTokens {
    /// Reads every stored token once per object lifetime.
    async fn load(&self) -> Result<()> {
        if self.loaded.get() {
            return Ok(());
        }
        let stored = self.state.storage().list().await?;
        let mut records = Vec::new();
        stored.for_each(&mut |value, _name| {
            let text = value.as_string().unwrap_or_default();
            match json_object::from_str::<AdminTokenRecord>(&text) {
                Ok(record) => records.push(record),
                Err(e) => console_error!("admin token entry does not decode, skipped: {e}"),
            }
        });
        *self.book.borrow_mut() = TokenBook::from_records(records);
        self.loaded.set(true);
        Ok(())
    }

    async fn persist(&self, record: &AdminTokenRecord) -> Result<()> {
        let name = format!("{ENTRY}{}", record.hash.as_str());
        let json = serde_json::to_string(record)?;
        self.state
            .storage()
            .put_raw(&name, JsValue::from(json))
            .await
    }
}

/// The worker's side of [`AdminTokens`]: the core's [`TokenAuthority`]. Its stub is made on
/// first use: only requests that present or manage an admin token need it.
pub struct DoTokens(Client);

impl DoTokens {
    pub fn new(env: &Env) -> Self {
        Self(Client::new(env, BINDING, INSTANCE, "admin tokens"))
    }
}

impl TokenAuthority for DoTokens {
    async fn create(&self, record: &AdminTokenRecord) -> std::result::Result<(), StoreError> {
        let body = serde_json::to_string(record).map_err(|e| StoreError(e.to_string()))?;
        match self.0.call(Method::Post, "/create", Some(body)).await? {
            (200, _) => Ok(()),
            (status, text) => Err(self.0.unexpected("/create", status, &text)),
        }
    }

    async fn by_hash(
        &self,
        hash: &KeyHash,
    ) -> std::result::Result<Option<AdminTokenRecord>, StoreError> {
        let path = format!("/hash/{}", hash.as_str());
        match self.0.call(Method::Get, &path, None).await? {
            (200, text) => self.0.decode("/hash", &text).map(Some),
            (404, _) => Ok(None),
            (status, text) => Err(self.0.unexpected("/hash", status, &text)),
        }
    }

    async fn by_hashes(
        &self,
        hashes: &[KeyHash],
    ) -> std::result::Result<Vec<Option<AdminTokenRecord>>, StoreError> {
        let hexes: Vec<&str> = hashes.iter().map(KeyHash::as_str).collect();
        let body = serde_json::to_string(&hexes).map_err(|e| StoreError(e.to_string()))?;
        match self.0.call(Method::Post, "/hashes", Some(body)).await? {
            (200, text) => {
                let found: Vec<Option<AdminTokenRecord>> = self.0.decode("/hashes", &text)?;
                match found.len() == hashes.len() {
                    true => Ok(found),
                    false => Err(self
                        .0
                        .unexpected("/hashes", 200, "a list of another length")),
                }
            }
            (status, text) => Err(self.0.unexpected("/hashes", status, &text)),
        }
    }

    async fn list(&self, org_id: &str) -> std::result::Result<Vec<AdminTokenRecord>, StoreError> {
        match self
            .0
            .call(Method::Get, &format!("/org/{org_id}"), None)
            .await?
        {
            (200, text) => self.0.decode("/org", &text),
            (status, text) => Err(self.0.unexpected("/org", status, &text)),
        }
    }

    async fn revoke(
        &self,
        id: &str,
        now: Millis,
        reason: Option<&str>,
    ) -> std::result::Result<Option<TokenRevoked>, StoreError> {
        // An id is whatever the caller put in the path: keep it one segment.
        if id.is_empty() || id.contains(['/', '?', '#', '%']) {
            return Ok(None);
        }
        let body = serde_json::json!({ "at": now, "reason": reason }).to_string();
        match self
            .0
            .call(Method::Post, &format!("/revoke/{id}"), Some(body))
            .await?
        {
            (200, text) => self.0.decode("/revoke", &text).map(Some),
            (404, _) => Ok(None),
            (status, text) => Err(self.0.unexpected("/revoke", status, &text)),
        }
    }
}
