//! The tracker shared by every replica, in Redis through `deadpool-redis`.
//!
//! Per upload: a `meta` key that says the entry exists, a hash of part number to
//! "etag\nsha1", and a `claim` key for completion. The keys share a hash tag (`{id}`) so a
//! Redis Cluster keeps them on one shard and the Lua scripts may touch them together. All
//! keys expire with the upload's TTL; a missing `meta` key means the entry was lost, and the
//! caller rebuilds it from storage.
//!
//! The verification queue is one stream (`{prefix}:verify`) read by the consumer group
//! `verifiers`; each replica is one consumer. `XAUTOCLAIM` hands a job whose consumer has
//! been silent past the stale time to the next replica that asks; a working verifier keeps
//! its job with `XCLAIM … JUSTID`, which resets the silence.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::{Config, Pool, Runtime};
use redis::streams::{StreamAutoClaimOptions, StreamClaimOptions, StreamMaxlen, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Script};

use super::{decode, encode, CompletionLease, PartCounter, PartRecord, Tracker, TrackerError, VerifyJob, VerifyQueue};

/// The consumer group of every replica's verifier.
const VERIFIERS: &str = "verifiers";
/// The queue is trimmed (roughly) past this many entries; acknowledged ones are deleted.
const QUEUE_MAX: usize = 100_000;

/// Adds a part only if the entry exists, refreshes the TTL, answers the distinct count (-1: lost).
const RECORD: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return redis.call('HLEN', KEYS[2])
";

/// Deletes the claim only if this holder still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

pub struct RedisTracker {
    pool: Pool,
    prefix: String,
    record: Script,
    release: Script,
    /// Where the next XAUTOCLAIM scan of the pending jobs starts: each call looks at a few
    /// entries, so the scan walks the whole list over calls instead of its first entries.
    claim_cursor: std::sync::Mutex<String>,
}

