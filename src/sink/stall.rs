//! When a partition's sink cannot go on by itself, it says so. A partition is
//! **stalled** while its stored offset lies past the broker's end (topic
//! recreated, broker data lost: waiting will not help), or once its batch has
//! failed `sink_stall_after` times in a row (MySQL refuses it). A stall is
//! logged as an error when it starts and at most once a minute after,
//! exported as `flashsale_sink_stalled{topic,partition} 1`, counted in the
//! process's `SinkHealth` (`/readyz`), and recorded in `sink_stalls` for
//! `flashsale status`. The sink keeps trying; the stall ends by itself when
//! the cause is gone, or by `flashsale sink reset-offset`.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use mysql_async::Pool;

use super::writer;
use crate::metrics::METRICS;

/// How often a lasting stall is logged (and its record refreshed).
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Longest the stall's record may hold the partition back: MySQL may be
/// what fails.
const RECORD_TIMEOUT: Duration = Duration::from_secs(2);

/// The stalled partitions of this process's sink, for its readiness probe.
#[derive(Default)]
pub struct SinkHealth {
    stalled: AtomicUsize,
}

impl SinkHealth {
    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Relaxed) > 0
    }

    /// "ok" or "stalled", as `/readyz` reports it.
    pub fn state(&self) -> &'static str {
        if self.is_stalled() {
            "stalled"
        } else {
            "ok"
        }
    }
}

/// What keeps a partition stalled.
#[derive(Clone, Debug, PartialEq)]
pub enum Cause {
    /// The stored next offset is beyond the partition's high watermark.
    PastEnd { stored: i64, watermark: i64 },
    /// The batch (or the offset read) failed this many times in a row.
    Failing { attempts: u32, error: String },
}

impl Cause {
    /// The `reason` column of `sink_stalls`.
    fn reason(&self) -> &'static str {
        match self {
            Cause::PastEnd { .. } => "past_end",
            Cause::Failing { .. } => "failing",
        }
    }

    fn detail(&self) -> String {
        match self {
            Cause::PastEnd { stored, watermark } => format!(
                "stored offset {stored} is past the broker's end {watermark} (topic recreated or broker data lost?)"
            ),
            Cause::Failing { attempts, error } => format!("{attempts} attempts in a row failed; last error: {error}"),
        }
    }
}

/// One partition's stall state.
pub struct Stall {
    topic: String,
    partition: i32,
    after: u32,
    health: Arc<SinkHealth>,
    mysql: Pool,
    past_end: Option<(i64, i64)>,
    failures: u32,
    last_error: String,
    /// The state last published (metric, health, record).
    stalled: bool,
    logged_at: Instant,
}

impl Stall {
    pub fn new(topic: &str, partition: i32, after: u32, health: Arc<SinkHealth>, mysql: Pool) -> Stall {
        METRICS.set_sink_stalled(topic, partition, false);
        Stall {
            topic: topic.to_string(),
            partition,
            after: after.max(1),
            health,
            mysql,
            past_end: None,
            failures: 0,
            last_error: String::new(),
            stalled: false,
            logged_at: Instant::now(),
        }
    }

    /// The fetch showed the stored offset `stored` beyond the broker's `watermark`.
    pub async fn past_end(&mut self, stored: i64, watermark: i64) {
        self.past_end = Some((stored, watermark));
        self.publish().await;
    }

    /// The fetch showed the stored offset within what the broker holds.
    pub async fn within_end(&mut self) {
        if self.past_end.take().is_some() {
            self.publish().await;
        }
    }

    /// A batch, or the read of the stored offset, failed. Warned about one
    /// by one until the partition counts as stalled; after that only the
    /// stall's own (rate-limited) error is logged.
    pub async fn failed(&mut self, what: &str, error: &(dyn std::fmt::Display + Sync)) {
        self.failures = self.failures.saturating_add(1);
        self.last_error = format!("{what}: {error}");
        if self.failures < self.after {
            tracing::warn!(topic = %self.topic, partition = self.partition, attempt = self.failures,
                error = %error, "sink: {what} failed, retrying");
        }
        self.publish().await;
    }

    /// A batch was committed (or the stored offset read).
    pub async fn succeeded(&mut self) {
        if self.failures > 0 {
            self.failures = 0;
            self.publish().await;
        }
    }

    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    fn cause(&self) -> Option<Cause> {
        if let Some((stored, watermark)) = self.past_end {
            return Some(Cause::PastEnd { stored, watermark });
        }
        (self.failures >= self.after)
            .then(|| Cause::Failing { attempts: self.failures, error: self.last_error.clone() })
    }

    /// Publishes a change of state, and a lasting stall once a minute.
    async fn publish(&mut self) {
        let (topic, partition) = (self.topic.as_str(), self.partition);
        match (self.cause(), self.stalled) {
            (Some(cause), was) => {
                if was && self.logged_at.elapsed() < LOG_EVERY {
                    return;
                }
                let way_out = format!(
                    "flashsale sink reset-offset --topic {topic} --partition {partition} --to earliest|latest|N"
                );
                match &cause {
                    Cause::PastEnd { stored, watermark } => tracing::error!(%topic, partition, stored, watermark,
                        "sink: partition stalled: its stored offset is past the broker's end (topic recreated or \
                         broker data lost?); stop the sink and decide where it resumes: {way_out}"),
                    Cause::Failing { attempts, error } => tracing::error!(%topic, partition, attempts, %error,
                        "sink: partition stalled: its MySQL work keeps failing; fix the cause (the sink retries), \
                         or stop the sink and skip past it: {way_out}"),
                }
                self.logged_at = Instant::now();
                if !was {
                    self.stalled = true;
                    self.health.stalled.fetch_add(1, Relaxed);
                    METRICS.set_sink_stalled(topic, partition, true);
                }
                let detail = cause.detail();
                let record = writer::record_stall(&self.mysql, topic, partition, cause.reason(), &detail);
                if !matches!(tokio::time::timeout(RECORD_TIMEOUT, record).await, Ok(Ok(()))) {
                    tracing::debug!(%topic, partition, "sink: cannot record the stall in MySQL");
                }
            }
            (None, true) => {
                self.stalled = false;
                self.health.stalled.fetch_sub(1, Relaxed);
                METRICS.set_sink_stalled(topic, partition, false);
                tracing::info!(%topic, partition, "sink: partition recovered from its stall");
                let clear = writer::clear_stall(&self.mysql, topic, partition);
                if !matches!(tokio::time::timeout(RECORD_TIMEOUT, clear).await, Ok(Ok(()))) {
                    tracing::warn!(%topic, partition, "sink: cannot clear the stall's record (flashsale status may show it)");
                }
            }
            (None, false) => {}
        }
    }
}
