//! Ids and marks can't cross: an order id names one order forever, the sink
//! refuses to merge another order into an existing row, releasing an order
//! frees only a coupon mark it holds, and an ended campaign's coupon no longer
//! applies. Through the real HTTP API, CLI, Redis and MySQL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::prelude::*;
use hyper::StatusCode;
use serde_json::json;

use crate::helpers::{Response, TestApp};

fn order_id(res: Response) -> u64 {
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.body["order_id"].as_u64().unwrap()
}

async fn redis(app: &TestApp) -> (Pool, flashsale::keys::Keys) {
    let redis = flashsale::redis::pool(&app.config.redis).await.unwrap();
    (redis, flashsale::keys::Keys::new(app.config.redis.key_prefix.clone()))
}

#[tokio::test]
async fn order_ids_after_a_replace_name_no_earlier_order() {
    let app = TestApp::spawn().await;
    app.create_sale(31, &["1:100:50"], &[]);
    let before: Vec<u64> = reserve_each(&app, 31, 1..=5).await;
    app.cli(&["sale", "create", "--id", "31", "--sku", "1:100:50", "--replace"]).success();
    let after: Vec<u64> = reserve_each(&app, 31, 6..=10).await;

    let max_before = *before.iter().max().unwrap();
    assert!(after.iter().all(|id| *id > max_before), "ids after --replace {after:?} repeat or precede {before:?}");
    let js_safe = 1u64 << 53;
    assert!(after.iter().chain(&before).all(|id| *id < js_safe), "ids stay exact in a JavaScript number");
    // Each answered id still names its own order in MySQL: five of them from
    // before the replace (the sink may write them after it), five after.
    let mine = format!(
        "SELECT COUNT(*) FROM orders WHERE sale_id = 31 AND order_id IN ({}) AND user_id BETWEEN 6 AND 10",
        after.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    );
    assert_eq!(app.wait_for_sql(&mine, 5).await, 5);
}

async fn reserve_each(app: &TestApp, sale: u64, users: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    let mut ids = Vec::new();
    for user in users {
        ids.push(order_id(app.reserve(sale, user, &[(1, 1)]).await));
    }
    ids
}

#[tokio::test]
async fn the_sink_refuses_to_merge_another_order_into_an_existing_row() {
    let app = TestApp::spawn().await;
    app.create_sale(32, &["1:100:50"], &[]);
    let id = order_id(app.reserve(32, 7, &[(1, 1)]).await);
    let row = format!("SELECT COUNT(*) FROM orders WHERE sale_id = 32 AND order_id = {id} AND user_id = 7");
    assert_eq!(app.wait_for_sql(&row, 1).await, 1);
    let conflicts_before = conflicts_counter(&app).await;

    // Another order under the same id reaches the outbox, newer by version —
    // what an older release handed out after `--replace` or a failover.
    let (redis, keys) = redis(&app).await;
    let intruder = json!({
        "order_id": id.to_string(), "sale_id": "32", "user_id": "8", "status": "paid",
        "items": [{"sku": "1", "quantity": 1, "price": 100}], "total": 100, "discount": 0, "to_pay": 100,
        "coupon_id": null, "coupon_seq": null, "payment_key": "pay-intruder",
        "created_at": 1_000, "expires_at": 2_000, "updated_at": 1_500, "version": 5
    });
    let _: String =
        redis.next().xadd(keys.sale(32).outbox, false, None, "*", ("order", intruder.to_string())).await.unwrap();

    let refused =
        format!("SELECT COUNT(*) FROM order_conflicts WHERE sale_id = 32 AND order_id = {id} AND user_id = 8");
    assert_eq!(app.wait_for_sql(&refused, 1).await, 1, "the refused event is kept");
    let kept: Vec<(u64, String, u32)> =
        app.sql(&format!("SELECT user_id, status, version FROM orders WHERE sale_id = 32 AND order_id = {id}")).await;
    assert_eq!(kept, vec![(7, "reserved".to_string(), 1)], "the row still holds user 7's order");
    assert!(conflicts_counter(&app).await > conflicts_before, "/metrics counts the conflict");

    let report = app.cli(&["reconcile", "--sale", "32"]);
    assert_ne!(report.code, Some(0), "reconcile reports the conflict: {}", report.stdout);
    assert!(report.stdout.contains("order_conflicts"), "{}", report.stdout);
    let _ = redis.quit().await;
}

