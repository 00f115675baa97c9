//! Readiness: can this process reach Redis, the Kafka broker and MySQL, and
//! (when it runs the sink) is no sink partition stalled?

use std::{sync::Arc, time::Duration};

use fred::prelude::*;
use serde::Serialize;

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Probes {
    pub redis: Pool,
    pub mysql: mysql_async::Pool,
    pub kafka: Arc<rskafka::client::Client>,
    /// Set when this process runs the sink.
    pub sink: Option<Arc<crate::sink::SinkHealth>>,
}

#[derive(Serialize)]
pub struct Report {
    pub redis: &'static str,
    pub kafka: &'static str,
    pub mysql: &'static str,
    /// "ok" or "stalled"; absent when this process runs no sink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<&'static str>,
}

impl Report {
    pub fn all_ok(&self) -> bool {
        [self.redis, self.kafka, self.mysql].iter().chain(&self.sink).all(|s| *s == "ok")
    }
}

impl Probes {
    pub async fn check(&self) -> Report {
        let redis = async {
            let pong: Result<String, Error> = self.redis.next().ping(None).await;
            pong.is_ok()
        };
        let kafka = async { self.kafka.list_topics().await.is_ok() };
        let mysql = async { crate::db::queries::ping(&self.mysql).await.is_ok() };
        let (redis, kafka, mysql) = tokio::join!(within(redis), within(kafka), within(mysql));
        Report { redis, kafka, mysql, sink: self.sink.as_ref().map(|health| health.state()) }
    }
}

async fn within(check: impl std::future::Future<Output = bool>) -> &'static str {
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(true) => "ok",
        Ok(false) => "unreachable",
        Err(_) => "timeout",
    }
}
