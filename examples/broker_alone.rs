//! The broker's own pace, for the benchmark: how fast the Kafka broker takes
//! and gives back coupon-issued records when nothing else runs — the ceiling
//! of the relay -> Kafka -> sink pipe on this box.
//!
//! Produces N records shaped like the relay's (same key, same JSON value, the
//! relay's chunk size, one request at a time, as the relay sends one
//! campaign's events) to a new one-partition topic, then fetches them back
//! from offset 0 the way the sink does (4 MiB per fetch, no wait while records
//! remain). Prints one JSON line: records, produce and fetch records/s.
//!
//! `cargo run --release --example broker_alone -- 127.0.0.1:29092 topic 100000`

use std::time::Instant;

use flashsale::{
    events::{CouponIssued, Event},
    relay::{chunks, record, CHUNK_BYTES},
};
use rskafka::client::{
    partition::{Compression, UnknownTopicHandling},
    ClientBuilder,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let broker = args.next().unwrap_or_else(|| "127.0.0.1:29092".into());
    let topic = args.next().unwrap_or_else(|| format!("broker-alone-{}", std::process::id()));
    let n: u64 = args.next().map_or(Ok(100_000), |s| s.parse())?;

    let client = ClientBuilder::new(vec![broker]).build().await?;
    client.controller_client()?.create_topic(&topic, 1, 1, 10_000).await?;
    let partition = client.partition_client(&topic, 0, UnknownTopicHandling::Retry).await?;

    let now_ms = 1_790_000_000_000u64;
    let records: Vec<_> = (0..n)
        .map(|i| {
            record(&Event::CouponIssued(CouponIssued {
                event_id: CouponIssued::event_id(3, 0, &format!("{}-{}", now_ms + i / 30, i % 30), 0),
                coupon_id: 3,
                user_id: 1_000_000 + i,
                issued_at: now_ms + i / 30,
            }))
        })
        .collect();

    let started = Instant::now();
    for chunk in chunks(&records, CHUNK_BYTES) {
        partition.produce(chunk.to_vec(), Compression::NoCompression).await?;
    }
    let produce_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (mut offset, mut fetched) = (0i64, 0u64);
    while fetched < n {
        let (got, _watermark) = partition.fetch_records(offset, 1..4 * 1024 * 1024, 0).await?;
        if let Some(last) = got.last() {
            offset = last.offset + 1;
        }
        fetched += got.len() as u64;
    }
    let fetch_s = started.elapsed().as_secs_f64();

    println!(
        r#"{{"records":{n},"produce_s":{produce_s:.3},"produce_per_s":{:.0},"fetch_s":{fetch_s:.3},"fetch_per_s":{:.0}}}"#,
        n as f64 / produce_s,
        n as f64 / fetch_s
    );
    Ok(())
}
