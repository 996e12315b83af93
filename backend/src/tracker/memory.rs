//! The in-process tracker of the embedded one-command mode: right for one replica only.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{CompletionLease, PartCounter, PartRecord, Tracker, TrackerError, VerifyJob, VerifyQueue};

#[derive(Default)]
struct Entry {
    parts: BTreeMap<u32, PartRecord>,
    expires: Option<Instant>,
    claim: Option<(String, Instant)>,
}

#[derive(Default)]
pub struct MemoryTracker {
    entries: Mutex<HashMap<String, Entry>>,
    /// Files waiting for the (one) verifier of this process.
    verify: Mutex<VecDeque<String>>,
    queued: Notify,
}

impl MemoryTracker {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> Result<T, TrackerError> {
        let mut entries = self.entries.lock().map_err(|_| TrackerError::Other("tracker lock poisoned".into()))?;
        let now = Instant::now();
        entries.retain(|_, e| e.expires.is_none_or(|t| t > now) || e.claim.is_some());
        Ok(f(&mut entries))
    }
}

#[async_trait]
impl Tracker for MemoryTracker {
    async fn ping(&self) -> Result<(), TrackerError> {
        self.with(|_| ())
    }
}

#[async_trait]
impl PartCounter for MemoryTracker {
    async fn open(&self, upload: &str, ttl: Duration) -> Result<(), TrackerError> {
        self.with(|m| {
            let e = m.entry(upload.to_owned()).or_default();
            e.expires = Some(Instant::now() + ttl);
        })
    }

    async fn record(&self, upload: &str, part: &PartRecord, ttl: Duration) -> Result<Option<u32>, TrackerError> {
        self.with(|m| {
            let e = m.get_mut(upload).filter(|e| e.expires.is_some())?;
            e.parts.insert(part.number, part.clone());
            e.expires = Some(Instant::now() + ttl);
            u32::try_from(e.parts.len()).ok()
        })
    }

    async fn parts(&self, upload: &str) -> Result<Option<BTreeMap<u32, PartRecord>>, TrackerError> {
        self.with(|m| m.get(upload).filter(|e| e.expires.is_some()).map(|e| e.parts.clone()))
    }

    async fn rebuild(&self, upload: &str, parts: &[PartRecord], ttl: Duration) -> Result<(), TrackerError> {
        self.with(|m| {
            let e = m.entry(upload.to_owned()).or_default();
            e.parts = parts.iter().map(|p| (p.number, p.clone())).collect();
            e.expires = Some(Instant::now() + ttl);
        })
    }

    async fn forget(&self, upload: &str) -> Result<(), TrackerError> {
        self.with(|m| {
            m.remove(upload);
        })
    }
}

#[async_trait]
impl CompletionLease for MemoryTracker {
    async fn claim_completion(&self, upload: &str, holder: &str, lease: Duration) -> Result<bool, TrackerError> {
        self.with(|m| {
            let e = m.entry(upload.to_owned()).or_default();
            let now = Instant::now();
            match &e.claim {
                Some((_, until)) if *until > now => false,
                _ => {
                    e.claim = Some((holder.to_owned(), now + lease));
                    true
                }
            }
        })
    }

    async fn release_completion(&self, upload: &str, holder: &str) -> Result<(), TrackerError> {
        self.with(|m| {
            if let Some(e) = m.get_mut(upload) {
                if e.claim.as_ref().is_some_and(|(h, _)| h == holder) {
                    e.claim = None;
                }
            }
        })
    }
}

#[async_trait]
impl VerifyQueue for MemoryTracker {
    async fn queue_verify(&self, file: &str) -> Result<(), TrackerError> {
        self.verify.lock().map_err(|_| TrackerError::Other("queue lock poisoned".into()))?.push_back(file.to_owned());
        self.queued.notify_one();
        Ok(())
    }

    async fn next_verify(&self, _: &str, _: Duration, wait: Duration) -> Result<Option<VerifyJob>, TrackerError> {
        let pop = || -> Result<Option<VerifyJob>, TrackerError> {
            let mut q = self.verify.lock().map_err(|_| TrackerError::Other("queue lock poisoned".into()))?;
            Ok(q.pop_front().map(|file| VerifyJob { id: String::new(), file }))
        };
        if let Some(job) = pop()? {
            return Ok(Some(job));
        }
        let _ = tokio::time::timeout(wait, self.queued.notified()).await;
        pop()
    }

    // One process, one verifier: nobody else could take a job over.

    async fn touch_verify(&self, _: &str, _: &VerifyJob) -> Result<(), TrackerError> {
        Ok(())
    }

    async fn ack_verify(&self, _: &VerifyJob) -> Result<(), TrackerError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(n: u32, etag: &str) -> PartRecord {
        PartRecord { number: n, etag: etag.into(), sha1: "x".into() }
    }

    #[tokio::test]
    async fn counts_each_part_once_and_knows_what_it_lost() {
        let t = MemoryTracker::default();
        let ttl = Duration::from_secs(60);
        assert_eq!(t.record("u", &part(1, "a"), ttl).await.unwrap(), None);
        t.open("u", ttl).await.unwrap();
        for _ in 0..5 {
            assert_eq!(t.record("u", &part(1, "a"), ttl).await.unwrap(), Some(1));
        }
        assert_eq!(t.record("u", &part(1, "b"), ttl).await.unwrap(), Some(1));
        assert_eq!(t.record("u", &part(2, "c"), ttl).await.unwrap(), Some(2));
        assert_eq!(t.parts("u").await.unwrap().unwrap()[&1].etag, "b");
        assert!(t.claim_completion("u", "r1", ttl).await.unwrap());
        assert!(!t.claim_completion("u", "r2", ttl).await.unwrap());
        t.release_completion("u", "r2").await.unwrap();
        assert!(!t.claim_completion("u", "r2", ttl).await.unwrap());
        t.release_completion("u", "r1").await.unwrap();
        assert!(t.claim_completion("u", "r2", ttl).await.unwrap());
        t.forget("u").await.unwrap();
        assert_eq!(t.parts("u").await.unwrap(), None);
    }

    #[tokio::test]
    async fn verification_queue_is_first_in_first_out_and_waits() {
        let t = MemoryTracker::default();
        let wait = Duration::from_millis(20);
        assert_eq!(t.next_verify("r", wait, wait).await.unwrap(), None);
        t.queue_verify("a").await.unwrap();
        t.queue_verify("b").await.unwrap();
        assert_eq!(t.next_verify("r", wait, wait).await.unwrap().unwrap().file, "a");
        assert_eq!(t.next_verify("r", wait, wait).await.unwrap().unwrap().file, "b");
    }
}
