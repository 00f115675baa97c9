//! Ops commands that rebuild and inspect a sale: `stock load` after Redis lost
//! it, `status --sale`, driven through the real CLI and HTTP API.

use std::collections::BTreeMap;

use fred::prelude::*;
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// Drops every Redis key of a sale and its entry in the sales set, plus the
/// coupon used-marks of `coupon_users` — what a Redis restart without AOF does.
async fn forget_sale(app: &TestApp, sale: u64, coupon_users: &[(u64, u64)]) {
    let redis = flashsale::redis::pool(&app.config.redis).await.unwrap();
    let keys = flashsale::keys::Keys::new(app.config.redis.key_prefix.clone());
    let k = keys.sale(sale);
    let all = vec![k.meta, k.prices, k.stock, k.initial, k.bought, k.orders, k.deadlines, k.idem, k.seq, k.outbox];
    let _: () = redis.next().del(all).await.unwrap();
    let _: () = redis.next().srem(keys.sales(), sale).await.unwrap();
    for &(coupon, user) in coupon_users {
        let _: () = redis.next().hdel(keys.coupon(coupon).used, user).await.unwrap();
    }
    let _ = redis.quit().await;
}

fn order_id(res: crate::helpers::Response) -> u64 {
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.body["order_id"].as_u64().unwrap()
}

#[tokio::test]
async fn stock_load_rebuilds_a_lost_sale_from_mysql() {
    let app = TestApp::spawn().await;
    app.create_coupon(61, 10, &["--discount", "100"]);
    app.create_sale(21, &["1:1000:10", "2:250:5"], &["--per-user", "4"]);
    assert_eq!(app.issue(61, 103).await.status, StatusCode::CREATED);

    let paid = order_id(app.reserve(21, 100, &[(1, 2), (2, 1)]).await);
    assert_eq!(app.confirm(21, paid, 2250).await.status, StatusCode::OK);
    let cancelled = order_id(app.reserve(21, 101, &[(1, 3)]).await);
    assert_eq!(app.cancel(21, cancelled).await.status, StatusCode::OK);
    let reserved = order_id(app.reserve(21, 102, &[(2, 2)]).await);
    let with_coupon = json!({"user_id": 103, "items": [{"sku": 1, "quantity": 1}], "coupon_id": 61});
    let couponed = order_id(app.post("/v1/sales/21/orders", &with_coupon, &[]).await);
    let ids = [paid, cancelled, reserved, couponed];

    // Each order in its last state (a paid order's row is 'reserved' until its second event lands).
    let settled = format!(
        "SELECT COUNT(*) FROM orders WHERE sale_id = 21 AND ((order_id = {paid} AND status = 'paid') \
         OR (order_id = {cancelled} AND status = 'cancelled') OR (order_id IN ({reserved}, {couponed}) \
         AND status = 'reserved'))"
    );
    assert_eq!(app.wait_for_sql(&settled, 4).await, 4, "MySQL holds every order in its last state");
    let sale_before = app.get("/v1/sales/21").await.body;
    assert_eq!(app.remaining(21).await, BTreeMap::from([(1, 7), (2, 2)]));
    let mut orders_before = Vec::new();
    for id in ids {
        orders_before.push(app.get(&format!("/v1/sales/21/orders/{id}")).await.body);
    }

    forget_sale(&app, 21, &[(61, 103)]).await;
    assert_eq!(app.get("/v1/sales/21").await.body["error"], "unknown_sale");
    let lost = app.cli(&["status", "--sale", "21", "--json"]).success();
    let lost: Value = serde_json::from_str(&lost.stdout).unwrap();
    assert_eq!(lost["sales"][0]["in_redis"], false);
    assert_eq!(lost["sales"][0]["mysql_orders"], json!({"reserved": 2, "paid": 1, "cancelled": 1, "expired": 0}));

    let out = app.cli(&["stock", "load", "--sale", "21"]).success();
    assert!(out.stdout.contains("4 order(s) (2 reserved, 1 paid, 1 cancelled, 0 expired)"), "{}", out.stdout);

    assert_eq!(app.get("/v1/sales/21").await.body, sale_before, "window, limit, prices, stock and remaining");
    for (id, before) in ids.iter().zip(&orders_before) {
        assert_eq!(&app.get(&format!("/v1/sales/21/orders/{id}")).await.body, before, "order {id}");
    }

    // The restored state behaves: the reserved order pays, the coupon and the
    // per-user holding are still taken, and order ids carry on.
    let confirmed = app.confirm(21, reserved, 500).await;
    assert_eq!((confirmed.status, confirmed.body["status"].as_str()), (StatusCode::OK, Some("paid")));
    let reuse = app.post("/v1/sales/21/orders", &with_coupon, &[]).await;
    assert_eq!(reuse.body["error"], "coupon_unavailable", "the restored order still holds the coupon");
    assert_eq!(app.reserve(21, 100, &[(1, 3)]).await.body["error"], "limit_exceeded", "user 100 holds 3 of 4");
    let fresh = order_id(app.reserve(21, 104, &[(1, 1)]).await);
    assert!(fresh > *ids.iter().max().unwrap(), "fresh id {fresh} after {ids:?}");
    assert_eq!(app.remaining(21).await, BTreeMap::from([(1, 6), (2, 2)]));

    // The relay reads the rebuilt outbox: the new events reach MySQL.
    let paid_now = "SELECT COUNT(*) FROM orders WHERE sale_id = 21 AND status = 'paid'";
    assert_eq!(app.wait_for_sql(paid_now, 2).await, 2);
    let fresh_row = format!("SELECT COUNT(*) FROM orders WHERE sale_id = 21 AND order_id = {fresh}");
    assert_eq!(app.wait_for_sql(&fresh_row, 1).await, 1);

    let again = app.cli(&["stock", "load", "--sale", "21"]);
    assert_ne!(again.code, Some(0));
    assert!(again.stderr.contains("is in Redis"), "{}", again.stderr);
    let unknown = app.cli(&["stock", "load", "--sale", "99"]);
    assert_ne!(unknown.code, Some(0));
    assert!(unknown.stderr.contains("sale 99 is not in MySQL"), "{}", unknown.stderr);
}

