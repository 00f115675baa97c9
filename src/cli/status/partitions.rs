//! Per partition of one topic: the broker's end offset against the offset
//! the sink stored in MySQL, the lag between them, whether a sink runs on it
//! (holds its fence), and whether it is stalled, with the way out.

use rskafka::client::{
    partition::{OffsetAt, UnknownTopicHandling},
    Client,
};
use serde::Serialize;

use crate::{db::queries, sink, time::rfc3339_ms};

#[derive(Serialize)]
pub struct PartitionStatus {
    partition: i32,
    pub end_offset: i64,
    sink_next_offset: Option<i64>,
    lag: i64,
    /// A sink holds this partition's fence.
    sink_running: bool,
    stalled: bool,
    /// Why, when stalled.
    stall: Option<String>,
    /// The command that moves the stored offset, when stalled.
    way_out: Option<String>,
}

/// Every partition of `topic` (none when the topic does not exist yet);
/// `db` is the MySQL database the sink writes to (it names the fences).
pub async fn of(
    kafka: &Client,
    mysql: &mysql_async::Pool,
    db: &str,
    topic: &str,
) -> anyhow::Result<Vec<PartitionStatus>> {
    let stored = queries::sink_offsets(mysql, topic).await?;
    let recorded = queries::sink_stalls(mysql, topic).await?;
    let mut conn = mysql.get_conn().await?;
    let mut partitions = Vec::new();
    let Some(t) = kafka.list_topics().await?.into_iter().find(|t| t.name == topic) else {
        return Ok(partitions);
    };
    for p in t.partitions {
        let client = kafka.partition_client(topic, p, UnknownTopicHandling::Retry).await?;
        let end_offset = client.get_offset(OffsetAt::Latest).await?;
        let sink_next_offset = stored.iter().find(|(sp, _)| *sp == p).map(|(_, o)| *o);
        // Seen here and now first; a recorded `past_end` the broker no longer
        // confirms is stale (the sink that wrote it died before clearing it).
        let stall = match (sink_next_offset, recorded.iter().find(|r| r.partition == p)) {
            (Some(next), _) if next > end_offset => Some(format!(
                "stored offset {next} is past the broker's end {end_offset} (topic recreated or broker data lost?)"
            )),
            (_, Some(r)) if r.reason != "past_end" => Some(format!("{} (since {})", r.detail, rfc3339_ms(r.since))),
            _ => None,
        };
        partitions.push(PartitionStatus {
            partition: p,
            end_offset,
            sink_next_offset,
            lag: end_offset - sink_next_offset.unwrap_or(0),
            sink_running: sink::is_held(&mut conn, &sink::lock_name(db, topic, p)).await?,
            stalled: stall.is_some(),
            way_out: stall
                .as_ref()
                .map(|_| format!("flashsale sink reset-offset --topic {topic} --partition {p} --to earliest|latest|N")),
            stall,
        });
    }
    Ok(partitions)
}

pub fn print(topic: &str, partitions: &[PartitionStatus]) {
    println!("\nkafka topic {topic}");
    println!("{:>10} {:>12} {:>12} {:>8} {:>8} {:>8}", "partition", "end offset", "sink next", "lag", "sink", "state");
    for p in partitions {
        let next = p.sink_next_offset.map_or("-".to_string(), |o| o.to_string());
        let running = if p.sink_running { "running" } else { "-" };
        let state = if p.stalled { "STALLED" } else { "ok" };
        println!("{:>10} {:>12} {:>12} {:>8} {:>8} {:>8}", p.partition, p.end_offset, next, p.lag, running, state);
    }
    for p in partitions.iter().filter(|p| p.stalled) {
        println!("  partition {} is stalled: {}", p.partition, p.stall.as_deref().unwrap_or_default());
        println!("    fix the cause, or move the stored offset (stop the sink first):");
        println!("    {}", p.way_out.as_deref().unwrap_or_default());
    }
}

/// Events Kafka holds that the sink has not written, over both topics:
/// what `coupon load` waits for.
pub async fn lag(kafka: &crate::config::KafkaSettings, mysql: &mysql_async::Pool, db: &str) -> anyhow::Result<i64> {
    let client = crate::kafka::connect(kafka).await?;
    let mut lag = 0;
    for topic in [&kafka.coupon_topic, &kafka.order_topic] {
        lag += of(&client, mysql, db, topic).await?.iter().map(|p| p.lag.max(0)).sum::<i64>();
    }
    Ok(lag)
}
