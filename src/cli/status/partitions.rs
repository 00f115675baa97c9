//! Per partition of one topic: the broker's end offset against the offset
//! the sink stored in MySQL, and the lag between them.

use rskafka::client::{
    partition::{OffsetAt, UnknownTopicHandling},
    Client,
};
use serde::Serialize;

use crate::db::queries;

#[derive(Serialize)]
pub struct PartitionStatus {
    partition: i32,
    pub end_offset: i64,
    sink_next_offset: Option<i64>,
    lag: i64,
}

/// Every partition of `topic` (none when the topic does not exist yet).
pub async fn of(kafka: &Client, mysql: &mysql_async::Pool, topic: &str) -> anyhow::Result<Vec<PartitionStatus>> {
    let stored = queries::sink_offsets(mysql, topic).await?;
    let mut partitions = Vec::new();
    let Some(t) = kafka.list_topics().await?.into_iter().find(|t| t.name == topic) else {
        return Ok(partitions);
    };
    for p in t.partitions {
        let client = kafka.partition_client(topic, p, UnknownTopicHandling::Retry).await?;
        let end_offset = client.get_offset(OffsetAt::Latest).await?;
        let sink_next_offset = stored.iter().find(|(sp, _)| *sp == p).map(|(_, o)| *o);
        partitions.push(PartitionStatus {
            partition: p,
            end_offset,
            sink_next_offset,
            lag: end_offset - sink_next_offset.unwrap_or(0),
        });
    }
    Ok(partitions)
}

pub fn print(topic: &str, partitions: &[PartitionStatus]) {
    println!("\nkafka topic {topic}");
    println!("{:>10} {:>12} {:>12} {:>8}", "partition", "end offset", "sink next", "lag");
    for p in partitions {
        let next = p.sink_next_offset.map_or("-".to_string(), |o| o.to_string());
        println!("{:>10} {:>12} {:>12} {:>8}", p.partition, p.end_offset, next, p.lag);
    }
}
