//! The pipe's latency: an issue reaches Kafka promptly however long the sink's
//! fetches wait at the broker.

use std::time::{Duration, Instant};

use flashsale::{events::partition_for, kafka};
use hyper::StatusCode;
use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};

use crate::helpers::TestApp;

/// A broker answers one connection's requests in order. When the sink's
/// long-polling fetches shared the relay's connection, each produce waited
/// behind a fetch for the fetch's whole wait (here 6 s, and tansu holds a
/// fetch that long even once records arrive). The bound on a produce (2.5 s)
/// is far above the relay's own pace and far below that wait, so a loaded
/// box does not fail it and the old fault still would.
#[tokio::test]
async fn issues_reach_kafka_without_waiting_behind_the_sinks_long_polls() {
    let app = TestApp::spawn_with(|c| {
        c.sink.sink_max_wait_ms = 6_000;
        c.sink.sink_idle_wait_ms = 6_000;
    })
    .await;
    app.create_coupon(1, 10, &[]);
    let kafka_client = kafka::connect(&app.config.kafka).await.unwrap();
    let partition = partition_for(1, app.config.kafka.kafka_partitions);
    let topic = kafka_client
        .partition_client(app.config.kafka.coupon_topic.as_str(), partition, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    // Let the sink find the partitions empty and start its long polls.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let mut waits = Vec::new();
    for user in 1..=4u64 {
        let sent = Instant::now();
        assert_eq!(app.issue(1, user).await.status, StatusCode::CREATED);
        loop {
            let end = topic.get_offset(OffsetAt::Latest).await.unwrap();
            if end >= user as i64 {
                break;
            }
            assert!(sent.elapsed() < Duration::from_secs(10), "issue {user} never reached Kafka");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        waits.push(sent.elapsed());
        // Land the next issue at another point of the sink's 6 s poll.
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    eprintln!("issue -> Kafka: {waits:?}");
    // The relay blocks 100 ms on the outbox, then produces at once.
    assert!(waits.iter().all(|w| *w < Duration::from_millis(2_500)), "issue -> Kafka took {waits:?}");
    // And the sink still writes them all.
    assert_eq!(app.wait_for_rows(1, 4).await.len(), 4);
}
