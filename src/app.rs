//! Start-up: builds the application from settings and an already-bound
//! listener, runs the HTTP API, the relay and (optionally) the sink until
//! shutdown, then waits for every task to let go.
//!
//! `main` and the tests start the service the same way: `app::serve`.

use fred::interfaces::ClientLike;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::{
    config::{HttpSettings, KafkaSettings, MysqlSettings, ServeConfig, SinkSettings},
    coupons::Coupons,
    domain::{coupons::CouponService, orders::OrderService, queue::QueueService, wallets::WalletService, Domain},
    http, kafka,
    keys::Keys,
    pipe_thread,
    placement::Placement,
    probes::Probes,
    queue::Queues,
    redis,
    sales::Sales,
    scripts::Scripts,
    shutdown::Shutdown,
    sink::{Sink, SinkHealth, SinkInstance},
    wallet::{pay::Payments, Wallets},
};

/// What the HTTP handlers share.
pub struct App {
    pub guard: http::Guard,
    /// Coupons, orders and wallets: what the handlers ask for.
    pub domain: Domain,
    /// What one user holds (coupons, orders), MySQL merged with Redis.
    pub mine: crate::mine::Mine,
    pub probes: Probes,
    pub http: HttpSettings,
    /// Longest one Redis command may take (FLASHSALE_REDIS_TIMEOUT_MS).
    pub redis_timeout: std::time::Duration,
}

/// Logs `warning` now and every minute until shutdown starts.
async fn warn_every_minute(warning: &'static str, mut shutdown: Shutdown) {
    loop {
        tracing::warn!("{warning}");
        if shutdown.sleep(std::time::Duration::from_secs(60)).await {
            return;
        }
    }
}

/// Runs the service on `listener` until `shutdown` starts.
pub async fn serve(listener: TcpListener, mut config: ServeConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    crate::panics::install_hook();
    // The port bound (when asked for port 0) names this instance's relay.
    if let Ok(addr) = listener.local_addr() {
        config.http.listen = addr;
    }
    // First, so a bad JWT key stops the start before any connection is made.
    let guard = http::Guard::new(&config.http)?;
    config.wallet.check()?;
    // The ops listener first: a taken port fails start-up before anything runs.
    let ops = match config.http.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the ops routes: {e}"))?,
        ),
        None => None,
    };
    let redis = redis::pool(&config.redis).await?;
    // The topology, once: every choice that differs by it is made there.
    let placement = Placement::detect(redis.next());
    let ack = placement.ack(config.redis.ack().check(redis.next()).await?);
    let scripts = Arc::new(Scripts::load(redis.next(), ack).await?);
    let keys = Keys::new(config.redis.key_prefix.clone());
    let kafka = kafka::connect(&config.kafka).await?;
    let mysql = crate::db::pool(&config.mysql)?;

    let mut tasks = tokio::task::JoinSet::new();
    let (ttl, max_orders) = (config.retention.idempotency_ttl, config.http.max_orders_per_user);
    let sales = Sales::new(redis.clone(), keys.clone(), scripts.clone(), placement.clone(), ttl, max_orders);
    let retirer = crate::retirement::Retirer::new(
        redis.clone(),
        keys.clone(),
        scripts.clone(),
        &placement,
        mysql.clone(),
        config.retention.retain_after_end,
    );
    if let Some(warning) = guard.auth_warning() {
        tasks.spawn(warn_every_minute(warning, shutdown.clone()));
    }
    let instance = config.relay.consumer(config.http.listen);
    let longest = http::longest_request(config.http.request_timeout(), config.redis.timeout());
    let wallets = Wallets::new(redis.clone(), keys.clone(), scripts.clone(), config.wallet.clone(), longest);
    let payments = Payments::new(redis.clone(), keys.clone(), scripts.clone(), sales.clone(), wallets.clone());
    let forget = crate::recovery::Forget { mysql: mysql.clone(), after: config.retention.forget_released_after };
    let sweeper =
        crate::recovery::Sweeper { sales: sales.clone(), payments: payments.clone(), retirer, forget, instance };
    tasks.spawn(sweeper.run(shutdown.clone()));
    // Shared by the sink's tasks (on the pipe's thread) and /readyz.
    let sink_health = config.run_sink.then(|| Arc::new(SinkHealth::default()));
    let pipe = pipe_thread::spawn(
        config.clone(),
        scripts.clone(),
        keys.clone(),
        placement.clone(),
        sink_health.clone(),
        shutdown.clone(),
    )
    .await?;

    let queues = Queues::new(redis.clone(), keys.clone(), scripts.clone());
    tasks.spawn(queues.clone().run_admitter(shutdown.clone()));
    let retired = Arc::new(crate::retired_records::RetiredRecords::new(mysql.clone()));
    let domain = Domain {
        coupons: CouponService::new(Coupons::new(redis.clone(), keys.clone(), scripts, &placement), retired.clone()),
        orders: OrderService::new(sales, payments, retired, mysql.clone()),
        wallets: WalletService::new(wallets, mysql.clone()),
        queue: QueueService::new(queues, config.http.queue_secret.as_ref().filter(|s| !s.0.is_empty())),
    };
    let app = Arc::new(App {
        guard,
        domain,
        mine: crate::mine::Mine::new(redis.clone(), keys.clone(), mysql.clone(), &placement),
        probes: Probes::new(redis.clone(), mysql.clone(), kafka, sink_health),
        http: config.http.clone(),
        redis_timeout: config.redis.timeout(),
    });
    let public = match ops {
        Some(ops) => {
            let mut stop = shutdown.clone();
            tasks.spawn(http::serve(ops, app.clone(), http::Surface::Ops, async move { stop.wait().await }));
            http::Surface::Public
        }
        None if config.http.ops_on_main => http::Surface::All,
        None => {
            tracing::info!(
                "the ops routes (/metrics, /dashboard) are not served: set FLASHSALE_METRICS_LISTEN \
                 (or FLASHSALE_OPS_ON_MAIN=true for a local demo)"
            );
            http::Surface::Public
        }
    };
    let mut stop = shutdown.clone();
    http::serve(listener, app, public, async move { stop.wait().await }).await;

    while tasks.join_next().await.is_some() {}
    pipe.join().await;
    let _ = redis.quit().await;
    let _ = mysql.disconnect().await;
    Ok(())
}

/// Runs the sink alone until `shutdown` starts; `health` tells whether it stalled.
pub async fn sink(
    mysql: &MysqlSettings,
    kafka_settings: &KafkaSettings,
    settings: &SinkSettings,
    instance: SinkInstance,
    health: Arc<SinkHealth>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    crate::panics::install_hook();
    let kafka = kafka::connect(kafka_settings).await?;
    let topics = kafka::Topics::open(&kafka, kafka_settings).await?;
    let partitions: Vec<_> = topics.all().filter(|p| instance.owns(p.partition())).cloned().collect();
    if partitions.is_empty() {
        tracing::warn!(%instance, "this sink owns no partition (fewer partitions than sinks): it stands idle");
    }
    tracing::info!(%instance, partitions = partitions.len(), "sink: owning p % N == I of each topic");
    let sink = Sink::new(mysql, partitions, settings.clone(), health)?;
    let mysql = sink.mysql.clone();
    sink.run(shutdown).await;
    let _ = mysql.disconnect().await;
    Ok(())
}
