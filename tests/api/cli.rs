//! The ops CLI against the real servers: migrate, coupon create, status.

use crate::helpers::TestApp;

#[tokio::test]
async fn creating_an_existing_coupon_fails_unless_replace_or_if_absent() {
    let app = TestApp::spawn().await;
    app.create_coupon(21, 5, &[]);
    app.issue(21, 1).await;

    let again = app.cli(&["coupon", "create", "--id", "21", "--quantity", "9"]);
    assert_ne!(again.code, Some(0));
    assert!(again.stderr.contains("exists"), "{}", again.stderr);
    assert_eq!(app.coupon(21).await.body["remaining"], 4, "left untouched");

    app.cli(&["coupon", "create", "--id", "21", "--quantity", "9", "--if-absent"]).success();
    assert_eq!(app.coupon(21).await.body["remaining"], 4, "left untouched");

    app.cli(&["coupon", "create", "--id", "21", "--quantity", "9", "--replace"]).success();
    let campaign = app.coupon(21).await.body;
    assert_eq!(
        (campaign["total"].as_u64(), campaign["remaining"].as_u64(), campaign["issued"].as_u64()),
        (Some(9), Some(9), Some(0))
    );
    assert_eq!(app.issue(21, 1).await.status, hyper::StatusCode::CREATED, "user 1 may take the new campaign");
}

#[tokio::test]
async fn migrate_twice_is_a_no_op() {
    let app = TestApp::spawn().await;
    let out = app.cli(&["migrate"]).success();
    assert!(out.stdout.contains("up to date"), "{}", out.stdout);
}

#[tokio::test]
async fn status_reports_redis_stock_outbox_kafka_offsets_and_mysql_rows() {
    let app = TestApp::spawn().await;
    app.create_coupon(31, 10, &[]);
    for user in 1..=4 {
        app.issue(31, user).await;
    }
    app.wait_for_rows(31, 4).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let out = app.cli(&["status", "--coupon", "31", "--json"]).success();
        let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let lag: i64 = status["partitions"].as_array().unwrap().iter().map(|p| p["lag"].as_i64().unwrap()).sum();
        if lag == 0 || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let coupon = &status["coupons"][0];
    assert_eq!(coupon["coupon_id"], 31);
    assert_eq!(coupon["remaining"], 6);
    assert_eq!(coupon["issued"], 4);
    assert_eq!(coupon["outbox_len"], 0);
    assert_eq!(coupon["mysql_rows"], 4);
    let ends: i64 = status["partitions"].as_array().unwrap().iter().map(|p| p["end_offset"].as_i64().unwrap()).sum();
    assert_eq!(ends, 4, "four events in Kafka");
    let text = app.cli(&["status"]).success().stdout;
    assert!(text.contains("31"), "{text}");
}

#[tokio::test]
async fn cli_says_clearly_when_a_server_is_unreachable() {
    let app = TestApp::spawn().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["migrate"])
        .env("FLASHSALE_MYSQL_URL", "mysql://flashsale:flashsale@127.0.0.1:1/x")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach MySQL"));
    drop(app);
}