async fn conflicts_counter(app: &TestApp) -> u64 {
    let (_, _, text) = app.try_request_raw("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix("flashsale_sink_order_conflicts_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("flashsale_sink_order_conflicts_total in /metrics")
}

#[tokio::test]
async fn releasing_an_order_frees_only_the_coupon_mark_it_holds() {
    let app = TestApp::spawn().await;
    app.create_coupon(33, 10, &["--discount", "10"]);
    app.create_sale(33, &["1:100:50"], &[]);
    app.create_sale(34, &["1:100:50"], &[]);
    assert_eq!(app.issue(33, 5).await.status, StatusCode::CREATED);
    let with_coupon = json!({"user_id": 5, "items": [{"sku": 1, "quantity": 1}], "coupon_id": 33});
    let first = order_id(app.post("/v1/sales/33/orders", &with_coupon, &[]).await);

    // The campaign starts over; user 5 gets the coupon again and uses it in sale 34.
    app.cli(&["coupon", "create", "--id", "33", "--quantity", "10", "--discount", "10", "--replace"]).success();
    assert_eq!(app.issue(33, 5).await.status, StatusCode::CREATED);
    let second = order_id(app.post("/v1/sales/34/orders", &with_coupon, &[]).await);

    // Cancelling the first order must not free the mark the second one holds.
    assert_eq!(app.cancel(33, first).await.status, StatusCode::OK);
    let (redis, keys) = redis(&app).await;
    let mark: Option<String> = redis.next().hget(keys.coupon(33).used, 5).await.unwrap();
    assert_eq!(mark, Some(format!("34:{second}")));
    let reuse = app.post("/v1/sales/33/orders", &with_coupon, &[]).await;
    assert_eq!(reuse.body["error"], "coupon_unavailable", "the coupon is still in use: {}", reuse.body);
    let _ = redis.quit().await;
}

#[tokio::test]
async fn a_coupon_of_an_ended_campaign_is_refused_in_an_order() {
    let app = TestApp::spawn().await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let ends = (now + 2).to_string();
    app.create_coupon(35, 10, &["--discount", "10", "--ends-at", &ends]);
    app.create_sale(35, &["1:100:50"], &[]);
    assert_eq!(app.issue(35, 5).await.status, StatusCode::CREATED);
    let with_coupon = json!({"user_id": 5, "items": [{"sku": 1, "quantity": 1}], "coupon_id": 35});

    // Wait out the campaign's window (a time, not a result: nothing to poll).
    while SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() < now + 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = app.post("/v1/sales/35/orders", &with_coupon, &[]).await;
    assert_eq!((refused.status, refused.body["error"].as_str()), (StatusCode::CONFLICT, Some("coupon_expired")));
    let without = app.reserve(35, 5, &[(1, 1)]).await;
    assert_eq!(without.status, StatusCode::CREATED, "the sale itself is open: {}", without.body);
    assert_eq!(app.remaining(35).await.get(&1), Some(&49), "the refused order took nothing");
}

#[tokio::test]
async fn a_created_campaign_and_sale_are_at_once_in_the_relays_registry() {
    let app = TestApp::spawn().await;
    app.create_coupon(36, 10, &[]);
    app.create_sale(36, &["1:100:50"], &[]);
    let (redis, keys) = redis(&app).await;
    let coupons: Vec<u64> = redis.next().smembers(keys.coupons()).await.unwrap();
    let sales: Vec<u64> = redis.next().smembers(keys.sales()).await.unwrap();
    assert!(coupons.contains(&36) && sales.contains(&36), "coupons {coupons:?}, sales {sales:?}");
    let _ = redis.quit().await;
}
