//! The relay: outbox streams in Redis -> the Kafka event topic.
//!
//! Reads entries with a consumer group, produces them (key = campaign id, so
//! one campaign stays ordered in one partition), and only after the broker
//! acknowledged them acknowledges and deletes them in Redis. A crash between
//! the two resends the batch on restart: delivery is at-least-once, and every
//! event carries a stable id for the sink to recognise replays.
//! Several instances share the streams, each its own consumer; what a gone
//! one left pending is claimed by the others (`liveness`).
//! Knows nothing of HTTP or MySQL.

mod liveness;
mod outbox;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use rskafka::{
    chrono::{DateTime, Utc},
    client::partition::{Compression, PartitionClient},
    record::Record,
};
use std::sync::atomic::Ordering::Relaxed;

use tokio::{task::JoinSet, time::Instant};

use crate::{
    events::{partition_for, Event},
    kafka::Topics,
    metrics::METRICS,
    shutdown::Shutdown,
};
pub use outbox::Outbox;

/// How often the campaign list is re-read for new outbox streams.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How long one blocking read waits for new entries.
const BLOCK_MS: u64 = 100;
/// About how many events one Redis read takes, and most entries one
/// acknowledgement takes: Redis serves nothing else meanwhile, so a 10k-entry
/// read or acknowledgement shows up in the hot path's tail latency. A batch for
/// Kafka is gathered from several such reads.
const REDIS_SLICE: usize = 1000;
/// Most record bytes in one produce request: large requests amortise the
/// broker's per-request cost; Kafka's default message.max.bytes is 1 MiB.
pub const CHUNK_BYTES: usize = 512 * 1024;

pub struct Relay {
    pub outbox: Outbox,
    pub topics: Arc<Topics>,
    pub batch: usize,
    pub claim_idle_ms: u64,
}

struct Stopped;

impl Relay {
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let heartbeat = self.outbox.heartbeat(self.claim_idle_ms).await;
        tracing::info!(consumer = self.outbox.consumer(), "relay started");
        let mut refreshed: Option<Instant> = None;
        let mut claimed = Instant::now();
        // First drain what this consumer read before a restart but never acknowledged.
        let mut pending = true;
        let mut failures = 0u32;
        while !shutdown.is_started() {
            if refreshed.is_none_or(|at| at.elapsed() >= REFRESH_EVERY) {
                if let Err(e) = self.outbox.refresh().await {
                    tracing::warn!(error = %e, "relay: cannot list outbox streams");
                }
                match self.outbox.backlog().await {
                    Ok((entries, pending)) => {
                        METRICS.outbox_entries.store(entries as i64, Relaxed);
                        METRICS.outbox_pending.store(pending as i64, Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "relay: cannot measure the outbox"),
                }
                refreshed = Some(Instant::now());
            }
            if !self.outbox.has_streams() {
                shutdown.sleep(Duration::from_millis(BLOCK_MS)).await;
                continue;
            }
            if claimed.elapsed() >= Duration::from_millis(self.claim_idle_ms) {
                match self.outbox.claim_idle(self.claim_idle_ms).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(entries = n, "relay: claimed entries of a gone relay");
                        pending = true;
                    }
                    Err(e) => tracing::warn!(error = %e, "relay: claim failed"),
                }
                claimed = Instant::now();
            }
            let read = tokio::select! {
                read = self.read_batch(pending) => read,
                () = shutdown.wait() => break,
            };
            let entries = match read {
                Ok(entries) => {
                    failures = 0;
                    entries
                }
                Err(e) => {
                    failures += 1;
                    // Entries may have been read and left pending (a wait for
                    // replicas that came back short): take them again first.
                    pending = true;
                    tracing::warn!(error = %e, "relay: cannot read the outbox");
                    if e.details().contains("NOGROUP") {
                        // Redis lost a stream (restart without AOF, a replaced
                        // sale): forget every group and create them anew.
                        self.outbox.forget_streams();
                        refreshed = None;
                    }
                    shutdown.sleep(backoff(failures)).await;
                    continue;
                }
            };
            if entries.is_empty() {
                pending = false;
                continue;
            }
            let n = entries.iter().map(|e| e.events.len() as u64).sum();
            if self.deliver(entries, &mut shutdown).await.is_err() {
                break;
            }
            METRICS.relay_events.fetch_add(n, Relaxed);
            METRICS.relay_batches.fetch_add(1, Relaxed);
            METRICS.relay_batch_size.observe_size(n);
        }
        heartbeat.stop().await;
        tracing::info!("relay stopped");
    }

    /// With `pending`, one slice (about `REDIS_SLICE` events) of this
    /// consumer's unacknowledged entries (after a restart or a claim; the next
    /// round, once these are acknowledged, reads the next slice from 0 again).
    /// Otherwise up to about `batch` events in new entries, gathered from
    /// slices; only the first read waits (up to `BLOCK_MS`) for entries.
    async fn read_batch(&self, pending: bool) -> Result<Vec<Entry>, fred::error::Error> {
        let slice = REDIS_SLICE.min(self.batch);
        if pending {
            return Ok(self.outbox.read(slice, true, None).await?.0);
        }
        let (mut entries, mut full) = self.outbox.read(slice, false, Some(BLOCK_MS)).await?;
        let mut events: usize = entries.iter().map(|e| e.events.len()).sum();
        while full && events < self.batch {
            match self.outbox.read(slice.min(self.batch - events), false, None).await {
                Ok((more, more_full)) => {
                    full = more_full;
                    events += more.iter().map(|e| e.events.len()).sum::<usize>();
                    entries.extend(more);
                }
                Err(e) => {
                    // Deliver what was read; the next round meets the error again.
                    tracing::warn!(error = %e, "relay: cannot read more of the outbox");
                    break;
                }
            }
        }
        Ok(entries)
    }

    /// Produces `entries` until the broker has all of them, then forgets them
    /// in Redis. Gives up only when shutdown starts (they stay pending).
    async fn deliver(&self, entries: Vec<Entry>, shutdown: &mut Shutdown) -> Result<(), Stopped> {
        // Records per partition client, in outbox order.
        let mut per_partition: Vec<(Arc<PartitionClient>, Vec<Record>)> = Vec::new();
        let mut per_stream: BTreeMap<Arc<str>, Vec<String>> = BTreeMap::new();
        for entry in entries {
            for event in &entry.events {
                let partitions = self.topics.for_event(event);
                let client = &partitions[partition_for(event.key(), partitions.len() as i32) as usize];
                match per_partition.iter_mut().find(|(c, _)| Arc::ptr_eq(c, client)) {
                    Some((_, records)) => records.push(record(event)),
                    None => per_partition.push((client.clone(), vec![record(event)])),
                }
            }
            per_stream.entry(entry.stream).or_default().push(entry.id);
        }

        let mut produces = JoinSet::new();
        for (client, records) in per_partition {
            produces.spawn(produce_all(client, records, shutdown.clone()));
        }
        let mut stopped = false;
        while let Some(done) = produces.join_next().await {
            stopped |= !matches!(done, Ok(Ok(())));
        }
        if stopped {
            return Err(Stopped);
        }

        for (stream, ids) in per_stream {
            for ids in ids.chunks(REDIS_SLICE) {
                let mut failures = 0;
                while let Err(e) = self.outbox.ack(&stream, ids).await {
                    failures += 1;
                    tracing::warn!(error = %e, %stream, "relay: cannot acknowledge outbox entries");
                    if shutdown.sleep(backoff(failures)).await {
                        return Err(Stopped);
                    }
                }
            }
        }
        Ok(())
    }
}

