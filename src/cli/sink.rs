//! `flashsale sink`: Kafka -> MySQL alone, for a separate deployment.

use crate::{app, config::*};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    mysql: MysqlSettings,
    #[command(flatten)]
    kafka: KafkaSettings,
    #[command(flatten)]
    sink: SinkSettings,
    /// Also serve GET /metrics on this address (e.g. 0.0.0.0:9091) for Prometheus.
    #[arg(long, env = "FLASHSALE_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = super::on_signal();
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?;
        tokio::spawn(crate::http::serve_metrics(listener, shutdown.clone()));
    }
    app::sink(&args.mysql, &args.kafka, &args.sink, shutdown).await
}
