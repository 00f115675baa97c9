//! Start-up: builds the application from settings and an already-bound
//! listener, runs the HTTP API, the relay and (optionally) the sink until
//! shutdown, then waits for every task to let go.
//!
//! `main` and the tests start the service the same way: `app::serve`.

use fred::interfaces::ClientLike;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::{
    config::{HttpSettings, KafkaSettings, MysqlSettings, RedisSettings, RelaySettings, SinkSettings},
    coupons::Coupons,
    http, kafka,
    keys::Keys,
    probes::Probes,
    redis,
    relay::{Outbox, Relay},
    sales::Sales,
    scripts::Scripts,
    shutdown::Shutdown,
    sink::Sink,
};

/// What the HTTP handlers share.
pub struct App {
    pub guard: http::Guard,
    pub coupons: Coupons,
    pub sales: Sales,
    pub probes: Probes,
    pub http: HttpSettings,
}

/// Everything `serve` needs.
#[derive(Clone)]
pub struct ServeConfig {
    pub http: HttpSettings,
    pub redis: RedisSettings,
    pub mysql: MysqlSettings,
    pub kafka: KafkaSettings,
    pub relay: RelaySettings,
    pub sink: SinkSettings,
    pub run_sink: bool,
}

/// Runs the service on `listener` until `shutdown` starts.
pub async fn serve(listener: TcpListener, config: ServeConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let redis = redis::pool(&config.redis).await?;
    let scripts = Arc::new(Scripts::load(redis.next()).await?);
    let keys = Keys::new(config.redis.key_prefix.clone());
    let kafka = kafka::connect(&config.kafka).await?;
    let topics = Arc::new(kafka::Topics::open(&kafka, &config.kafka).await?);
    let mysql = crate::db::pool(&config.mysql)?;

    let mut tasks = tokio::task::JoinSet::new();
    let relay = Relay {
        outbox: Outbox::new(
            redis::client(&config.redis).await?,
            redis.clone(),
            scripts.clone(),
            keys.clone(),
            config.relay.relay_consumer.clone(),
        ),
        topics: topics.clone(),
        batch: config.relay.relay_batch,
        claim_idle_ms: config.relay.relay_claim_idle_ms,
    };
    tasks.spawn(relay.run(shutdown.clone()));
    let sales = Sales::new(redis.clone(), keys.clone(), scripts.clone());
    tasks.spawn(crate::expiry::run(sales.clone(), shutdown.clone()));
    if config.run_sink {
        // Its own client, hence its own broker connections: a broker answers
        // one connection's requests in order, so the sink's long-polling
        // fetches would hold the relay's produce requests back behind them.
        let consumer = kafka::connect(&config.kafka).await?;
        let partitions = kafka::Topics::open(&consumer, &config.kafka).await?.all().cloned().collect();
        let sink = Sink { mysql: mysql.clone(), partitions, settings: config.sink.clone() };
        tasks.spawn(sink.run(shutdown.clone()));
    }

    let app = Arc::new(App {
        guard: http::Guard::new(&config.http),
        coupons: Coupons::new(redis.clone(), keys, scripts),
        sales,
        probes: Probes { redis: redis.clone(), mysql: mysql.clone(), kafka },
        http: config.http.clone(),
    });
    let mut stop = shutdown.clone();
    http::serve(listener, app, async move { stop.wait().await }).await;

    while tasks.join_next().await.is_some() {}
    let _ = redis.quit().await;
    let _ = mysql.disconnect().await;
    Ok(())
}

/// Runs the sink alone until `shutdown` starts.
pub async fn sink(
    mysql: &MysqlSettings,
    kafka_settings: &KafkaSettings,
    settings: &SinkSettings,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let kafka = kafka::connect(kafka_settings).await?;
    let partitions = kafka::Topics::open(&kafka, kafka_settings).await?.all().cloned().collect();
    let mysql = crate::db::pool(mysql)?;
    Sink { mysql: mysql.clone(), partitions, settings: settings.clone() }.run(shutdown).await;
    let _ = mysql.disconnect().await;
    Ok(())
}