use outbox::Entry;

/// Produces `records` in order, in chunks, retrying each chunk until the
/// broker acknowledges it or shutdown starts.
async fn produce_all(
    client: Arc<PartitionClient>,
    records: Vec<Record>,
    mut shutdown: Shutdown,
) -> Result<(), Stopped> {
    for chunk in chunks(&records, CHUNK_BYTES) {
        let mut failures = 0;
        loop {
            let started = std::time::Instant::now();
            match client.produce(chunk.to_vec(), Compression::NoCompression).await {
                Ok(_) => {
                    METRICS.kafka_produce.observe(started.elapsed());
                    break;
                }
                Err(e) => {
                    METRICS.kafka_produce_errors.fetch_add(1, Relaxed);
                    failures += 1;
                    tracing::warn!(error = %e, partition = client.partition(), "relay: produce failed, retrying");
                    if shutdown.sleep(backoff(failures)).await {
                        return Err(Stopped);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Consecutive slices of `records` of at most `max_bytes` each (a single
/// larger record goes alone).
pub fn chunks(records: &[Record], max_bytes: usize) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        let size = r.approximate_size();
        if i > start && bytes + size > max_bytes {
            out.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

/// The Kafka record of an event: key = campaign (or sale) id, value = the event's JSON.
pub fn record(event: &Event) -> Record {
    Record {
        key: Some(event.key().to_string().into_bytes()),
        value: Some(event.to_json()),
        headers: BTreeMap::new(),
        timestamp: DateTime::from_timestamp_millis(event.at() as i64).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
    }
}

/// 50 ms, doubling, at most 2 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_millis((50u64 << failures.min(6)).min(2_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stay_under_the_byte_limit_and_keep_order() {
        let records: Vec<Record> = (0..100)
            .map(|i| Record {
                key: Some(vec![b'k']),
                value: Some(vec![i as u8; 100]),
                headers: BTreeMap::new(),
                timestamp: DateTime::<Utc>::UNIX_EPOCH,
            })
            .collect();
        let size = records[0].approximate_size();
        let chunks = chunks(&records, size * 10);
        assert_eq!(chunks.len(), 10);
        assert!(chunks.iter().all(|c| c.len() == 10));
        let flat: Vec<&Record> = chunks.iter().flat_map(|c| c.iter()).collect();
        assert!(flat.iter().zip(&records).all(|(a, b)| *a == b));
        assert_eq!(super::chunks(&records[..1], 1).len(), 1, "an oversized record goes alone");
    }
}
