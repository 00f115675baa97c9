//! Which relays are alive, when several service instances share the outbox
//! streams (one consumer group, one consumer name per instance).
//!
//! A running relay keeps a heartbeat key (`relay:alive:<consumer>`) that
//! expires `claim_idle` after its last refresh. The refresh runs in a task
//! of its own, so a relay that is merely slow (stuck producing to a slow
//! broker) stays alive. A consumer with no heartbeat is gone: its pending
//! entries (read, never acknowledged) are claimed by a live relay once idle
//! `claim_idle` too, and the consumer is removed from each group once it holds
//! nothing, so groups do not grow with every instance that ever ran.

use std::time::Duration;

use fred::prelude::*;
use tokio::task::JoinHandle;

/// Keeps this relay's heartbeat key fresh until dropped or stopped.
pub struct Heartbeat {
    task: JoinHandle<()>,
    redis: Pool,
    key: String,
}

impl Heartbeat {
    /// Sets `key` now (so no other relay takes this one for gone) and then
    /// every third of `ttl_ms`, each time to expire `ttl_ms` later.
    pub async fn start(redis: Pool, key: String, ttl_ms: u64) -> Heartbeat {
        let ttl_ms = ttl_ms.max(1);
        if let Err(e) = beat(&redis, &key, ttl_ms).await {
            tracing::warn!(error = %e, "relay: cannot write its heartbeat");
        }
        let every = Duration::from_millis((ttl_ms / 3).clamp(10, 5_000));
        let task = tokio::spawn({
            let (redis, key) = (redis.clone(), key.clone());
            async move {
                let mut failing = false;
                loop {
                    tokio::time::sleep(every).await;
                    match beat(&redis, &key, ttl_ms).await {
                        Ok(()) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "relay: cannot refresh its heartbeat");
                        }
                        Err(_) => {}
                    }
                }
            }
        });
        Heartbeat { task, redis, key }
    }

    /// A relay stopping for good: other relays may claim what it left
    /// pending as soon as it is idle long enough.
    pub async fn stop(self) {
        self.task.abort();
        let _: Result<i64, _> = self.redis.del(&self.key).await;
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        // A relay task that ended any other way (a panic) is not alive.
        self.task.abort();
    }
}

async fn beat(redis: &Pool, key: &str, ttl_ms: u64) -> Result<(), Error> {
    redis.set(key, "1", Some(Expiration::PX(ttl_ms as i64)), None, false).await
}

/// Whether the relay named `consumer` has a heartbeat.
pub async fn is_alive(redis: &Pool, key: &str) -> Result<bool, Error> {
    let n: i64 = redis.exists(key).await?;
    Ok(n > 0)
}

/// `(consumer, pending entries)` of `stream`'s group, from `XINFO CONSUMERS`.
pub async fn consumers(redis: &Pool, stream: &str, group: &str) -> Result<Vec<(String, u64)>, Error> {
    let reply: Value = redis.xinfo_consumers(stream, group).await?;
    let Value::Array(list) = reply else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(list.len());
    for consumer in list {
        let fields: Vec<Value> = match consumer {
            Value::Array(fields) => fields,
            Value::Map(map) => map.inner().into_iter().flat_map(|(k, v)| [Value::from(k), v]).collect(),
            _ => continue,
        };
        let (mut name, mut pending) = (None, 0);
        for pair in fields.chunks(2) {
            match pair[0].as_str().as_deref() {
                Some("name") => name = pair.get(1).and_then(Value::as_string),
                Some("pending") => pending = pair.get(1).and_then(Value::as_u64).unwrap_or(0),
                _ => {}
            }
        }
        if let Some(name) = name {
            out.push((name, pending));
        }
    }
    Ok(out)
}
