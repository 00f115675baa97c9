//! `flashsale coupon load`: a campaign Redis lost comes back from MySQL.

use std::sync::Arc;

use fred::prelude::*;
use hyper::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_whose_keys_vanished_mid_sale_is_loaded_back_from_mysql_with_its_holders_and_uses() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_coupon(1, 100, &["--discount", "500"]);
    app.create_sale(2, &["1:1000:50"], &[]);
    app.issue_all(1, 1..=30).await;
    let order = app
        .post("/v1/sales/2/orders", &json!({"user_id": 5, "items": [{"sku": 1, "quantity": 1}], "coupon_id": 1}), &[])
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let order_id = order.body["order_id"].as_u64().unwrap();
    app.wait_for_rows(1, 30).await;
    app.wait_for_sql("SELECT used_order_id FROM coupon_issues WHERE coupon_id = 1 AND user_id = 5", order_id).await;

    let refused = app.cli(&["coupon", "load", "--id", "1"]);
    assert_ne!(refused.code, Some(0), "Redis still has it: refused");
    assert!(refused.stderr.contains("is in Redis"), "{}", refused.stderr);

    // Redis loses the campaign mid-sale.
    let keys = flashsale::keys::Keys::new(app.config.redis.key_prefix.clone()).coupon(1);
    let redis = Builder::from_config(Config::from_url(&app.config.redis.redis_url).unwrap()).build().unwrap();
    redis.init().await.unwrap();
    let _: () = redis.del(vec![keys.meta.clone(), keys.users.clone(), keys.used.clone()]).await.unwrap();
    assert_eq!(app.coupon(1).await.status, StatusCode::NOT_FOUND);

    let out = app.cli(&["coupon", "load", "--id", "1"]).success();
    assert!(out.stdout.contains("30 holder(s), 1 in use by orders, remaining 70 of 100"), "{}", out.stdout);

    assert_eq!(app.coupon(1).await.body["remaining"], 70);
    let again = app.issue(1, 3).await;
    assert_eq!((again.status, again.body["error"].as_str()), (StatusCode::CONFLICT, Some("already_issued")));
    let fresh = app.issue(1, 31).await;
    assert_eq!(fresh.status, StatusCode::CREATED);
    assert_eq!(fresh.body["remaining"], 69);
    let reuse = app
        .post("/v1/sales/2/orders", &json!({"user_id": 5, "items": [{"sku": 1, "quantity": 1}], "coupon_id": 1}), &[])
        .await;
    assert_eq!(reuse.body["error"], "coupon_unavailable", "the use came back too: {}", reuse.body);
    // Cancelling the order gives the coupon back, as before the loss.
    assert_eq!(app.cancel(2, order_id).await.status, StatusCode::OK);
    let after_cancel = app
        .post("/v1/sales/2/orders", &json!({"user_id": 5, "items": [{"sku": 1, "quantity": 1}], "coupon_id": 1}), &[])
        .await;
    assert_eq!(after_cancel.status, StatusCode::CREATED, "{}", after_cancel.body);

    app.wait_for_rows(1, 31).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = app.cli(&["reconcile"]);
        if out.code == Some(0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "reconcile never clean:\n{}\n{}", out.stdout, out.stderr);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    redis.quit().await.ok();
}
