//! Awaiting a JavaScript promise from Rust. wasm-bindgen-futures' `JsFuture` makes two Rust
//! closures, and their JS wrappers, for every await and destroys them after; on the verify path
//! that was about 12 µs per request (bench/profile.mjs). Here one callback, made once per
//! isolate, settles every promise: each await only records a slot with an id.

use js_sys::Promise;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = "export function when_settled(promise, id, callback) {
    promise.then((value) => callback(id, true, value), (error) => callback(id, false, error));
}")]
extern "C" {
    fn when_settled(promise: &Promise, id: u32, callback: &JsValue);
}

struct Slot {
    id: u32,
    result: Option<Result<JsValue, JsValue>>,
    waker: Option<Waker>,
}

thread_local! {
    /// Promises awaited and not yet taken: as many as requests in flight in this isolate.
    static PENDING: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
    /// Ids start at random per instance: after a reset (scripts/shim.js) a callback of the old
    /// instance can never name a slot of the new one, whatever wasm-bindgen's glue does.
    static NEXT_ID: Cell<u32> = Cell::new((js_sys::Math::random() * f64::from(u32::MAX)) as u32);
    static CALLBACK: Closure<dyn Fn(u32, bool, JsValue)> = Closure::new(settled);
}

/// The callback: stores the outcome, then wakes the task (after letting go of the slots, since
/// the executor polls it at once and it may await again).
fn settled(id: u32, ok: bool, value: JsValue) {
    let waker = PENDING.with_borrow_mut(|pending| {
        let slot = pending.iter_mut().find(|s| s.id == id)?;
        slot.result = Some(if ok { Ok(value) } else { Err(value) });
        slot.waker.take()
    });
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The outcome of a call that returns a promise: `Ok` with the promise's value, `Err` with its
/// rejection, or with what the call itself threw.
pub async fn settle(call: Result<Promise, JsValue>) -> Result<JsValue, JsValue> {
    wait(&call?).await
}

fn wait(promise: &Promise) -> Settled {
    let id = NEXT_ID.with(|next| next.replace(next.get().wrapping_add(1)));
    PENDING.with_borrow_mut(|pending| {
        pending.push(Slot {
            id,
            result: None,
            waker: None,
        })
    });
    CALLBACK.with(|callback| when_settled(promise, id, callback.as_ref()));
    Settled { id }
}

/// What a rejection or a thrown value says: an `Error`'s message, else its debug form.
pub fn error_text(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{error:?}"))
}

/// A future for [`wait`]. Dropped before the promise settles, it leaves nothing behind.
pub struct Settled {
    id: u32,
}

impl Future for Settled {
    type Output = Result<JsValue, JsValue>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        PENDING.with_borrow_mut(|pending| {
            let Some(at) = pending.iter().position(|s| s.id == id) else {
                return Poll::Ready(Err(JsValue::from_str("promise polled after it settled")));
            };
            match pending[at].result.take() {
                Some(result) => {
                    pending.swap_remove(at);
                    Poll::Ready(result)
                }
                None => {
                    pending[at].waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        let id = self.id;
        PENDING.with_borrow_mut(|pending| pending.retain(|s| s.id != id));
    }
}
