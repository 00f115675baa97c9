//! `flashsale status`: where every issued coupon is on its way to MySQL.

use fred::interfaces::ClientLike;
use std::sync::Arc;

use rskafka::client::partition::OffsetAt;
use serde::Serialize;

use crate::{
    config::{KafkaSettings, MysqlSettings, RedisSettings},
    coupons::Coupons,
    db::queries,
    keys::Keys,
    scripts::Scripts,
};

#[derive(clap::Args)]
pub struct Args {
    /// Only this campaign (default: every campaign Redis knows).
    #[arg(long)]
    coupon: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    redis: RedisSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
    #[command(flatten)]
    kafka: KafkaSettings,
}

#[derive(Serialize)]
struct Status {
    coupons: Vec<CouponStatus>,
    topic: String,
    partitions: Vec<PartitionStatus>,
}

#[derive(Serialize)]
struct CouponStatus {
    coupon_id: u64,
    total: u64,
    remaining: u64,
    issued: u64,
    outbox_len: u64,
    outbox_pending: u64,
    mysql_rows: u64,
}

#[derive(Serialize)]
struct PartitionStatus {
    partition: i32,
    end_offset: i64,
    sink_next_offset: Option<i64>,
    lag: i64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let redis = crate::redis::pool(&args.redis).await?;
    let scripts = Arc::new(Scripts::load(redis.next()).await?);
    let coupons = Coupons::new(redis.clone(), Keys::new(args.redis.key_prefix.clone()), scripts);
    let mysql = crate::db::pool(&args.mysql)?;

    let ids = match args.coupon {
        Some(id) => vec![id],
        None => coupons.ids().await?,
    };
    let mut rows = Vec::new();
    for id in ids {
        let Some(info) = coupons.info(id).await? else {
            anyhow::bail!("no coupon campaign {id} in Redis");
        };
        rows.push(CouponStatus {
            coupon_id: id,
            total: info.total,
            remaining: info.remaining,
            issued: info.issued,
            outbox_len: info.outbox_len,
            outbox_pending: coupons.outbox_pending(id).await?,
            mysql_rows: queries::issued_count(&mysql, id).await?,
        });
    }

    let topic = args.kafka.coupon_topic.clone();
    let kafka = crate::kafka::connect(&args.kafka).await?;
    let stored = queries::sink_offsets(&mysql, &topic).await?;
    let mut partitions = Vec::new();
    if let Some(t) = kafka.list_topics().await?.into_iter().find(|t| t.name == topic) {
        for p in t.partitions {
            let client = kafka
                .partition_client(topic.as_str(), p, rskafka::client::partition::UnknownTopicHandling::Retry)
                .await?;
            let end_offset = client.get_offset(OffsetAt::Latest).await?;
            let sink_next_offset = stored.iter().find(|(sp, _)| *sp == p).map(|(_, o)| *o);
            partitions.push(PartitionStatus {
                partition: p,
                end_offset,
                sink_next_offset,
                lag: end_offset - sink_next_offset.unwrap_or(0),
            });
        }
    }
    let status = Status { coupons: rows, topic, partitions };

    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_text(&status);
    }
    let _ = redis.quit().await;
    let _ = mysql.disconnect().await;
    Ok(())
}

fn print_text(s: &Status) {
    println!(
        "{:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>10}",
        "coupon", "total", "remaining", "issued", "outbox", "pending", "mysql"
    );
    for c in &s.coupons {
        println!(
            "{:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>10}",
            c.coupon_id, c.total, c.remaining, c.issued, c.outbox_len, c.outbox_pending, c.mysql_rows
        );
    }
    println!("\nkafka topic {}", s.topic);
    println!("{:>10} {:>12} {:>12} {:>8}", "partition", "end offset", "sink next", "lag");
    for p in &s.partitions {
        let next = p.sink_next_offset.map_or("-".to_string(), |o| o.to_string());
        println!("{:>10} {:>12} {:>12} {:>8}", p.partition, p.end_offset, next, p.lag);
    }
}