#[tokio::test]
async fn status_shows_a_sales_stock_orders_and_mysql_rows() {
    let app = TestApp::spawn().await;
    app.create_sale(22, &["1:500:6", "2:900:3"], &[]);
    let paid = order_id(app.reserve(22, 1, &[(1, 2)]).await);
    assert_eq!(app.confirm(22, paid, 1000).await.status, StatusCode::OK);
    let cancelled = order_id(app.reserve(22, 2, &[(2, 1)]).await);
    assert_eq!(app.cancel(22, cancelled).await.status, StatusCode::OK);
    order_id(app.reserve(22, 3, &[(1, 1), (2, 1)]).await);

    let settled = format!(
        "SELECT COUNT(*) FROM orders WHERE sale_id = 22 AND ((order_id = {paid} AND status = 'paid') \
         OR (order_id = {cancelled} AND status = 'cancelled') OR (user_id = 3 AND status = 'reserved'))"
    );
    assert_eq!(app.wait_for_sql(&settled, 3).await, 3);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let out = app.cli(&["status", "--sale", "22", "--json"]).success();
        let status: Value = serde_json::from_str(&out.stdout).unwrap();
        let lag: i64 = status["order_partitions"].as_array().unwrap().iter().map(|p| p["lag"].as_i64().unwrap()).sum();
        if (lag == 0 && status["sales"][0]["outbox_len"] == 0) || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    let sale = &status["sales"][0];
    assert_eq!((sale["sale_id"].as_u64(), sale["in_redis"].as_bool()), (Some(22), Some(true)));
    assert_eq!(
        sale["skus"],
        json!([
            {"sku": 1, "price": 500, "supplied": 6, "remaining": 3, "held": 3},
            {"sku": 2, "price": 900, "supplied": 3, "remaining": 2, "held": 1},
        ])
    );
    let counts = json!({"reserved": 1, "paid": 1, "cancelled": 1, "expired": 0});
    assert_eq!(sale["redis_orders"], counts);
    assert_eq!(sale["mysql_orders"], counts);
    assert_eq!(sale["outbox_len"], 0);
    assert_eq!(status["coupons"], json!([]), "--sale alone shows no campaigns");
    assert_eq!(status["order_topic"], app.config.kafka.order_topic.as_str());
    let ends: i64 =
        status["order_partitions"].as_array().unwrap().iter().map(|p| p["end_offset"].as_i64().unwrap()).sum();
    assert_eq!(ends, 5, "three reservations, a confirm and a cancel in Kafka");
    let coupon_ends: i64 =
        status["partitions"].as_array().unwrap().iter().map(|p| p["end_offset"].as_i64().unwrap()).sum();
    assert_eq!(coupon_ends, 0, "no coupon events");

    let everything: Value = serde_json::from_str(&app.cli(&["status", "--json"]).success().stdout).unwrap();
    assert_eq!(everything["sales"].as_array().unwrap().len(), 1);
    let text = app.cli(&["status", "--sale", "22"]).success().stdout;
    assert!(text.contains("sale 22") && text.contains("1 reserved, 1 paid, 1 cancelled, 0 expired"), "{text}");
    let unknown = app.cli(&["status", "--sale", "98"]);
    assert!(unknown.stderr.contains("no sale 98"), "{}", unknown.stderr);
}