#[tokio::test]
async fn stock_add_and_set_top_up_a_sold_out_sku_mid_sale() {
    let app = TestApp::spawn().await;
    app.create_sale(90, &["1:100:2"], &[]);
    assert_eq!(app.reserve(90, 1, &[(1, 2)]).await.status, hyper::StatusCode::CREATED);
    assert_eq!(app.reserve(90, 2, &[(1, 1)]).await.status, hyper::StatusCode::GONE);

    let out = app.cli(&["stock", "add", "--sale", "90", "--sku", "1", "--quantity", "3"]).success();
    assert!(out.stdout.contains("remaining 3"), "{}", out.stdout);
    // The service remembers "sold out" for up to 250 ms; the top-up shows after that.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let res = app.reserve(90, 2, &[(1, 1)]).await;
        if res.status == hyper::StatusCode::CREATED {
            break;
        }
        assert_eq!(res.status, hyper::StatusCode::GONE);
        assert!(std::time::Instant::now() < deadline, "the top-up never showed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.cli(&["stock", "set", "--sale", "90", "--sku", "1", "--quantity", "10"]).success();

    let sale = app.get("/v1/sales/90").await.body;
    assert_eq!(sale["skus"][0]["remaining"], 10);
    assert_eq!(sale["skus"][0]["stock"], 13, "supplied in all: 2 + 3 + (10 - 2)");
    let stock: Vec<u64> = app.sql("SELECT stock FROM sale_skus WHERE sale_id = 90 AND sku = 1").await;
    assert_eq!(stock, vec![13]);
    let unknown = app.cli(&["stock", "add", "--sale", "90", "--sku", "9", "--quantity", "1"]);
    assert_ne!(unknown.code, Some(0));
    assert!(unknown.stderr.contains("no SKU 9"), "{}", unknown.stderr);
    app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 90", 2).await;
    app.cli(&["reconcile", "--sale", "90"]).success();
}

#[tokio::test]
async fn sale_create_refuses_an_existing_id_and_bad_skus() {
    let app = TestApp::spawn().await;
    app.create_sale(91, &["1:100:2"], &[]);
    let again = app.cli(&["sale", "create", "--id", "91", "--sku", "1:100:5"]);
    assert_ne!(again.code, Some(0));
    assert!(again.stderr.contains("exists"), "{}", again.stderr);
    app.cli(&["sale", "create", "--id", "91", "--sku", "1:100:5", "--if-absent"]).success();
    assert_eq!(app.remaining(91).await[&1], 2);
    app.cli(&["sale", "create", "--id", "91", "--sku", "1:100:5", "--replace"]).success();
    assert_eq!(app.remaining(91).await[&1], 5);
    let bad = app.cli(&["sale", "create", "--id", "92", "--sku", "1:abc:5"]);
    assert_ne!(bad.code, Some(0));
    assert!(bad.stderr.contains("price"), "{}", bad.stderr);
}

#[tokio::test]
async fn a_separate_sink_serves_its_own_metrics() {
    let app = TestApp::spawn_with(|c| c.run_sink = false).await;
    let port = crate::helpers::free_port();
    let mut sink = std::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .arg("sink")
        .envs(app.env().iter().map(|(k, v)| (*k, v.as_str())))
        .env("FLASHSALE_METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .env("FLASHSALE_MAX_CONNECTIONS", "1")
        .env("FLASHSALE_HEADER_READ_TIMEOUT_MS", "400")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    app.create_coupon(1, 5, &[]);
    app.issue(1, 1).await;
    app.wait_for_rows(1, 1).await;
    // One connection that sends nothing holds the only slot until the
    // listener closes it as idle (one to two 400 ms periods); a scrape meanwhile waits.
    let (scrape, waited, idle_closed) = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let connect = || {
            let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            s
        };
        let mut silent = connect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let asked = std::time::Instant::now();
        let mut s = connect();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let waited = asked.elapsed();
        let idle_closed = matches!(silent.read(&mut [0u8; 16]), Ok(0));
        (out, waited, idle_closed)
    })
    .await
    .unwrap();
    sink.kill().unwrap();
    sink.wait().unwrap();
    assert!(idle_closed, "a connection that sent nothing was closed");
    assert!(waited >= std::time::Duration::from_millis(300), "the scrape waited for the only slot: {waited:?}");
    assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape:.100}");
    assert!(scrape.contains("\nflashsale_sink_events_total 1\n"), "the sink counted its one event");
    assert!(scrape.contains("flashsale_sink_lag{topic="));
}

#[tokio::test]
async fn status_reports_wallets_in_redis_against_mysql_and_the_wallet_topic() {
    let app = TestApp::spawn().await;
    for (user, amount) in [(1, 5_000), (2, 7_000)] {
        let charged = app.charge(user, serde_json::json!(amount), &format!("top-up-{user}")).await;
        assert_eq!(charged.status, hyper::StatusCode::OK, "{}", charged.body);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let out = app.cli(&["status", "--json"]).success();
        let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let lag: i64 = status["wallet_partitions"].as_array().unwrap().iter().map(|p| p["lag"].as_i64().unwrap()).sum();
        let ends: i64 =
            status["wallet_partitions"].as_array().unwrap().iter().map(|p| p["end_offset"].as_i64().unwrap()).sum();
        if (ends == 2 && lag == 0 && status["wallets"]["mysql_wallets"] == 2) || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let wallets = &status["wallets"];
    assert_eq!(
        (wallets["redis_wallets"].as_u64(), wallets["redis_balance"].as_u64()),
        (Some(2), Some(12_000)),
        "{status}"
    );
    assert_eq!(
        (wallets["mysql_wallets"].as_u64(), wallets["mysql_balance"].as_u64()),
        (Some(2), Some(12_000)),
        "{status}"
    );
    assert_eq!(wallets["outbox_len"], 0, "Kafka has both charges: {status}");
    let ends: i64 =
        status["wallet_partitions"].as_array().unwrap().iter().map(|p| p["end_offset"].as_i64().unwrap()).sum();
    assert_eq!(ends, 2, "two wallet events in Kafka: {status}");

    let text = app.cli(&["status"]).success().stdout;
    assert!(text.contains("wallets: Redis 2 holding 12000"), "{text}");
    assert!(text.contains(&format!("kafka topic {}", app.config.kafka.wallet_topic)), "{text}");
    // Naming a sale narrows the report to it.
    app.create_sale(1, &["1:100:10"], &[]);
    let narrowed: serde_json::Value =
        serde_json::from_str(&app.cli(&["status", "--sale", "1", "--json"]).success().stdout).unwrap();
    assert!(narrowed.get("wallets").is_none(), "{narrowed}");
}
