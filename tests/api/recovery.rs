//! Crashes mid-stream: the relay and the sink resume, and MySQL ends with
//! exactly the issued set — nothing lost, nothing doubled.

use std::{
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use hyper::StatusCode;

use crate::helpers::{distinct, KilledOnDrop, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crashing_the_service_mid_stream_loses_and_doubles_nothing() {
    let app = TestApp::spawn().await;
    app.create_coupon(50, 3000, &[]);

    let shared = Arc::new(app);
    let mut winners = shared.issue_all(50, 1..=1500).await;
    let mut app = Arc::try_unwrap(shared).ok().expect("no other owner");
    // Abort, not a graceful stop: the relay and sink die wherever they are.
    app.crash();
    let rows_at_crash = app.mysql_users(50).await.len();
    app.start().await;

    let shared = Arc::new(app);
    winners.extend(shared.issue_all(50, 1501..=2500).await);
    let mut app = Arc::try_unwrap(shared).ok().expect("no other owner");
    // And a graceful restart: the drain must not drop anything either.
    app.stop().await;
    app.start().await;

    let shared = Arc::new(app);
    winners.extend(shared.issue_all(50, 2501..=3000).await);
    let rows = shared.wait_for_rows(50, 3000).await;
    assert_eq!(distinct(&rows), distinct(&winners));
    eprintln!("rows in MySQL at the crash: {rows_at_crash} of 1500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_separate_sink_process_mid_stream_loses_and_doubles_nothing() {
    let app = TestApp::spawn_with(|c| c.run_sink = false).await;
    app.create_coupon(60, 2000, &[]);
    let app = Arc::new(app);
    let winners = app.issue_all(60, 1..=2000).await;

    let sink = |fetch_bytes: &str| {
        let c = &app.config;
        Command::new(env!("CARGO_BIN_EXE_flashsale"))
            .arg("sink")
            .env("FLASHSALE_MYSQL_URL", &c.mysql.mysql_url)
            .env("FLASHSALE_KAFKA_BROKERS", c.kafka.kafka_brokers.join(","))
            .env("FLASHSALE_COUPON_TOPIC", &c.kafka.coupon_topic)
            .env("FLASHSALE_ORDER_TOPIC", &c.kafka.order_topic)
            .env("FLASHSALE_WALLET_TOPIC", &c.kafka.wallet_topic)
            // Small fetches: many small transactions, so the kill lands mid-stream.
            .env("FLASHSALE_SINK_FETCH_BYTES", fetch_bytes)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(KilledOnDrop)
            .expect("flashsale sink starts")
    };
    let first = sink("1024");
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows_at_kill = loop {
        let n = app.mysql_users(60).await.len();
        if n > 0 {
            drop(first); // SIGKILL
            break n;
        }
        assert!(Instant::now() < deadline, "the sink wrote nothing");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(rows_at_kill < 2000, "killed after it had finished: not mid-stream");

    let second = sink("1048576");
    let rows = app.wait_for_rows(60, 2000).await;
    drop(second);
    assert_eq!(distinct(&rows), distinct(&winners));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crashing_the_service_while_orders_change_state_leaves_mysql_equal_to_redis() {
    let app = TestApp::spawn().await;
    app.create_sale(80, &["1:100:5000", "2:50:5000"], &[]);
    let app = Arc::new(app);
    churn_orders(&app, 0..600).await;
    let mut app = Arc::try_unwrap(app).ok().expect("no other owner");
    app.crash();
    app.start().await;
    let app = Arc::new(app);
    churn_orders(&app, 600..900).await;

    // 900 orders; 600 of them changed state once more: 1,500 events in all.
    // Settled = every order in its final state (a reserved row at version 1
    // may still be waiting for its payment or cancellation).
    let settled = "SELECT COUNT(*) FROM orders WHERE sale_id = 80 AND CASE user_id % 3 \
        WHEN 0 THEN status = 'paid' AND version = 2 WHEN 1 THEN status = 'cancelled' AND version = 2 \
        ELSE status = 'reserved' AND version = 1 END";
    assert_eq!(app.wait_for_sql(settled, 900).await, 900);
    let out = app.cli(&["reconcile", "--sale", "80"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
}

/// Reserves one order per user; pays a third of them and cancels a third.
async fn churn_orders(app: &Arc<TestApp>, users: std::ops::Range<u64>) {
    let mut tasks = tokio::task::JoinSet::new();
    for user in users {
        let app = app.clone();
        tasks.spawn(async move {
            let order = app.reserve(80, user, &[(1, 1), (2, 2)]).await.body;
            let id = order["order_id"].as_u64().unwrap();
            match user % 3 {
                0 => assert_eq!(app.confirm(80, id, 200).await.status, StatusCode::OK),
                1 => assert_eq!(app.cancel(80, id).await.status, StatusCode::OK),
                _ => {}
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test]
async fn the_relay_recovers_when_redis_loses_an_outbox_stream_and_its_group() {
    let app = TestApp::spawn().await;
    app.create_coupon(81, 100, &[]);
    assert_eq!(app.issue(81, 1).await.status, StatusCode::CREATED);
    app.wait_for_rows(81, 1).await;

    // As after a Redis restart without AOF: the stream, and with it the relay's group, is gone.
    let outbox = format!("{}{{coupon:81}}:outbox", app.config.redis.key_prefix);
    let deleted = Command::new("redis-cli").args(["-u", &app.config.redis.redis_url, "DEL", &outbox]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&deleted.stdout).trim(), "1");

    for user in 2..=5 {
        assert_eq!(app.issue(81, user).await.status, StatusCode::CREATED);
    }
    let rows = app.wait_for_rows(81, 5).await;
    assert_eq!(rows.len(), 5, "events after the loss still reach MySQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_batch_larger_than_luas_unpack_limit_is_acknowledged() {
    let mut app = TestApp::spawn_with(|c| c.relay.relay_batch = 20_000).await;
    app.create_coupon(82, 12_000, &[]);
    // With the service stopped, 12,000 issues pile up in the outbox (through
    // the real script, one at a time: 12,000 entries), so the restarted relay
    // reads them in one batch: more ids than one Lua unpack() takes.
    app.stop().await;
    let redis = flashsale::redis::pool(&app.config.redis).await.unwrap();
    let scripts = Arc::new(flashsale::scripts::Scripts::load(redis.next(), Default::default()).await.unwrap());
    let keys = flashsale::keys::Keys::new(app.config.redis.key_prefix.clone());
    let outbox = keys.coupon(82).outbox;
    let placement = flashsale::placement::Placement::detect(redis.next());
    let coupons = flashsale::coupons::Coupons::new(redis.clone(), keys, scripts, &placement);
    for user in 0..12_000 {
        coupons.issue(82, user, false).await.unwrap();
    }
    let entries: u64 = fred::interfaces::StreamsInterface::xlen(redis.next(), &outbox).await.unwrap();
    assert_eq!(entries, 12_000);
    app.start().await;
    assert_eq!(app.wait_for_rows(82, 12_000).await.len(), 12_000);
    let status = app.cli(&["status", "--coupon", "82", "--json"]).success().stdout;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["coupons"][0]["outbox_len"], 0, "every entry acknowledged and deleted");
}