impl RedisTracker {
    pub fn new(url: &str, prefix: &str) -> Result<Self, TrackerError> {
        let pool = Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| TrackerError::Other(format!("redis pool: {e}")))?;
        Ok(Self {
            pool,
            prefix: prefix.to_owned(),
            record: Script::new(RECORD),
            release: Script::new(RELEASE),
            claim_cursor: std::sync::Mutex::new("0-0".into()),
        })
    }

    fn keys(&self, upload: &str) -> [String; 3] {
        let base = format!("{}:up:{{{upload}}}", self.prefix);
        [format!("{base}:meta"), format!("{base}:parts"), format!("{base}:claim")]
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, TrackerError> {
        Ok(self.pool.get().await?)
    }

    fn queue(&self) -> String {
        format!("{}:verify", self.prefix)
    }

    /// Makes the stream and its group (from the start, so nothing queued before is missed).
    async fn ensure_group(&self, c: &mut deadpool_redis::Connection) -> Result<(), TrackerError> {
        let made: Result<(), redis::RedisError> = c.xgroup_create_mkstream(self.queue(), VERIFIERS, "0").await;
        match made {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn read_verify(
        &self,
        c: &mut deadpool_redis::Connection,
        consumer: &str,
        stale: Duration,
        wait: Duration,
    ) -> Result<Option<VerifyJob>, redis::RedisError> {
        let start = self.claim_cursor.lock().map(|c| c.clone()).unwrap_or_else(|_| "0-0".into());
        let claimed: redis::streams::StreamAutoClaimReply = c
            .xautoclaim_options(
                self.queue(),
                VERIFIERS,
                consumer,
                millis(stale),
                &start,
                StreamAutoClaimOptions::default().count(1),
            )
            .await?;
        if let Ok(mut cursor) = self.claim_cursor.lock() {
            // "0-0" again once the scan has reached the end.
            *cursor = claimed.next_stream_id.clone();
        }
        if let Some(entry) = claimed.claimed.into_iter().next() {
            return Ok(Some(job(entry)));
        }
        let opts = StreamReadOptions::default().group(VERIFIERS, consumer).count(1).block(millis(wait) as usize);
        let read: Option<StreamReadReply> = c.xread_options(&[self.queue()], &[">"], &opts).await?;
        Ok(read.and_then(|r| r.keys.into_iter().next()).and_then(|k| k.ids.into_iter().next()).map(job))
    }
}

fn job(entry: redis::streams::StreamId) -> VerifyJob {
    let file = entry.get::<String>("file").unwrap_or_default();
    VerifyJob { id: entry.id, file }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Tracker for RedisTracker {
    async fn ping(&self) -> Result<(), TrackerError> {
        let mut c = self.conn().await?;
        let _: String = redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }
}

#[async_trait]
impl PartCounter for RedisTracker {
    async fn open(&self, upload: &str, ttl: Duration) -> Result<(), TrackerError> {
        let [meta, _, _] = self.keys(upload);
        let mut c = self.conn().await?;
        let _: () = c.pset_ex(meta, 1, millis(ttl)).await?;
        Ok(())
    }

    async fn record(&self, upload: &str, part: &PartRecord, ttl: Duration) -> Result<Option<u32>, TrackerError> {
        let [meta, parts, _] = self.keys(upload);
        let mut c = self.conn().await?;
        let n: i64 = self
            .record
            .key(meta)
            .key(parts)
            .arg(part.number)
            .arg(encode(part))
            .arg(millis(ttl))
            .invoke_async(&mut c)
            .await?;
        Ok(u32::try_from(n).ok())
    }

    async fn parts(&self, upload: &str) -> Result<Option<BTreeMap<u32, PartRecord>>, TrackerError> {
        let [meta, parts, _] = self.keys(upload);
        let mut c = self.conn().await?;
        let (exists, all): (bool, BTreeMap<u32, String>) =
            redis::pipe().atomic().exists(meta).hgetall(parts).query_async(&mut c).await?;
        if !exists {
            return Ok(None);
        }
        Ok(Some(all.into_iter().filter_map(|(n, v)| decode(n, &v).map(|p| (n, p))).collect()))
    }

    async fn rebuild(&self, upload: &str, parts: &[PartRecord], ttl: Duration) -> Result<(), TrackerError> {
        let [meta, parts_key, _] = self.keys(upload);
        let ms = millis(ttl);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&parts_key).ignore();
        if !parts.is_empty() {
            let fields: Vec<(u32, String)> = parts.iter().map(|p| (p.number, encode(p))).collect();
            pipe.hset_multiple(&parts_key, &fields).ignore().pexpire(&parts_key, ms as i64).ignore();
        }
        pipe.pset_ex(meta, 1, ms).ignore();
        let mut c = self.conn().await?;
        let _: () = pipe.query_async(&mut c).await?;
        Ok(())
    }

    async fn forget(&self, upload: &str) -> Result<(), TrackerError> {
        let mut c = self.conn().await?;
        let _: i64 = c.del(&self.keys(upload)).await?;
        Ok(())
    }
}

#[async_trait]
impl CompletionLease for RedisTracker {
    async fn claim_completion(&self, upload: &str, holder: &str, lease: Duration) -> Result<bool, TrackerError> {
        let [_, _, claim] = self.keys(upload);
        let mut c = self.conn().await?;
        let set: Option<String> =
            redis::cmd("SET").arg(claim).arg(holder).arg("NX").arg("PX").arg(millis(lease)).query_async(&mut c).await?;
        Ok(set.is_some())
    }

    async fn release_completion(&self, upload: &str, holder: &str) -> Result<(), TrackerError> {
        let [_, _, claim] = self.keys(upload);
        let mut c = self.conn().await?;
        let _: i64 = self.release.key(claim).arg(holder).invoke_async(&mut c).await?;
        Ok(())
    }
}

#[async_trait]
impl VerifyQueue for RedisTracker {
    async fn queue_verify(&self, file: &str) -> Result<(), TrackerError> {
        let mut c = self.conn().await?;
        let _: String = c.xadd_maxlen(self.queue(), StreamMaxlen::Approx(QUEUE_MAX), "*", &[("file", file)]).await?;
        Ok(())
    }

    async fn next_verify(
        &self,
        consumer: &str,
        stale: Duration,
        wait: Duration,
    ) -> Result<Option<VerifyJob>, TrackerError> {
        let mut c = self.conn().await?;
        match self.read_verify(&mut c, consumer, stale, wait).await {
            // No stream or group yet, or Redis lost them (flushed): make them and look again.
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_group(&mut c).await?;
                Ok(self.read_verify(&mut c, consumer, stale, wait).await?)
            }
            other => Ok(other?),
        }
    }

    async fn touch_verify(&self, consumer: &str, job: &VerifyJob) -> Result<(), TrackerError> {
        let mut c = self.conn().await?;
        let opts = StreamClaimOptions::default().with_justid();
        let _: Vec<String> = c.xclaim_options(self.queue(), VERIFIERS, consumer, 0, &[&job.id], opts).await?;
        Ok(())
    }

    async fn ack_verify(&self, job: &VerifyJob) -> Result<(), TrackerError> {
        let mut c = self.conn().await?;
        let _: () = redis::pipe()
            .xack(self.queue(), VERIFIERS, &[&job.id])
            .ignore()
            .xdel(self.queue(), &[&job.id])
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(())
    }
}
