//! Readiness: can this process reach Redis, the Kafka broker and MySQL? And the
//! MySQL row counts the live view shows. Both are asked for by anyone who can
//! reach the ops routes, so both are cached: at most one readiness check and
//! one count per campaign or sale per second reach the servers, however many
//! callers ask (concurrent callers wait for the one check in flight).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use fred::prelude::*;
use serde::Serialize;
use tokio::sync::Mutex;

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a readiness answer or a row count is reused.
const FRESH: Duration = Duration::from_secs(1);
/// Row counts kept at once; past it the cache starts over.
const MAX_COUNTS: usize = 256;

pub struct Probes {
    pub redis: Pool,
    pub mysql: mysql_async::Pool,
    pub kafka: Arc<rskafka::client::Client>,
    report: Mutex<Option<(Instant, Report)>>,
    counts: Mutex<HashMap<Subject, (Instant, u64)>>,
}

/// What the live view counts rows of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Coupon(u64),
    Sale(u64),
}

#[derive(Clone, Serialize)]
pub struct Report {
    pub redis: &'static str,
    pub kafka: &'static str,
    pub mysql: &'static str,
}

impl Report {
    pub fn all_ok(&self) -> bool {
        [self.redis, self.kafka, self.mysql].iter().all(|s| *s == "ok")
    }
}

impl Probes {
    pub fn new(redis: Pool, mysql: mysql_async::Pool, kafka: Arc<rskafka::client::Client>) -> Probes {
        Probes { redis, mysql, kafka, report: Mutex::new(None), counts: Mutex::new(HashMap::new()) }
    }

    /// The readiness report, at most a second old.
    pub async fn check(&self) -> Report {
        let mut cached = self.report.lock().await;
        if let Some((at, report)) = cached.as_ref() {
            if at.elapsed() < FRESH {
                return report.clone();
            }
        }
        let report = self.probe().await;
        *cached = Some((Instant::now(), report.clone()));
        report
    }

    async fn probe(&self) -> Report {
        let redis = async {
            let pong: Result<String, Error> = self.redis.next().ping(None).await;
            pong.is_ok()
        };
        let kafka = async { self.kafka.list_topics().await.is_ok() };
        let mysql = async { crate::db::queries::ping(&self.mysql).await.is_ok() };
        let (redis, kafka, mysql) = tokio::join!(within(redis), within(kafka), within(mysql));
        Report { redis, kafka, mysql }
    }

    /// Rows MySQL holds for a campaign (issues) or a sale (orders), at most a second old.
    pub async fn mysql_rows(&self, subject: Subject) -> Result<u64, mysql_async::Error> {
        let mut counts = self.counts.lock().await;
        if let Some((at, rows)) = counts.get(&subject) {
            if at.elapsed() < FRESH {
                return Ok(*rows);
            }
        }
        let rows = match subject {
            Subject::Coupon(id) => crate::db::queries::issued_count(&self.mysql, id).await?,
            Subject::Sale(id) => crate::db::queries::order_count(&self.mysql, id).await?,
        };
        if counts.len() >= MAX_COUNTS {
            counts.clear();
        }
        counts.insert(subject, (Instant::now(), rows));
        Ok(rows)
    }
}

async fn within(check: impl std::future::Future<Output = bool>) -> &'static str {
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(true) => "ok",
        Ok(false) => "unreachable",
        Err(_) => "timeout",
    }
}
