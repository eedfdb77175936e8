//! The fetch handler's executor: runs a request's future at once and again from each wake-up,
//! with no queue in between. wasm-bindgen's executor puts every start and every wake-up behind
//! a `queueMicrotask` hop; in workerd that hop cost about 45 µs of CPU per request (profiled
//! with `bench/profile.mjs`, see the README), more than the SHA-256 and the KV decode together.
//! An isolate runs one thread, so a wake-up (a settled KV promise) can poll on the spot; a
//! wake-up during a poll is remembered and polled again right after it.
//! Plain Rust: the entry turns a [`Started::Pending`] into a JavaScript promise.

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
compile_error!("the executor's wakers count through `Rc`: it needs single-threaded wasm");

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

type Boxed<T> = Pin<Box<dyn Future<Output = T>>>;
type Callback<T> = Box<dyn FnOnce(T)>;

/// What [`start`] found after the first poll.
pub enum Started<T> {
    /// Finished without waiting: the answer, with no promise made.
    Done(T),
    /// Waiting on something; [`Pending::on_done`] receives the answer.
    Pending(Pending<T>),
}

/// A task still running.
pub struct Pending<T>(Rc<Task<T>>);

struct Task<T> {
    future: RefCell<Option<Boxed<T>>>,
    polling: Cell<bool>,
    woken: Cell<bool>,
    output: RefCell<Option<T>>,
    done: RefCell<Option<Callback<T>>>,
}

/// Polls `future` once, now.
pub fn start<T: 'static>(future: impl Future<Output = T> + 'static) -> Started<T> {
    let task = Rc::new(Task {
        future: RefCell::new(Some(Box::pin(future))),
        polling: Cell::new(false),
        woken: Cell::new(false),
        output: RefCell::new(None),
        done: RefCell::new(None),
    });
    run(&task);
    let output = task.output.borrow_mut().take();
    match output {
        Some(output) => Started::Done(output),
        None => Started::Pending(Pending(task)),
    }
}

impl<T: 'static> Pending<T> {
    /// Calls `done` with the answer when the task finishes.
    pub fn on_done(self, done: impl FnOnce(T) + 'static) {
        let finished = self.0.output.borrow_mut().take();
        match finished {
            Some(output) => done(output),
            None => *self.0.done.borrow_mut() = Some(Box::new(done)),
        }
    }
}

fn run<T: 'static>(task: &Rc<Task<T>>) {
    if task.polling.replace(true) {
        task.woken.set(true); // woken from inside its own poll: poll again below
        return;
    }
    loop {
        task.woken.set(false);
        let waker = waker(task);
        let mut slot = task.future.borrow_mut();
        let Some(future) = slot.as_mut() else { break };
        match future.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(output) => {
                *slot = None;
                drop(slot);
                let done = task.done.borrow_mut().take();
                match done {
                    Some(done) => done(output),
                    None => *task.output.borrow_mut() = Some(output),
                }
                break;
            }
            Poll::Pending if task.woken.get() => continue,
            Poll::Pending => break,
        }
    }
    task.polling.set(false);
}

// A waker is a counted reference to its task. Sound on wasm32, where an isolate has one thread;
// the host tests below wake on the thread that polls, as the isolate does.
fn waker<T: 'static>(task: &Rc<Task<T>>) -> Waker {
    let raw = RawWaker::new(Rc::into_raw(task.clone()).cast(), vtable::<T>());
    // SAFETY: the vtable below keeps the Rc's count: one per waker, released on drop/wake.
    unsafe { Waker::from_raw(raw) }
}

struct VTable<T>(std::marker::PhantomData<T>);

impl<T: 'static> VTable<T> {
    const FNS: RawWakerVTable =
        RawWakerVTable::new(clone::<T>, wake::<T>, wake_by_ref::<T>, drop_waker::<T>);
}

fn vtable<T: 'static>() -> &'static RawWakerVTable {
    &VTable::<T>::FNS
}

unsafe fn clone<T: 'static>(task: *const ()) -> RawWaker {
    // SAFETY: `task` came from `Rc::into_raw` in `waker` and is still counted.
    unsafe { Rc::increment_strong_count(task.cast::<Task<T>>()) };
    RawWaker::new(task, vtable::<T>())
}

unsafe fn wake<T: 'static>(task: *const ()) {
    // SAFETY: takes over the waker's count.
    let task = unsafe { Rc::from_raw(task.cast::<Task<T>>()) };
    run(&task);
}

unsafe fn wake_by_ref<T: 'static>(task: *const ()) {
    // SAFETY: borrows the waker's count without releasing it.
    let task = ManuallyDrop::new(unsafe { Rc::from_raw(task.cast::<Task<T>>()) });
    run(&task);
}

unsafe fn drop_waker<T: 'static>(task: *const ()) {
    // SAFETY: releases the waker's count.
    drop(unsafe { Rc::from_raw(task.cast::<Task<T>>()) });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A future that waits for `wake` to be called from outside, like a KV promise.
    #[derive(Default)]
    struct Gate {
        open: Cell<bool>,
        waker: RefCell<Option<Waker>>,
    }

    impl Gate {
        fn open(&self) {
            self.open.set(true);
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
        async fn wait(self: Rc<Self>) {
            std::future::poll_fn(|cx| match self.open.get() {
                true => Poll::Ready(()),
                false => {
                    *self.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await
        }
    }

    #[test]
    fn an_answer_without_waiting_is_returned_at_once() {
        assert!(matches!(start(async { 7 }), Started::Done(7)));
    }

    #[test]
    fn a_waiting_task_finishes_when_woken_without_a_queue() {
        let gate = Rc::new(Gate::default());
        let Started::Pending(pending) = start(gate.clone().wait()) else {
            panic!("the gate is closed: the task must wait");
        };
        let answer = Rc::new(Cell::new(None));
        let seen = answer.clone();
        pending.on_done(move |()| seen.set(Some("done")));
        assert_eq!(answer.get(), None);
        gate.open(); // the wake-up polls the task on the spot
        assert_eq!(answer.get(), Some("done"));
    }

    #[test]
    fn a_task_woken_during_its_own_poll_is_polled_again() {
        let polls = Rc::new(Cell::new(0));
        let counted = polls.clone();
        let yield_once = std::future::poll_fn(move |cx| {
            counted.set(counted.get() + 1);
            match counted.get() {
                1 => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                _ => Poll::Ready("second poll"),
            }
        });
        assert!(matches!(start(yield_once), Started::Done("second poll")));
        assert_eq!(polls.get(), 2);
    }

    #[test]
    fn a_finished_task_lets_go_of_its_future_and_wakers() {
        let gate = Rc::new(Gate::default());
        let Started::Pending(pending) = start(gate.clone().wait()) else {
            panic!("the gate is closed: the task must wait");
        };
        let task = Rc::downgrade(&pending.0);
        pending.on_done(|()| {});
        gate.open();
        assert_eq!(
            Rc::strong_count(&gate),
            1,
            "the finished future was dropped"
        );
        assert!(task.upgrade().is_none(), "no waker keeps the task alive");
    }
}
