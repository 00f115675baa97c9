//! The sink: the Kafka event topics -> MySQL, one task per partition.
//!
//! Each task holds its partition's fence (`fence`: a MySQL named lock, so
//! `flashsale sink reset-offset` cannot move the offset under it), resumes
//! from the next offset stored in MySQL, fetches a batch, and writes its rows
//! and the new offset in one transaction: no row lost, none doubled, whatever
//! crashes where. While a batch is written, the next one is fetched. A
//! partition that cannot go on by itself is reported stalled (`stall`).
//! Knows nothing of HTTP or Redis.

mod fence;
mod instance;
pub(crate) mod rows;
mod stall;
pub(crate) mod wallet_rows;
pub mod writer;

pub use fence::{is_held, lock_name, release, try_lock};
pub use instance::SinkInstance;
pub use stall::SinkHealth;

use std::{sync::Arc, time::Duration};

use mysql_async::{Opts, Pool};
use rskafka::client::{
    error::{Error as KafkaError, ProtocolError},
    partition::{OffsetAt, PartitionClient},
};
use tokio::task::JoinSet;

use std::sync::atomic::Ordering::Relaxed;

use crate::{
    config::{MysqlSettings, SinkSettings},
    events::Event,
    metrics::METRICS,
    relay::backoff,
    shutdown::Shutdown,
};
use fence::Fence;
use stall::Stall;
use writer::WriteError;

/// How often a partition whose fence another sink holds, or whose stored
/// offset is past the broker's end, looks again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

pub struct Sink {
    pub mysql: Pool,
    /// For each partition's fence connection, outside the pool.
    opts: Opts,
    /// Every partition of every event topic this sink owns.
    pub partitions: Vec<Arc<PartitionClient>>,
    pub settings: SinkSettings,
    pub health: Arc<SinkHealth>,
}

impl Sink {
    pub fn new(
        mysql: &MysqlSettings,
        partitions: Vec<Arc<PartitionClient>>,
        settings: SinkSettings,
        health: Arc<SinkHealth>,
    ) -> anyhow::Result<Sink> {
        Ok(Sink { mysql: crate::db::pool(mysql)?, opts: crate::db::opts(mysql)?, partitions, settings, health })
    }

    /// Runs until shutdown starts.
    pub async fn run(self, shutdown: Shutdown) {
        let mut tasks = JoinSet::new();
        for client in self.partitions {
            let topic = client.topic().to_string();
            let partition = client.partition();
            let worker = PartitionSink {
                fence: Fence::new(self.opts.clone(), &topic, partition),
                stall: Stall::new(
                    &topic,
                    partition,
                    self.settings.sink_stall_after,
                    self.health.clone(),
                    self.mysql.clone(),
                ),
                topic,
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
    fence: Fence,
    stall: Stall,
}

impl PartitionSink {
    async fn run(mut self, mut shutdown: Shutdown) {
        while !shutdown.is_started() {
            if !self.take_fence(&mut shutdown).await {
                break;
            }
            let Some(next) = self.stored_offset(&mut shutdown).await else { break };
            tracing::info!(topic = %self.topic, partition = self.client.partition(), next, "sink: resuming");
            self.follow(next, &mut shutdown).await;
        }
        self.fence.release().await;
    }

    /// Waits until this task holds the partition's fence; false: shutdown.
    async fn take_fence(&mut self, shutdown: &mut Shutdown) -> bool {
        let partition = self.client.partition();
        let mut standing_by = false;
        while !shutdown.is_started() {
            match self.fence.held().await {
                Ok(true) => {
                    // A stall an earlier sink recorded is this one's to find again.
                    if !self.stall.is_stalled() {
                        let _ = writer::clear_stall(&self.mysql, &self.topic, partition).await;
                    }
                    return true;
                }
                Ok(false) if !standing_by => {
                    standing_by = true;
                    tracing::warn!(topic = %self.topic, partition, lock = %self.fence.name,
                        "sink: another sink runs on this partition; standing by until it stops");
                }
                Ok(false) => {}
                Err(e) => {
                    METRICS.mysql_errors.fetch_add(1, Relaxed);
                    self.stall.failed("taking the partition's lock", &e).await;
                }
            }
            if shutdown.sleep(RETRY_EVERY).await {
                break;
            }
        }
        false
    }

    /// The stored next offset, retried until MySQL answers; None: shutdown.
    async fn stored_offset(&mut self, shutdown: &mut Shutdown) -> Option<i64> {
        let mut failures = 0;
        while !shutdown.is_started() {
            match writer::start_offset(&self.mysql, &self.topic, self.client.partition()).await {
                Ok(next) => {
                    self.stall.succeeded().await;
                    return Some(next);
                }
                Err(e) => {
                    failures += 1;
                    METRICS.mysql_errors.fetch_add(1, Relaxed);
                    self.stall.failed("reading the stored offset", &e).await;
                    if shutdown.sleep(backoff(failures)).await {
                        break;
                    }
                }
            }
        }
        None
    }

    /// Fetches and writes from `next` on, until shutdown or until the fence is lost.
    async fn follow(&mut self, mut next: i64, shutdown: &mut Shutdown) {
        let partition = self.client.partition();
        let mut failures = 0;
        // The next batch's fetch runs while this batch is written to MySQL.
        let mut prefetched: Option<Fetched> = None;
        // How long the broker may hold the next fetch: see `Self::wait_after`.
        let mut wait = 0;
        while !shutdown.is_started() {
            // A round trip only every few seconds (see `Fence::held`).
            match self.fence.held().await {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    tracing::warn!(topic = %self.topic, partition, "sink: lost the partition's lock; taking it again");
                    return;
                }
            }
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
                    match self.client.get_offset(OffsetAt::Latest).await {
                        Ok(latest) if next > latest => next = self.past_end(next, latest, shutdown).await,
                        _ => {
                            next = self.recover_out_of_range(next).await;
                            shutdown.sleep(Duration::from_millis(100)).await;
                        }
                    }
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, partition, "sink: fetch failed");
                    shutdown.sleep(backoff(failures)).await;
                    continue;
                }
            };
            if next > watermark {
                next = self.past_end(next, watermark, shutdown).await;
                continue;
            }
            self.stall.within_end().await;
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
                    self.stall.succeeded().await;
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
                    if matches!(&e, mysql_async::Error::Server(s) if s.code == 1213) {
                        METRICS.mysql_deadlocks.fetch_add(1, Relaxed);
                    }
                    failures += 1;
                    self.stall.failed("MySQL write", &e).await;
                    shutdown.sleep(backoff(failures)).await;
                }
            }
        }
    }

    /// The stored offset `next` lies beyond the broker's `watermark`: no
    /// record will ever arrive there (the topic was recreated, or the broker
    /// lost data). Reports the stall, waits, and reads the stored offset
    /// again (an operator may have fixed it in MySQL).
    async fn past_end(&mut self, next: i64, watermark: i64, shutdown: &mut Shutdown) -> i64 {
        let partition = self.client.partition();
        self.stall.past_end(next, watermark).await;
        // No records to wait for: the lag is not negative, it is unknown.
        METRICS.set_sink_lag(&self.topic, partition, 0);
        shutdown.sleep(RETRY_EVERY).await;
        writer::start_offset(&self.mysql, &self.topic, partition).await.unwrap_or(next)
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
    /// record means retention removed records we never stored: loud, but move
    /// on. (Beyond the end is a stall: see `past_end`.)
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
