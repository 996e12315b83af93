//! Pause, resume and cancel for one task: a gate every step passes, and the abort handles
//! of its in-flight requests (pausing or cancelling aborts them at once; a paused part is
//! sent again on resume).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use futures_channel::oneshot;
use web_sys::{AbortController, AbortSignal};

use super::error::EngineError;

#[derive(Default)]
pub struct Control {
    paused: Cell<bool>,
    cancelled: Cell<bool>,
    /// Set when the content turned out to be stored: the senders stop, nothing failed.
    finished: Cell<bool>,
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    in_flight: RefCell<HashMap<u32, AbortController>>,
    /// When the last resume happened (ms), until the task's progress takes it.
    resumed_at: Cell<Option<f64>>,
    /// What the task is doing when not paused (`hashing`, `uploading`, `completing`).
    phase: Cell<&'static str>,
}

impl Control {
    /// Waits while paused; errs once cancelled.
    pub async fn gate(&self) -> Result<(), EngineError> {
        loop {
            if self.cancelled.get() {
                return Err(EngineError::cancelled());
            }
            if !self.paused.get() {
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            self.waiters.borrow_mut().push(tx);
            let _ = rx.await;
        }
    }

    /// Resolves once the task is cancelled (for racing a wait that the gate does not cover).
    pub async fn until_cancelled(&self) {
        while !self.cancelled.get() {
            let (tx, rx) = oneshot::channel();
            self.waiters.borrow_mut().push(tx);
            let _ = rx.await;
        }
    }

    /// Sleeps `ms`, or less when the task is cancelled meanwhile: `Err` then.
    pub async fn sleep(&self, ms: f64) -> Result<(), EngineError> {
        race_for(super::io::sleep_ms(ms), self).await
    }

    pub fn set_phase(&self, phase: &'static str) {
        self.phase.set(phase);
    }
    pub fn phase(&self) -> &'static str {
        self.phase.get()
    }

    pub fn is_paused(&self) -> bool {
        self.paused.get()
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }
    pub fn is_finished(&self) -> bool {
        self.finished.get()
    }

    pub fn pause(&self) {
        self.paused.set(true);
        self.abort_all();
    }

    pub fn resume(&self) {
        if self.paused.get() {
            self.resumed_at.set(Some(super::io::now_ms()));
        }
        self.paused.set(false);
        self.wake();
    }

    /// When the task was last resumed, once: speed is measured from there.
    pub fn take_resumed(&self) -> Option<f64> {
        self.resumed_at.take()
    }

    pub fn cancel(&self) {
        self.cancelled.set(true);
        self.abort_all();
        self.wake();
    }

    /// The content is stored already: stop sending.
    pub fn finish(&self) {
        self.finished.set(true);
        self.abort_all();
        self.wake();
    }

    /// A guard over the request of part `number`: pausing, cancelling or finishing aborts
    /// it, and so does dropping the guard before [`InFlight::done`] (the request's future was
    /// dropped: nothing waits for its answer). A request registered after a pause, cancel or
    /// finish (its caller passed the gate before, then awaited something else) is aborted at
    /// once, so no new PUT ever starts while paused.
    pub fn track(&self, number: u32) -> Option<InFlight<'_>> {
        let c = AbortController::new().ok()?;
        if self.paused.get() || self.cancelled.get() || self.finished.get() {
            c.abort();
        } else {
            self.in_flight.borrow_mut().insert(number, c.clone());
        }
        Some(InFlight { ctl: self, number, controller: Some(c) })
    }

    fn abort_all(&self) {
        for (_, c) in self.in_flight.borrow_mut().drain() {
            c.abort();
        }
    }

    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }
}

/// A request of [`Control`]'s, aborted on drop unless it is [`done`](InFlight::done).
pub struct InFlight<'a> {
    ctl: &'a Control,
    number: u32,
    controller: Option<AbortController>,
}

impl InFlight<'_> {
    pub fn signal(&self) -> Option<AbortSignal> {
        self.controller.as_ref().map(AbortController::signal)
    }

    /// The answer has come (its body may still be read): stop tracking, do not abort.
    pub fn done(mut self) {
        self.controller = None;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.ctl.in_flight.borrow_mut().remove(&self.number);
        if let Some(c) = self.controller.take() {
            c.abort();
        }
    }
}

/// Takes what `wait` gives unless the task is cancelled first (`Err` then).
pub async fn race_for<T>(wait: impl std::future::Future<Output = T>, ctl: &Control) -> Result<T, EngineError> {
    let wait = std::pin::pin!(wait);
    let cancelled = std::pin::pin!(ctl.until_cancelled());
    match futures_util::future::select(wait, cancelled).await {
        futures_util::future::Either::Left((value, _)) => Ok(value),
        futures_util::future::Either::Right(_) => Err(EngineError::cancelled()),
    }
}
