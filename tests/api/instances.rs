//! Several service instances on one Redis, Kafka and MySQL, as a scaled
//! deployment runs them: each relay is its own consumer (named after its host
//! and port), campaigns and per-user limits hold across instances, the expiry
//! task's ticks are shared, and sinks split the partitions (`--instance I/N`).

use std::{
    collections::{HashMap, HashSet},
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use flashsale::keys::Keys;
use fred::prelude::*;
use hyper::StatusCode;

use crate::helpers::{distinct, KilledOnDrop, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sell_one_campaign_and_one_sale_exactly_with_their_own_relays() {
    let a = TestApp::spawn_with(|c| c.relay.relay_consumer = None).await;
    let b = a.another_instance(|c| c.run_sink = false).await;
    a.create_coupon(1, 100, &[]);
    a.create_sale(2, &["1:100:60"], &["--per-user", "2"]);
    let (a, b) = (Arc::new(a), Arc::new(b));

    // 2,000 users race for 100 coupons, every other one through each instance.
    let mut tasks = tokio::task::JoinSet::new();
    for user in 1..=2_000u64 {
        let app = if user % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move { (user, app.issue(1, user).await.status) });
    }
    let mut winners = Vec::new();
    for (user, status) in tasks.join_all().await {
        match status {
            StatusCode::CREATED => winners.push(user),
            StatusCode::GONE | StatusCode::CONFLICT => {}
            other => panic!("user {user}: {other}"),
        }
    }
    assert_eq!(winners.len(), 100, "exactly the campaign's quantity is issued");

    // 40 users each try 3 single-unit orders, spread over both instances:
    // the per-user limit (2) holds across them, and 60 units never oversell.
    let mut tasks = tokio::task::JoinSet::new();
    for user in 1..=40u64 {
        for attempt in 0..3u64 {
            let app = if (user + attempt) % 2 == 0 { a.clone() } else { b.clone() };
            tasks.spawn(async move { (user, app.reserve(2, user, &[(1, 1)]).await.status) });
        }
    }
    let mut per_user: HashMap<u64, u32> = HashMap::new();
    for (user, status) in tasks.join_all().await {
        match status {
            StatusCode::CREATED => *per_user.entry(user).or_default() += 1,
            StatusCode::CONFLICT | StatusCode::GONE | StatusCode::UNPROCESSABLE_ENTITY => {}
            other => panic!("user {user}: {other}"),
        }
    }
    assert!(per_user.values().all(|&n| n <= 2), "per-user limit across instances: {per_user:?}");
    let sold: u32 = per_user.values().sum();
    assert_eq!(sold, 60, "all 60 units sell (80 allowed attempts), none twice");
    assert_eq!(a.remaining(2).await.get(&1), Some(&0));

    // Every issue reaches MySQL once, whichever relay carried it.
    let rows = a.wait_for_rows(1, 100).await;
    assert_eq!(distinct(&rows), distinct(&winners));
    a.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 2", 60).await;

    // Each relay read as itself: relay-<host>-<its port>, never a shared name.
    let keys = Keys::new(a.config.redis.key_prefix.clone());
    let redis = flashsale::redis::client(&a.config.redis).await.unwrap();
    let ours: HashSet<String> =
        [a.addr.port(), b.addr.port()].iter().map(|port| format!("relay-{}-{port}", hostname())).collect();
    let mut seen = HashSet::new();
    for stream in [keys.coupon(1).outbox, keys.sale(2).outbox] {
        for name in crate::relay_claim::group_consumers(&redis, &stream).await {
            assert!(ours.contains(&name), "consumer {name} is one of {ours:?}");
            seen.insert(name);
        }
    }
    assert!(!seen.is_empty(), "the relays read as their own consumers");
    // The expiry tick is taken by one instance at a time.
    let turn: Option<String> = redis.get(keys.expiry_turn()).await.unwrap();
    if let Some(turn) = turn {
        assert!(ours.contains(&turn), "expiry turn held by {turn}");
    }
    let _ = redis.quit().await;
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

/// `flashsale sink --instance I/N` as a child process, killed on drop.
fn sink_process(app: &TestApp, instance: &str) -> KilledOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["sink", "--instance", instance])
        .envs(app.env())
        .env("FLASHSALE_SINK_MAX_WAIT_MS", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KilledOnDrop(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sinks_split_the_partitions_and_two_on_one_partition_write_it_once() {
    let app = Arc::new(TestApp::spawn_with(|c| c.run_sink = false).await);
    assert_eq!(app.config.kafka.kafka_partitions, 2);
    // Campaigns on each partition (the record key is the campaign id).
    let (mut even, mut odd) = (Vec::new(), Vec::new());
    for id in 1..=20u64 {
        match flashsale::events::partition_for(id, 2) {
            0 if even.len() < 2 => even.push(id),
            1 if odd.len() < 2 => odd.push(id),
            _ => {}
        }
    }
    assert_eq!((even.len(), odd.len()), (2, 2));
    for &id in even.iter().chain(&odd) {
        app.create_coupon(id, 1_000, &[]);
        app.issue_all(id, 1..=50).await;
    }

    // Sink 0 of 2 alone writes partition 0's campaigns, and only those.
    let _first = sink_process(&app, "0/2");
    for &id in &even {
        app.wait_for_rows(id, 50).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for &id in &odd {
        assert!(app.mysql_users(id).await.is_empty(), "campaign {id} is partition 1's");
    }
    let parts: Vec<i32> = app.sql("SELECT DISTINCT partition_id FROM sink_offsets ORDER BY 1").await;
    assert_eq!(parts, vec![0]);

    // Two sinks claim partition 1: one writes it, the other stands by and
    // takes over when the first is killed; every row lands once.
    let first = sink_process(&app, "1/2");
    let _twin = sink_process(&app, "1/2");
    for &id in &odd {
        app.issue_all(id, 51..=100).await;
        let rows = app.wait_for_rows(id, 100).await;
        assert_eq!(distinct(&rows).len(), 100, "campaign {id}");
    }
    drop(first);
    for &id in &odd {
        app.issue_all(id, 101..=150).await;
        let rows = app.wait_for_rows(id, 150).await;
        assert_eq!(distinct(&rows).len(), 150, "campaign {id}: the standby sink took over");
    }
    let parts: Vec<i32> = app.sql("SELECT DISTINCT partition_id FROM sink_offsets ORDER BY 1").await;
    assert_eq!(parts, vec![0, 1]);
}

#[test]
fn a_bad_sink_instance_is_refused_with_the_rule() {
    let out = Command::new(env!("CARGO_BIN_EXE_flashsale")).args(["sink", "--instance", "2/2"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be below 2"), "{err}");
}

/// The per-user request rate is counted by each instance (as docs/operations.md
/// says): behind N instances a user gets up to N times the setting. The
/// per-user purchase limit of a sale is Redis's and holds exactly (above).
#[tokio::test]
async fn the_per_user_rate_is_per_instance() {
    let a = TestApp::spawn_with(|c| c.http.rate_per_user = 2).await;
    let b = a.another_instance(|c| c.run_sink = false).await;
    a.create_sale(1, &["1:100:100"], &[]);
    let mut accepted = 0;
    for attempt in 0..6 {
        let app = if attempt % 2 == 0 { &a } else { &b };
        match app.reserve(1, 7, &[(1, 1)]).await.status {
            StatusCode::CREATED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(accepted, 4, "2 per second on each of 2 instances");
}
