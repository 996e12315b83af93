//! The bounds one engine (one `Uploader`, one worker) keeps across all its files, so a drop
//! of 10,000 files costs what a drop of a few does:
//!
//! - **files at once** ([`FILES_AT_ONCE`]): a file waits (`queued`) until one of these is
//!   free, then holds it from its first API call to its last (a file paused while it waits
//!   gives it back; one cancelled while it waits ends without asking the server anything). This bounds the API calls in
//!   flight and the uploads open on the server, whatever the size of the drop.
//! - **files read and hashed at once** ([`HASHING_AT_ONCE`]): the CPU the hashing takes, and
//!   the memory. A hasher gives its slot back while paused, and while every sender of its
//!   file is busy if another file waits to hash, so a huge file does not keep small ones
//!   from hashing (alone, it keeps its slot and reads ahead). Only a file holding a slot
//!   holds part buffers (the part being hashed and the one read ahead; one giving its slot
//!   back lets go of them), so the engine's part buffers stay at 2 × [`HASHING_AT_ONCE`]
//!   parts, whatever the number and size of the files.
//! - **part PUTs in flight**: the `Uploader`'s `concurrency`, shared by every file. Senders
//!   take a slot right before a PUT leaves and give it back when its answer is in, first
//!   come first served: a huge file alone gets every slot; small files beside it take turns
//!   with its parts, so neither starves the other.
//!
//! A slot is a [`Permit`] that gives itself back when dropped, also when the future waiting
//! for it is dropped after the slot was handed over. Pure (no browser API): tested natively.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use futures_channel::oneshot;

/// Files between their first and last API call at once: enough to keep the part PUTs busy
/// while some files wait on API round trips, few enough that a drop of thousands never
/// floods the API.
pub const FILES_AT_ONCE: usize = 8;
/// Files hashed at once (each with up to two part buffers in memory).
pub const HASHING_AT_ONCE: usize = 2;

/// A counting semaphore for one thread, first come first served.
pub struct Slots {
    free: Cell<usize>,
    waiting: RefCell<VecDeque<oneshot::Sender<Permit>>>,
}

/// One slot, held until dropped.
pub struct Permit {
    slots: Option<Rc<Slots>>,
}

impl Slots {
    pub fn new(n: usize) -> Rc<Self> {
        Rc::new(Self { free: Cell::new(n.max(1)), waiting: RefCell::default() })
    }

    /// Waits for a free slot.
    pub async fn take(self: &Rc<Self>) -> Permit {
        if self.free.get() > 0 && self.waiting.borrow().is_empty() {
            self.free.set(self.free.get() - 1);
            return Permit { slots: Some(self.clone()) };
        }
        loop {
            let (tx, rx) = oneshot::channel();
            self.waiting.borrow_mut().push_back(tx);
            // The sender goes without a permit only when `Slots` is dropped, which `self`
            // prevents: then simply wait again.
            if let Ok(permit) = rx.await {
                return permit;
            }
        }
    }

    /// Hands a freed slot to the first waiter still waiting, else keeps it free.
    /// Whether someone waits for a slot.
    pub fn wanted(&self) -> bool {
        !self.waiting.borrow().is_empty()
    }

    fn release(self: &Rc<Self>) {
        loop {
            let next = self.waiting.borrow_mut().pop_front();
            let Some(tx) = next else {
                self.free.set(self.free.get() + 1);
                return;
            };
            match tx.send(Permit { slots: Some(self.clone()) }) {
                Ok(()) => return,
                // That waiter is gone: the permit was never held, so it frees nothing.
                Err(mut unused) => unused.slots = None,
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release();
        }
    }
}

/// The three bounds of one engine, and its hold on the storage.
pub struct Queue {
    pub files: Rc<Slots>,
    pub hashing: Rc<Slots>,
    pub puts: Rc<Slots>,
    /// No new part PUT of any file starts before this time (ms): the storage said `429`.
    pub hold_until: Cell<f64>,
}

impl Queue {
    pub fn new(concurrency: usize) -> Rc<Self> {
        Rc::new(Self {
            files: Slots::new(FILES_AT_ONCE),
            hashing: Slots::new(HASHING_AT_ONCE),
            puts: Slots::new(concurrency),
            hold_until: Cell::new(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_util::FutureExt;

    use super::*;

    fn poll<T>(f: &mut Pin<Box<dyn Future<Output = T> + '_>>) -> Poll<T> {
        let waker = futures_util::task::noop_waker();
        f.as_mut().poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn slots_are_free_at_once_then_handed_out_first_come_first_served() {
        let slots = Slots::new(1);
        let first = slots.take().now_or_never().expect("a free slot is taken at once");
        let mut second: Pin<Box<dyn Future<Output = Permit>>> = Box::pin(slots.take());
        let mut third: Pin<Box<dyn Future<Output = Permit>>> = Box::pin(slots.take());
        assert!(poll(&mut second).is_pending() && poll(&mut third).is_pending());
        drop(first);
        assert!(poll(&mut third).is_pending(), "the first waiter comes first");
        let Poll::Ready(second) = poll(&mut second) else { panic!("the freed slot went to the first waiter") };
        drop(second);
        assert!(poll(&mut third).is_ready());
    }

    #[test]
    fn a_waiter_that_goes_takes_nothing_with_it() {
        let slots = Slots::new(1);
        let first = slots.take().now_or_never().unwrap();
        let mut gone: Pin<Box<dyn Future<Output = Permit>>> = Box::pin(slots.take());
        assert!(poll(&mut gone).is_pending());
        drop(gone); // before the handover
        drop(first);
        let again = slots.take().now_or_never().expect("the slot is free again");
        // After the handover: the permit in the dropped waiter's channel comes back.
        let mut handed: Pin<Box<dyn Future<Output = Permit>>> = Box::pin(slots.take());
        assert!(poll(&mut handed).is_pending());
        drop(again);
        drop(handed);
        let last = slots.take().now_or_never().expect("a permit handed to a dropped waiter comes back");
        drop(last);
        assert_eq!(slots.free.get(), 1, "nothing counted twice");
    }

    #[test]
    fn a_holder_knows_when_someone_waits() {
        let slots = Slots::new(1);
        let held = slots.take().now_or_never().unwrap();
        assert!(!slots.wanted());
        let mut waiter: Pin<Box<dyn Future<Output = Permit>>> = Box::pin(slots.take());
        assert!(poll(&mut waiter).is_pending());
        assert!(slots.wanted(), "a hasher gives its slot back only then");
        drop(held);
        assert!(poll(&mut waiter).is_ready());
        assert!(!slots.wanted());
    }

    #[test]
    fn a_queue_bounds_each_thing_on_its_own() {
        let queue = Queue::new(3);
        let puts: Vec<_> = (0..3).map(|_| queue.puts.take().now_or_never().unwrap()).collect();
        assert!(queue.puts.take().now_or_never().is_none(), "three PUTs at once");
        assert!(queue.files.take().now_or_never().is_some(), "files are counted apart");
        drop(puts);
        assert_eq!(queue.puts.free.get(), 3);
    }
}
