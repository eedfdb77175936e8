//! Key usage in the shell: the isolate's tally (the core's [`Tally`]), its background report
//! to the `KeyUsage` Durable Object, and that object, which keeps each project's ledger (the
//! core's [`Ledger`]: 30 days of per-key counts and the last use).
//!
//! One object per project (`id_from_name(project_id)`), so the load of busy projects is spread
//! and one project's listing is one call. Its storage holds one entry per key (`u/{key id}`: the
//! key's `KeyUsage` as JSON); a report is stored with one `put` of the keys it touched (at most
//! 128 per call, the Durable Object storage API's limit for a multi-key put).
//!
//! Reporting: the first use counted into an empty tally schedules, through `ctx.waitUntil`, a
//! report `USAGE_FLUSH_SECONDS` later of everything counted by then, one request per project
//! (`POST /report`, the project's `Report` entry as JSON). Nothing on the verify path waits on
//! it. A report that fails is dropped and logged: those counts are lost.
//!
//! Protocol (worker → object): `POST /report` with `{key id: KeyUsage}` answers 200 `{}` (400
//! for a body that does not decode); `GET /usage` answers `{key id: KeyUsage}`.

use crate::object::{bad_request, reply, Client};
use lumiqtrace_core::store::StoreError;
use lumiqtrace_core::time::Millis;
use lumiqtrace_core::usage::{self as used, Ledger, Report, Tally, UsageSource};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{
    console_error, durable_object, Context, Delay, DurableObject, Env, Method, Request, Response,
    Result, State,
};

/// The Durable Object namespace binding named in `wrangler.toml`.
pub const BINDING: &str = "KEY_USAGE";
/// Storage names of the ledger's entries: `u/` and the key's id.
const ENTRY: &str = "u/";
/// Keys per multi-key `put` (Durable Object storage: at most 128).
const PUT_MAX: usize = 128;

thread_local! {
    /// This isolate's uses not yet reported.
    static TALLY: Rc<RefCell<Tally>> = Rc::default();
    /// Whether a report is scheduled.
    static SCHEDULED: Rc<Cell<bool>> = Rc::default();
}

/// The isolate's tally, shared by every request it serves.
pub fn tally() -> Rc<RefCell<Tally>> {
    TALLY.with(Rc::clone)
}

/// After a request: if the tally holds uses and no report is scheduled, schedules one
/// `flush_ms` from now in the background (`ctx.wait_until`).
pub fn schedule_report(env: &Env, ctx: &Context, flush_ms: Millis) {
    let tally = tally();
    let scheduled = SCHEDULED.with(Rc::clone);
    if tally.borrow().is_empty() || scheduled.get() {
        return;
    }
    scheduled.set(true);
    let env = env.clone();
    ctx.wait_until(async move {
        Delay::from(Duration::from_millis(flush_ms)).await;
        let report = tally.borrow_mut().take();
        scheduled.set(false);
        send(&env, report).await;
    });
}

/// Sends each project's part of `report` to its object; failures are logged and dropped.
async fn send(env: &Env, report: Report) {
    for (project, keys) in report {
        let sent = match serde_json::to_string(&keys) {
            Ok(body) => {
                (object(env, &project))
                    .call(Method::Post, "/report", Some(body))
                    .await
            }
            Err(e) => Err(StoreError(e.to_string())),
        };
        match sent {
            Ok((200, _)) => {}
            Ok((status, text)) => console_error!(
                "usage report for project {project} answered {status}: {text}; its counts are lost"
            ),
            Err(e) => console_error!(
                "usage report for project {project} failed: {e}; its counts are lost"
            ),
        }
    }
}

/// Project `project`'s object (one instance per project).
fn object(env: &Env, project: &str) -> Client {
    Client::new(env, BINDING, project, "key usage")
}

/// Admin reads of reported usage.
pub struct UsageClient<'a> {
    pub env: &'a Env,
}

impl UsageSource for UsageClient<'_> {
    async fn project_usage(
        &self,
        project_id: &str,
        _now: Millis,
    ) -> std::result::Result<BTreeMap<String, used::KeyUsage>, StoreError> {
        let usage = object(self.env, project_id);
        match usage.call(Method::Get, "/usage", None).await? {
            (200, text) => usage.decode("/usage", &text),
            (status, text) => Err(usage.unexpected("/usage", status, &text)),
        }
    }
}

/// The Durable Object class (`KeyUsage` in `wrangler.toml`): one project's ledger.
#[durable_object(fetch)]
pub struct KeyUsage {
    state: State,
    ledger: RefCell<Ledger>,
    loaded: Cell<bool>,
}

impl DurableObject for KeyUsage {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            ledger: RefCell::default(),
            loaded: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.load().await?;
        let now = crate::clock();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/report") => {
                let text = req.text().await?;
                let report: BTreeMap<String, used::KeyUsage> =
                    match serde_json::from_slice(text.as_bytes()) {
                        Ok(report) => report,
                        Err(e) => return bad_request(e),
                    };
                let touched = self.ledger.borrow_mut().apply(&report, now);
                self.persist(&touched).await?;
                reply(200, "{}".into())
            }
            (Method::Get, "/usage") => {
                let snapshot = serde_json::to_string(self.ledger.borrow_mut().snapshot(now));
                reply(200, snapshot?)
            }
            _ => reply(404, "{}".into()),
        }
    }
}

impl KeyUsage {
    /// Reads the stored ledger once per object lifetime.
    async fn load(&self) -> Result<()> {
        if self.loaded.get() {
            return Ok(());
        }
        let stored = self.state.storage().list().await?;
        let mut entries = Vec::new();
        stored.for_each(&mut |value, name| {
            let name = name.as_string().unwrap_or_default();
            let text = value.as_string().unwrap_or_default();
            match serde_json::from_slice::<used::KeyUsage>(text.as_bytes()) {
                Ok(usage) => entries.push((name.trim_start_matches(ENTRY).to_owned(), usage)),
                Err(e) => console_error!("usage entry {name} does not decode, dropped: {e}"),
            }
        });
        *self.ledger.borrow_mut() = Ledger::from_entries(entries);
        self.loaded.set(true);
        Ok(())
    }

    /// Stores the entries of the keys `touched`: one multi-key put per 128 keys.
    async fn persist(&self, touched: &[String]) -> Result<()> {
        let storage = self.state.storage();
        for batch in touched.chunks(PUT_MAX) {
            let values = js_sys::Object::new();
            for id in batch {
                let json = self.ledger.borrow().get(id).map(serde_json::to_string);
                if let Some(json) = json {
                    let name = JsValue::from(format!("{ENTRY}{id}"));
                    js_sys::Reflect::set(&values, &name, &JsValue::from(json?))?;
                }
            }
            storage.put_multiple_raw(values).await?;
        }
        Ok(())
    }
}
