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
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    app::sink(&args.mysql, &args.kafka, &args.sink, super::on_signal()).await
}
