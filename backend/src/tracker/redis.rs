//! The tracker shared by every replica, in Redis through `deadpool-redis`.
//!
//! Per upload: a `meta` key that says the entry exists, a hash of part number to
//! "etag\nsha1", and a `claim` key for completion. The keys share a hash tag (`{id}`) so a
//! Redis Cluster keeps them on one shard and the Lua scripts may touch them together. All
//! keys expire with the upload's TTL; a missing `meta` key means the entry was lost, and the
//! caller rebuilds it from storage.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::{Config, Pool, Runtime};
use redis::{AsyncCommands, Script};

use super::{decode, encode, PartRecord, Tracker, TrackerError};

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
}

impl RedisTracker {
    pub fn new(url: &str, prefix: &str) -> Result<Self, TrackerError> {
        let pool = Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| TrackerError::Other(format!("redis pool: {e}")))?;
        Ok(Self { pool, prefix: prefix.to_owned(), record: Script::new(RECORD), release: Script::new(RELEASE) })
    }

    fn keys(&self, upload: &str) -> [String; 3] {
        let base = format!("{}:up:{{{upload}}}", self.prefix);
        [format!("{base}:meta"), format!("{base}:parts"), format!("{base}:claim")]
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, TrackerError> {
        Ok(self.pool.get().await?)
    }
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

    async fn forget(&self, upload: &str) -> Result<(), TrackerError> {
        let mut c = self.conn().await?;
        let _: i64 = c.del(&self.keys(upload)).await?;
        Ok(())
    }
}
