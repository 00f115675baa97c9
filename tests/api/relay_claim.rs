//! Entries a relay read but never acknowledged: its own after a crash, and a
//! dead relay's, claimed once idle. Thousands of them are delivered in
//! slices, each exactly once into MySQL.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use flashsale::keys::{Keys, OUTBOX_GROUP};
use fred::{
    prelude::*,
    types::{ClusterHash, CustomCommand},
};

use crate::{
    helpers::{distinct, TestApp},
    own_broker::OwnBroker,
};

/// XPENDING's count for `consumer` on `stream` (0 before the relay made its group).
async fn pending_of(redis: &Client, stream: &str, consumer: &str) -> u64 {
    let summary: Result<Value, _> = redis
        .custom(CustomCommand::new_static("XPENDING", ClusterHash::FirstKey, false), vec![stream, OUTBOX_GROUP])
        .await;
    let summary = match summary {
        Ok(summary) => summary,
        Err(e) if e.details().starts_with("NOGROUP") => return 0,
        Err(e) => panic!("XPENDING: {e}"),
    };
    let Value::Array(parts) = summary else { return 0 };
    let Some(Value::Array(consumers)) = parts.get(3) else { return 0 };
    consumers
        .iter()
        .filter_map(|c| match c {
            Value::Array(pair) if pair.first().and_then(|n| n.as_string()).as_deref() == Some(consumer) => {
                pair.get(1)?.as_string()?.parse::<u64>().ok()
            }
            _ => None,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_unacknowledged_entries_of_a_crashed_and_a_dead_relay_reach_mysql_once() {
    let broker = OwnBroker::start();
    let app = TestApp::spawn_with(|c| {
        c.kafka.kafka_brokers = vec![broker.addr.clone()];
        c.relay.relay_batch = 20_000;
        c.relay.relay_claim_idle_ms = 500;
    })
    .await;
    app.create_coupon(91, 5000, &[]);
    let stream = Keys::new(app.config.redis.key_prefix.clone()).coupon(91).outbox;
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let app = Arc::new(app);

    // The broker stops answering: the relay reads the first issue and hangs
    // in produce, the entry pending under its name.
    broker.pause();
    let mut winners = app.issue_all(91, 1..=1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while pending_of(&redis, &stream, "relay-1").await == 0 {
        assert!(Instant::now() < deadline, "the relay never read the first issue");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Issues it can't read meanwhile: another relay reads them, and dies.
    winners.extend(app.issue_all(91, 2..=2500).await);
    let read: Value = redis
        .custom(
            CustomCommand::new_static("XREADGROUP", ClusterHash::Random, false),
            vec!["GROUP", OUTBOX_GROUP, "relay-dead", "COUNT", "10000", "STREAMS", stream.as_str(), ">"],
        )
        .await
        .unwrap();
    assert!(!read.is_null());
    // Every entry but the first (an entry holds one script call's issues).
    let entries: u64 = redis.xlen(&stream).await.unwrap();
    assert!(entries >= 2, "{entries} entries");
    assert_eq!(pending_of(&redis, &stream, "relay-dead").await, entries - 1);

    // The service dies too, its produce request still queued at the broker.
    let mut app = Arc::try_unwrap(app).ok().expect("no other owner");
    app.crash();
    broker.resume();
    app.start().await;

    // Its own pending entry, then the dead relay's 2,499 once idle, in slices.
    let rows = app.wait_for_rows(91, 2500).await;
    assert_eq!(distinct(&rows), distinct(&winners));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: u64 = redis.xlen(&stream).await.unwrap();
        let pending = pending_of(&redis, &stream, "relay-1").await + pending_of(&redis, &stream, "relay-dead").await;
        if left == 0 && pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "outbox still holds {left} entries, {pending} pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = redis.quit().await;
}

/// Outbox entries of an older version name one user (`user_id`); entries now
/// name a whole script call's users (`user_ids`). The relay reads both, so an
/// upgrade mid-sale loses nothing already in the outbox.
#[tokio::test]
async fn an_entry_of_the_older_one_user_form_still_reaches_mysql() {
    let app = TestApp::spawn().await;
    app.create_coupon(93, 10, &[]);
    let stream = Keys::new(app.config.redis.key_prefix.clone()).coupon(93).outbox;
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let issued_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let id: String = redis
        .custom(
            CustomCommand::new_static("XADD", ClusterHash::FirstKey, false),
            vec![
                stream.clone(),
                "*".into(),
                "coupon_id".into(),
                "93".into(),
                "user_id".into(),
                "2".into(),
                "issued_at".into(),
                issued_at.to_string(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(app.issue(93, 1).await.status, hyper::StatusCode::CREATED);

    let rows = app.wait_for_rows(93, 2).await;
    assert_eq!(distinct(&rows), distinct(&[1, 2]));
    let old: Vec<String> = app.sql("SELECT event_id FROM coupon_issues WHERE coupon_id = 93 AND user_id = 2").await;
    assert_eq!(old, vec![format!("c93-{id}")]);
    let _ = redis.quit().await;
}

/// XREADGROUP of every new entry of `stream` as `consumer` (a relay that then stalls).
async fn read_as(redis: &Client, stream: &str, consumer: &str) {
    let read: Value = redis
        .custom(
            CustomCommand::new_static("XREADGROUP", ClusterHash::Random, false),
            vec!["GROUP", OUTBOX_GROUP, consumer, "COUNT", "10000", "STREAMS", stream, ">"],
        )
        .await
        .unwrap();
    assert!(!read.is_null(), "{consumer} read entries");
}

/// Several instances share the outbox: a relay that is slow but alive (its
/// heartbeat fresh) keeps its entries however long they sit; one that is gone
/// (no heartbeat) has them claimed and delivered by another, and is removed
/// from the group once it holds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_live_relay_keeps_its_entries_and_a_gone_one_is_claimed_and_removed() {
    let broker = OwnBroker::start();
    let app = TestApp::spawn_with(|c| {
        c.kafka.kafka_brokers = vec![broker.addr.clone()];
        c.relay.relay_claim_idle_ms = 300;
    })
    .await;
    app.create_coupon(95, 1000, &[]);
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    let stream = keys.coupon(95).outbox;
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let app = Arc::new(app);
    let alive = keys.relay_alive("relay-slow");
    let _: () = redis.set(&alive, "1", Some(Expiration::PX(120_000)), None, false).await.unwrap();

    // The service's relay hangs producing the first issue; the slow relay
    // and the gone one each read a share of the rest.
    broker.pause();
    let mut delivered = app.issue_all(95, 1..=1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while pending_of(&redis, &stream, "relay-1").await == 0 {
        assert!(Instant::now() < deadline, "the relay never read the first issue");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let slow = app.issue_all(95, 2..=100).await;
    read_as(&redis, &stream, "relay-slow").await;
    delivered.extend(app.issue_all(95, 101..=200).await);
    read_as(&redis, &stream, "relay-gone").await;
    broker.resume();

    // The gone relay's entries arrive; the slow one's stay pending, its own.
    let rows = app.wait_for_rows(95, delivered.len()).await;
    assert_eq!(distinct(&rows), distinct(&delivered));
    // Claim rounds go by (one every 300 ms): the gone relay, holding nothing
    // now, is removed; the slow one keeps its entries all along.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let names = group_consumers(&redis, &stream).await;
        assert!(names.contains(&"relay-slow".to_string()), "{names:?}");
        if !names.contains(&"relay-gone".to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "the gone relay is never removed: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await; // more claim rounds, for what must not happen
    assert_eq!(distinct(&app.mysql_users(95).await), distinct(&delivered), "a live relay's entries were taken");
    assert!(pending_of(&redis, &stream, "relay-slow").await > 0);

    // Its heartbeat stops: it is gone too, and its entries arrive.
    let _: i64 = redis.del(&alive).await.unwrap();
    let rows = app.wait_for_rows(95, 200).await;
    delivered.extend(slow);
    assert_eq!(distinct(&rows), distinct(&delivered));
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_consumers(&redis, &stream).await.contains(&"relay-slow".to_string()) {
        assert!(Instant::now() < deadline, "the slow relay, once gone, is never removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = redis.quit().await;
}

/// The consumer names in `stream`'s relay group.
pub async fn group_consumers(redis: &Client, stream: &str) -> Vec<String> {
    let Value::Array(list) = redis.xinfo_consumers(stream, OUTBOX_GROUP).await.unwrap() else { return Vec::new() };
    list.into_iter()
        .filter_map(|c| match c {
            Value::Array(fields) => {
                fields.chunks(2).find(|p| p[0].as_str().as_deref() == Some("name")).and_then(|p| p.get(1)?.as_string())
            }
            _ => None,
        })
        .collect()
}
