//! A bound on Argon2 work. Each hash holds 19 MiB and a core for tens of milliseconds by
//! design, so with no bound 500 logins at once (from as many addresses, past any per-client
//! rate limit) need ~10 GB and starve every other request of CPU.
//!
//! A request that has a password to check first takes a *place* (`auth.hash_concurrency`
//! running plus `auth.hash_queue` waiting) without waiting for one: with none left it is
//! refused at once with `503 auth-busy` and `Retry-After`, which costs nothing. With a place
//! it waits for a *slot* to run in. The slot moves into the blocking task that hashes, so a
//! client that hangs up mid-hash does not free it while the hash still runs: the bound holds
//! for the work done, not for the requests still connected.

use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AuthError;
use crate::config::AuthSettings;

/// The places and slots of one app.
#[derive(Debug)]
pub struct HashGate {
    places: Arc<Semaphore>,
    slots: Arc<Semaphore>,
}

/// Leave to run one request's password work; held until that work ends.
#[derive(Debug)]
pub struct HashSlot {
    _place: OwnedSemaphorePermit,
    _slot: OwnedSemaphorePermit,
}

impl HashGate {
    pub fn new(auth: &AuthSettings) -> Self {
        let running = match auth.hash_concurrency {
            0 => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            n => n,
        };
        let running = running.min(Semaphore::MAX_PERMITS);
        let places = running.saturating_add(auth.hash_queue).min(Semaphore::MAX_PERMITS);
        Self { places: Arc::new(Semaphore::new(places)), slots: Arc::new(Semaphore::new(running)) }
    }

    /// A slot, after waiting for one if a place is free; `Busy` at once if none is.
    pub async fn enter(&self) -> Result<HashSlot, AuthError> {
        let place = self.places.clone().try_acquire_owned().map_err(|_| AuthError::Busy)?;
        // The semaphores are never closed, so this only waits.
        let slot = self.slots.clone().acquire_owned().await.map_err(|_| AuthError::Busy)?;
        Ok(HashSlot { _place: place, _slot: slot })
    }
}

impl HashSlot {
    /// Runs `work` on the blocking pool, holding this slot until it ends, even if the
    /// request that asked for it is dropped meanwhile.
    pub async fn run<T: Send + 'static>(self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AuthError> {
        tokio::task::spawn_blocking(move || {
            let _held = self;
            work()
        })
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn gate(concurrency: usize, queue: usize) -> HashGate {
        HashGate::new(&AuthSettings { hash_concurrency: concurrency, hash_queue: queue, ..AuthSettings::default() })
    }

    #[tokio::test]
    async fn past_the_running_and_waiting_places_the_answer_is_busy_at_once() {
        let gate = Arc::new(gate(1, 1));
        let running = gate.enter().await.unwrap();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second waits for the slot");
        assert!(matches!(gate.enter().await, Err(AuthError::Busy)), "the third has no place");
        drop(running);
        waiting.await.unwrap().unwrap();
        gate.enter().await.unwrap();
    }

    #[tokio::test]
    async fn a_dropped_request_keeps_its_slot_until_its_hash_ends() {
        let gate = Arc::new(gate(1, 0));
        let (started, ready) = std::sync::mpsc::channel();
        let (finish, done) = std::sync::mpsc::channel::<()>();
        let request = tokio::spawn({
            let gate = gate.clone();
            async move {
                let slot = gate.enter().await?;
                slot.run(move || {
                    let _ = started.send(());
                    let _ = done.recv();
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || ready.recv()).await.unwrap().unwrap();
        request.abort();
        let _ = request.await;
        assert!(matches!(gate.enter().await, Err(AuthError::Busy)), "the hash still runs");
        finish.send(()).unwrap();
        for _ in 0..100 {
            if gate.enter().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the slot never came back");
    }

    #[test]
    fn zero_means_one_slot_per_core() {
        let cores = std::thread::available_parallelism().unwrap().get();
        let g = gate(0, 3);
        assert_eq!((g.slots.available_permits(), g.places.available_permits()), (cores, cores + 3));
    }
}
