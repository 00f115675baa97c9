//! Readiness: can this process reach Redis, the Kafka broker and MySQL, and
//! (when it runs the sink) is no sink partition stalled? And the MySQL row
//! counts the live view shows. Both are asked for by anyone who can reach the
//! ops routes, so the server checks are cached: at most one readiness probe
//! and one count per campaign or sale per second reach the servers, however
//! many callers ask (concurrent callers wait for the one check in flight). The
//! sink's state is in memory and read fresh on every call. The Redis check is
//! `ROLE`: it names the primary this process writes to, so a failover shows.

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
    /// Set when this process runs the sink.
    pub sink: Option<Arc<crate::sink::SinkHealth>>,
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
    /// "ok" or "stalled"; absent when this process runs no sink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<&'static str>,
    /// The Redis server this process writes to (after a failover, the
    /// promoted replica) and its replicas; absent when Redis did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_primary: Option<crate::redis::Role>,
    /// A setting operators must know about (auth off outside a demo); it
    /// does not make the process unready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
}

impl Report {
    pub fn all_ok(&self) -> bool {
        [self.redis, self.kafka, self.mysql].iter().chain(&self.sink).all(|s| *s == "ok")
    }

    /// Whether the process is ready: every part ok, or (`redis`) Redis alone.
    pub fn ready(&self, requires: crate::config::ReadyRequires) -> bool {
        match requires {
            crate::config::ReadyRequires::All => self.all_ok(),
            crate::config::ReadyRequires::Redis => self.redis == "ok",
        }
    }
}

impl Probes {
    pub fn new(
        redis: Pool,
        mysql: mysql_async::Pool,
        kafka: Arc<rskafka::client::Client>,
        sink: Option<Arc<crate::sink::SinkHealth>>,
    ) -> Probes {
        Probes { redis, mysql, kafka, report: Mutex::new(None), counts: Mutex::new(HashMap::new()), sink }
    }

    /// The readiness report: the servers' part at most a second old, the sink's fresh.
    pub async fn check(&self) -> Report {
        let mut report = {
            let mut cached = self.report.lock().await;
            match cached.as_ref() {
                Some((at, report)) if at.elapsed() < FRESH => report.clone(),
                _ => {
                    let report = self.probe().await;
                    *cached = Some((Instant::now(), report.clone()));
                    report
                }
            }
        };
        report.sink = self.sink.as_ref().map(|health| health.state());
        report
    }

    async fn probe(&self) -> Report {
        // ROLE answers like PING, and says whether this is still the primary.
        let role = tokio::time::timeout(PROBE_TIMEOUT, crate::redis::role(self.redis.next()));
        let kafka = async { self.kafka.list_topics().await.is_ok() };
        let mysql = async { crate::db::queries::ping(&self.mysql).await.is_ok() };
        let (role, kafka, mysql) = tokio::join!(role, within(kafka), within(mysql));
        let (redis, redis_primary) = match role {
            Ok(Ok(role)) if role.role == "master" => ("ok", Some(role)),
            // A demoted primary: writes would be refused.
            Ok(Ok(role)) => ("replica", Some(role)),
            Ok(Err(_)) => ("unreachable", None),
            Err(_) => ("timeout", None),
        };
        let sink = self.sink.as_ref().map(|health| health.state());
        Report { redis, kafka, mysql, sink, redis_primary, warning: None }
    }

    /// Rows MySQL holds for a campaign (issues) or a sale (orders), at most a second old.
    pub async fn mysql_rows(&self, subject: Subject) -> Result<u64, crate::error::Error> {
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
