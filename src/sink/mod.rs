//! The sink: the Kafka event topics -> MySQL, one task per partition.
//!
//! Each task resumes from the next offset stored in MySQL, fetches a batch,
//! and writes its rows and the new offset in one transaction: no row lost,
//! none doubled, whatever crashes where. While a batch is written, the next
//! one is fetched. Knows nothing of HTTP or Redis.

pub(crate) mod rows;
mod writer;

use std::{sync::Arc, time::Duration};

use mysql_async::Pool;
use rskafka::client::{
    error::{Error as KafkaError, ProtocolError},
    partition::{OffsetAt, PartitionClient},
};
use tokio::task::JoinSet;

use std::sync::atomic::Ordering::Relaxed;

use crate::{config::SinkSettings, events::Event, metrics::METRICS, relay::backoff, shutdown::Shutdown};
use writer::WriteError;

pub struct Sink {
    pub mysql: Pool,
    /// Every partition of every event topic this sink owns.
    pub partitions: Vec<Arc<PartitionClient>>,
    pub settings: SinkSettings,
}

impl Sink {
    /// Runs until shutdown starts.
    pub async fn run(self, shutdown: Shutdown) {
        let mut tasks = JoinSet::new();
        for client in self.partitions {
            let worker = PartitionSink {
                topic: client.topic().to_string(),
                client,
                mysql: self.mysql.clone(),
                settings: self.settings.clone(),
            };
            tasks.spawn(worker.run(shutdown.clone()));
        }
        while tasks.join_next().await.is_some() {}
        tracing::info!("sink stopped");
    }
}

/// A fetch's records and the partition's high watermark.
type Fetched = Result<(Vec<rskafka::record::RecordAndOffset>, i64), KafkaError>;

struct PartitionSink {
    client: Arc<PartitionClient>,
    mysql: Pool,
    topic: String,
    settings: SinkSettings,
}

impl PartitionSink {
    async fn run(self, mut shutdown: Shutdown) {
        let partition = self.client.partition();
        let mut failures = 0;
        let mut next = loop {
            match writer::start_offset(&self.mysql, &self.topic, partition).await {
                Ok(next) => break next,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, partition, "sink: cannot read the stored offset");
                    if shutdown.sleep(backoff(failures)).await {
                        return;
                    }
                }
            }
        };
        tracing::info!(topic = %self.topic, partition, next, "sink: resuming");
        failures = 0;
        // The next batch's fetch runs while this batch is written to MySQL.
        let mut prefetched: Option<Fetched> = None;
        // How long the broker may hold the next fetch: see `Self::wait_after`.
        let mut wait = 0;
        while !shutdown.is_started() {
            let fetched = match prefetched.take() {
                Some(fetched) => fetched,
                None => tokio::select! {
                    fetched = self.fetch(next, wait) => fetched,
                    () = shutdown.wait() => break,
                },
            };
            let (records, watermark) = match fetched {
                Ok(fetched) => fetched,
                Err(KafkaError::ServerError { protocol_error: ProtocolError::OffsetOutOfRange, .. }) => {
                    next = self.recover_out_of_range(next).await;
                    shutdown.sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, partition, "sink: fetch failed");
                    shutdown.sleep(backoff(failures)).await;
                    continue;
                }
            };
            // A fetch may start inside an earlier batch: skip what we already have.
            let mut events = Vec::with_capacity(records.len());
            let mut to = next;
            for r in records.into_iter().filter(|r| r.offset >= next) {
                to = r.offset + 1;
                match r.record.value.as_deref().map(Event::from_json) {
                    Some(Ok(event)) => events.push(event),
                    other => tracing::error!(partition, offset = r.offset, ?other, "sink: undecodable record skipped"),
                }
            }
            if to == next {
                METRICS.set_sink_lag(&self.topic, partition, watermark - next);
                wait = self.settings.sink_idle_wait_ms;
                continue;
            }
            let started = std::time::Instant::now();
            let write = async {
                let written = writer::write_batch(&self.mysql, &self.topic, partition, next, to, &events).await;
                if written.is_ok() {
                    // Counted when committed, not when the fetch beside it returns.
                    METRICS.mysql_write.observe(started.elapsed());
                    METRICS.sink_events.fetch_add(events.len() as u64, Relaxed);
                    METRICS.set_sink_lag(&self.topic, partition, watermark - to);
                }
                written
            };
            wait = self.wait_after(watermark, to);
            let (written, ahead) = tokio::join!(write, self.fetch(to, wait));
            match written {
                Ok(()) => {
                    failures = 0;
                    next = to;
                    // Fetched from `to`, which `next` now is.
                    prefetched = Some(ahead);
                }
                Err(WriteError::Moved { stored }) => {
                    tracing::warn!(partition, stored, expected = next, "sink: another sink moved this partition");
                    next = stored;
                }
                Err(WriteError::Mysql(e)) => {
                    METRICS.mysql_errors.fetch_add(1, Relaxed);
                    failures += 1;
                    tracing::warn!(error = %e, partition, "sink: MySQL write failed, retrying");
                    shutdown.sleep(backoff(failures)).await;
                }
            }
        }
    }

    /// The broker's wait for the fetch after a batch that ended at `to`:
    /// none while the watermark shows more records (a broker may hold a fetch
    /// for its whole wait even when it has records: tansu does), the short
    /// wait when caught up. After an empty fetch the sink waits
    /// `sink_idle_wait_ms`: an idle partition costs the broker a few fetches
    /// a second, not dozens.
    fn wait_after(&self, watermark: i64, to: i64) -> i32 {
        if watermark > to {
            0
        } else {
            self.settings.sink_max_wait_ms
        }
    }

    async fn fetch(&self, offset: i64, max_wait_ms: i32) -> Fetched {
        self.client.fetch_records(offset, 1..self.settings.sink_fetch_bytes, max_wait_ms).await
    }

    /// The stored offset is outside what the broker holds. Below the earliest
    /// record means retention removed records we never stored: loud, but move on.
    async fn recover_out_of_range(&self, next: i64) -> i64 {
        match self.client.get_offset(OffsetAt::Earliest).await {
            Ok(earliest) if next < earliest => {
                let partition = self.client.partition();
                tracing::error!(partition, next, earliest, "sink: records expired before they were stored");
                match writer::write_batch(&self.mysql, &self.topic, partition, next, earliest, &[]).await {
                    Ok(()) => earliest,
                    Err(WriteError::Moved { stored }) => stored,
                    Err(WriteError::Mysql(_)) => next,
                }
            }
            _ => next,
        }
    }
}
