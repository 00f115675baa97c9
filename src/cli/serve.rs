//! `flashsale serve`: the HTTP API, the relay and, by default, the sink.

use tokio::net::TcpListener;

use crate::{app, config::*};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpSettings,
    #[command(flatten)]
    redis: RedisSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
    #[command(flatten)]
    kafka: KafkaSettings,
    #[command(flatten)]
    relay: RelaySettings,
    #[command(flatten)]
    sink: SinkSettings,
    #[command(flatten)]
    retention: RetentionSettings,
    #[command(flatten)]
    wallet: WalletSettings,
    #[command(flatten)]
    toggle: SinkToggle,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.http.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.http.listen))?;
    tracing::info!(addr = %args.http.listen, sink = args.toggle.enabled(), "serving");
    let config = crate::config::ServeConfig {
        http: args.http,
        redis: args.redis,
        mysql: args.mysql,
        kafka: args.kafka,
        relay: args.relay,
        sink: args.sink,
        retention: args.retention,
        wallet: args.wallet,
        run_sink: args.toggle.enabled(),
    };
    app::serve(listener, config, super::on_signal()).await
}
