//! Released orders leave Redis once MySQL has them (`sales::forget`): a
//! reserve -> cancel loop no longer grows a live sale's `orders` hash, and
//! every answer about a forgotten order still comes, from MySQL.

use std::time::{Duration, Instant};

use flashsale::keys::Keys;
use hyper::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

/// Fields of the sale's `orders` hash, by redis-cli.
fn orders_in_redis(app: &TestApp, sale: u64) -> u64 {
    let keys = Keys::new(app.config.redis.key_prefix.clone()).sale(sale);
    let out = std::process::Command::new("redis-cli")
        .args(["-u", &app.config.redis.redis_url, "HLEN", &keys.orders])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test]
async fn cancelled_orders_leave_redis_once_mysql_has_them_and_are_still_answered() {
    let app = TestApp::spawn_with(|c| c.retention.forget_released_after = Duration::from_millis(200)).await;
    app.create_sale(1, &["1:1000:100"], &[]);
    let body = json!({"user_id": 7, "items": [{"sku": 1, "quantity": 1}]});
    let first = app.post("/v1/sales/1/orders", &body, &[("idempotency-key", "loop-0")]).await;
    let first = first.body["order_id"].as_u64().unwrap();
    assert_eq!(app.cancel(1, first).await.status, StatusCode::OK);
    for n in 1..20 {
        let order = app.reserve(1, 7, &[(1, 1)]).await.body["order_id"].as_u64().unwrap();
        assert_eq!(app.cancel(1, order).await.status, StatusCode::OK, "order {n}");
    }
    let kept = app.reserve(1, 7, &[(1, 2)]).await.body["order_id"].as_u64().unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while orders_in_redis(&app, 1) > 1 {
        assert!(Instant::now() < deadline, "released orders still in Redis: {}", orders_in_redis(&app, 1));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The live order stays; the forgotten ones are answered from MySQL.
    assert_eq!(app.get(&format!("/v1/sales/1/orders/{kept}")).await.body["status"], "reserved");
    let gone = app.get(&format!("/v1/sales/1/orders/{first}")).await;
    assert_eq!((gone.status, gone.body["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{}", gone.body);
    let again = app.cancel(1, first).await;
    assert_eq!((again.status, again.body["error"].as_str()), (StatusCode::CONFLICT, Some("order_cancelled")));
    let paid = app.confirm(1, first, 1000).await;
    assert_eq!((paid.status, paid.body["error"].as_str()), (StatusCode::CONFLICT, Some("order_cancelled")));
    let replay = app.post("/v1/sales/1/orders", &body, &[("idempotency-key", "loop-0")]).await;
    assert_eq!((replay.status, replay.body["status"].as_str()), (StatusCode::CREATED, Some("cancelled")));
    assert_eq!(replay.body["order_id"], first);
    assert_eq!(app.remaining(1).await[&1], 98, "the stock came back once, the kept order holds 2");
    let missing = app.get("/v1/sales/1/orders/12345").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "an id never made is still unknown");
    let reconciled = app.cli(&["reconcile"]);
    assert_eq!(reconciled.code, Some(0), "{} {}", reconciled.stdout, reconciled.stderr);
}

#[tokio::test]
async fn a_sale_whose_released_orders_were_forgotten_still_retires() {
    let app = TestApp::spawn_with(|c| {
        c.retention.forget_released_after = Duration::from_millis(100);
        c.retention.retain_after_end = Duration::from_secs(1);
    })
    .await;
    // Whole seconds: room for the orders below before the end on a loaded box.
    let ends = (std::time::SystemTime::now() + Duration::from_secs(8)).duration_since(std::time::UNIX_EPOCH).unwrap();
    app.create_sale(1, &["1:1000:100"], &["--ends-at", &ends.as_secs().to_string()]);
    let mut cancelled = Vec::new();
    for user in 1..=5 {
        let order = app.reserve(1, user, &[(1, 1)]).await.body["order_id"].as_u64().unwrap();
        assert_eq!(app.cancel(1, order).await.status, StatusCode::OK);
        cancelled.push(order);
    }
    let paid = app.reserve(1, 9, &[(1, 1)]).await.body["order_id"].as_u64().unwrap();
    assert_eq!(app.confirm(1, paid, 1000).await.status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(30);
    while orders_in_redis(&app, 1) > 1 {
        assert!(Instant::now() < deadline, "the released orders were never forgotten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Ended, every event in MySQL, some orders only there: it retires all the same.
    loop {
        let sale = app.get("/v1/sales/1").await;
        if sale.body["retired"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "the sale never retired: {}", sale.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gone = app.get(&format!("/v1/sales/1/orders/{}", cancelled[0])).await;
    assert_eq!(gone.body["status"], "cancelled");
    assert_eq!(app.get(&format!("/v1/sales/1/orders/{paid}")).await.body["status"], "paid");
}
