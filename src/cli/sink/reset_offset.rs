//! `flashsale sink reset-offset --topic T --partition P --to earliest|latest|N`:
//! an operator's decision about where the sink resumes on one partition,
//! written to `sink_offsets`. It takes the partition's fence (the lock every
//! running sink holds, see `sink::fence`) without waiting, and refuses when
//! a sink holds it: the sink must be stopped first.

use std::str::FromStr;

use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};

use crate::{
    config::{KafkaSettings, MysqlSettings},
    db::queries,
    sink,
};

#[derive(clap::Args)]
pub struct Args {
    /// The partition's topic.
    #[arg(long)]
    topic: String,
    /// The partition.
    #[arg(long)]
    partition: i32,
    /// Where the sink resumes: `earliest` (the oldest record the broker holds;
    /// records already stored are written again, which changes nothing),
    /// `latest` (the broker's end; records not yet stored are skipped and never
    /// reach MySQL), or an offset N between the two.
    #[arg(long, value_name = "earliest|latest|N")]
    to: Target,
    #[command(flatten)]
    mysql: MysqlSettings,
    #[command(flatten)]
    kafka: KafkaSettings,
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "earliest" => Ok(Target::Earliest),
            "latest" => Ok(Target::Latest),
            n => match n.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Target::Offset(n)),
                _ => Err("expected earliest, latest or an offset (a number >= 0)".into()),
            },
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = crate::db::pool(&args.mysql)?;
    let done = reset(&args, &pool).await;
    let _ = pool.disconnect().await;
    done
}

async fn reset(args: &Args, pool: &mysql_async::Pool) -> anyhow::Result<()> {
    let (topic, partition) = (args.topic.as_str(), args.partition);
    let db = crate::db::opts(&args.mysql)?.db_name().unwrap_or_default().to_string();
    let lock = sink::lock_name(&db, topic, partition);
    // Held on this connection until released (or the connection closes).
    let mut conn = pool.get_conn().await?;
    if !sink::try_lock(&mut conn, &lock).await? {
        anyhow::bail!("a sink is running on {topic}/{partition}; stop it first");
    }
    let kafka = crate::kafka::connect(&args.kafka).await?;
    let client = kafka
        .partition_client(topic, partition, UnknownTopicHandling::Error)
        .await
        .map_err(|e| anyhow::anyhow!("no partition {topic}/{partition} on the broker: {e}"))?;
    let earliest = client.get_offset(OffsetAt::Earliest).await?;
    let latest = client.get_offset(OffsetAt::Latest).await?;
    let to = match args.to {
        Target::Earliest => earliest,
        Target::Latest => latest,
        Target::Offset(n) => {
            anyhow::ensure!(
                (earliest..=latest).contains(&n),
                "offset {n} is outside what the broker holds for {topic}/{partition}: {earliest} to {latest}"
            );
            n
        }
    };
    let before = queries::reset_sink_offset(&mut conn, topic, partition, to).await?;
    sink::release(&mut conn, &lock).await?;

    let was = before.map_or("none stored".to_string(), |b| b.to_string());
    println!(
        "{topic}/{partition}: the sink resumes at offset {to} (was {was}; the broker holds {earliest} to {latest})"
    );
    match before {
        Some(b) if b > latest => println!("the stored offset was past the broker's end: the stall is over"),
        Some(b) if b < to => println!(
            "records {b} to {} are skipped: they never reach MySQL (`flashsale reconcile` compares Redis with MySQL)",
            to - 1
        ),
        Some(b) if b > to => println!("records {to} to {} are written again: harmless, every row is idempotent", b - 1),
        _ => {}
    }
    Ok(())
}
