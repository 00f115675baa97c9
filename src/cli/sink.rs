//! `flashsale sink`: Kafka -> MySQL alone, for a separate deployment;
//! `flashsale sink reset-offset`: move where it resumes on one partition.

mod reset_offset;

use std::sync::Arc;

use crate::{
    app,
    config::*,
    sink::{SinkHealth, SinkInstance},
};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, disable_help_subcommand = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    mysql: MysqlSettings,
    #[command(flatten)]
    kafka: KafkaSettings,
    #[command(flatten)]
    sink: SinkSettings,
    /// Also serve GET /metrics on this address (e.g. 0.0.0.0:9091) for Prometheus
    /// (and GET /readyz: 503 while a partition is stalled).
    #[arg(long, env = "FLASHSALE_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Most connections to the metrics listener at once; further ones wait in the accept queue.
    #[arg(long, env = "FLASHSALE_MAX_CONNECTIONS", default_value_t = 20_000)]
    max_connections: usize,
    /// Time a client of the metrics listener has to send its request headers;
    /// a connection idle for one to two such periods is closed.
    #[arg(long, env = "FLASHSALE_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    header_read_timeout_ms: u64,
    /// This sink is I of N (from 0): it writes the partitions p with p % N == I of
    /// each topic. Run N sinks, 0/N to N-1/N, to share the work; two sinks never
    /// write one partition at once (the second stands by).
    #[arg(long, env = "FLASHSALE_SINK_INSTANCE", default_value = "0/1")]
    instance: SinkInstance,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Rewrite where the sink resumes on one partition (its stored offset): the
    /// way out of a stall. Refused while a sink runs on that partition.
    ResetOffset(reset_offset::Args),
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Command::ResetOffset(reset)) = args.command {
        return reset_offset::run(reset).await;
    }
    let shutdown = super::on_signal();
    let health = Arc::new(SinkHealth::default());
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?;
        let bounds = crate::http::MetricsBounds {
            max_connections: args.max_connections,
            header_read_timeout: std::time::Duration::from_millis(args.header_read_timeout_ms.max(1)),
        };
        tokio::spawn(crate::http::serve_metrics(listener, health.clone(), bounds, shutdown.clone()));
    }
    app::sink(&args.mysql, &args.kafka, &args.sink, args.instance, health, shutdown).await
}
