//! The verification queue in Redis: a Stream with one consumer group, so a job whose
//! verifier died goes to another, and a Redis that lost it is rebuilt.

use std::time::Duration;

use shardrop_backend::tracker::redis::RedisTracker;
use shardrop_backend::tracker::VerifyQueue;

use crate::support::redis_url;

fn tracker() -> (RedisTracker, String) {
    let prefix = format!("shardrop-test-q-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    (RedisTracker::new(&redis_url(), &prefix).unwrap(), format!("{prefix}:verify"))
}

async fn delete(key: &str) {
    let mut c = redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("DEL").arg(key).query_async(&mut c).await.unwrap();
}

#[tokio::test]
async fn a_dead_verifiers_job_goes_to_another_and_is_done_once() {
    let (t, key) = tracker();
    let (stale, wait) = (Duration::from_millis(300), Duration::from_millis(100));
    assert_eq!(t.next_verify("a", stale, wait).await.unwrap(), None, "an empty queue waits, then answers none");
    t.queue_verify("fi_1").await.unwrap();
    t.queue_verify("fi_2").await.unwrap();
    let first = t.next_verify("a", stale, wait).await.unwrap().unwrap();
    assert_eq!(first.file, "fi_1");
    // "a" dies holding fi_1. Before it is stale, "b" gets the next new job, not a's.
    let second = t.next_verify("b", stale, wait).await.unwrap().unwrap();
    assert_eq!(second.file, "fi_2");
    t.ack_verify(&second).await.unwrap();
    assert_eq!(t.next_verify("b", stale, wait).await.unwrap(), None);
    // Once silent past the stale time, a's job goes to "b".
    tokio::time::sleep(stale + Duration::from_millis(100)).await;
    let taken = t.next_verify("b", stale, wait).await.unwrap().unwrap();
    assert_eq!((taken.id.as_str(), taken.file.as_str()), (first.id.as_str(), "fi_1"));
    // A working verifier keeps its job by touching it.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        t.touch_verify("b", &taken).await.unwrap();
        assert_eq!(t.next_verify("c", stale, wait).await.unwrap(), None, "a touched job is not taken over");
    }
    t.ack_verify(&taken).await.unwrap();
    tokio::time::sleep(stale + Duration::from_millis(100)).await;
    assert_eq!(t.next_verify("c", stale, wait).await.unwrap(), None, "an acknowledged job is gone");
    delete(&key).await;
}

#[tokio::test]
async fn a_flushed_queue_is_made_again() {
    let (t, key) = tracker();
    let wait = Duration::from_millis(100);
    t.queue_verify("fi_1").await.unwrap();
    assert_eq!(t.next_verify("a", wait, wait).await.unwrap().unwrap().file, "fi_1");
    delete(&key).await; // what FLUSHALL does to this queue
    assert_eq!(t.next_verify("a", wait, wait).await.unwrap(), None);
    t.queue_verify("fi_2").await.unwrap();
    assert_eq!(t.next_verify("a", wait, wait).await.unwrap().unwrap().file, "fi_2");
    delete(&key).await;
}
