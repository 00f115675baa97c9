//! Group commit on the hot path: concurrent requests for one campaign or sale
//! share a script call, and each is still served alone and in turn — the same
//! user twice, the same Idempotency-Key twice, the same coupon twice, inside
//! one call.

use std::{collections::BTreeSet, sync::Arc};

use hyper::StatusCode;
use serde_json::json;

use crate::{
    helpers::TestApp,
    metrics::{sample, scrape},
};

/// (sum, count) of one script's batch-size histogram.
async fn batches(app: &TestApp, script: &str) -> (f64, f64) {
    let scrape = scrape(app).await;
    let series = |part: &str| sample(&scrape, &format!("flashsale_script_batch_size_{part}{{script=\"{script}\"}}"));
    (series("sum"), series("count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_issues_share_script_calls_and_each_user_is_served_once_in_turn() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_coupon(1, 1000, &[]);
    let (sum_before, count_before) = batches(&app, "issue_coupon").await;

    // 400 users, each sending two requests at once: 800 in flight together.
    let mut tasks = tokio::task::JoinSet::new();
    for user in 1..=400u64 {
        for _ in 0..2 {
            let app = app.clone();
            tasks.spawn(async move { (user, app.issue(1, user).await) });
        }
    }
    let (mut winners, mut remaining_seen, mut duplicates) = (BTreeSet::new(), BTreeSet::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (user, res) = done.unwrap();
        match res.status {
            StatusCode::CREATED => {
                assert!(winners.insert(user), "user {user} got two coupons");
                let remaining = res.body["remaining"].as_u64().unwrap();
                assert!(remaining_seen.insert(remaining), "two issues both left {remaining}");
            }
            StatusCode::CONFLICT => {
                assert_eq!(res.body["error"], "already_issued");
                duplicates += 1;
            }
            other => panic!("unexpected {other}: {}", res.body),
        }
    }
    assert_eq!((winners.len(), duplicates), (400, 400));
    // Every issue saw the stock its predecessors left: 999, 998, ..., 600.
    assert_eq!(remaining_seen, (600..1000).collect::<BTreeSet<u64>>());
    assert_eq!(app.coupon(1).await.body["remaining"], 600);

    let (sum, count) = batches(&app, "issue_coupon").await;
    let (requests, calls) = (sum - sum_before, count - count_before);
    eprintln!("issue_coupon: {requests} requests in {calls} script calls");
    assert!(requests >= 800.0 && calls < requests, "some calls carried several requests: {requests} in {calls}");
    assert_eq!(app.wait_for_rows(1, 400).await.len(), 400, "MySQL holds each issue once");
    // A call's issues share one outbox entry; each still has its own event id.
    let ids: Vec<String> = app.sql("SELECT event_id FROM coupon_issues WHERE coupon_id = 1").await;
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 400, "one event id per issue");
    let shared = ids.iter().filter(|id| id.matches('-').count() == 3).count();
    assert!(shared > 0, "no entry carried several issues: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_share_script_calls_and_keep_limits_keys_and_coupons() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_coupon(7, 100, &["--discount", "50"]);
    app.create_sale(30, &["1:100:10000", "2:300:10000"], &["--per-user", "2"]);
    for user in 1..=20 {
        assert_eq!(app.issue(7, user).await.status, StatusCode::CREATED);
    }
    let (sum_before, count_before) = batches(&app, "reserve_order").await;

    let mut tasks = tokio::task::JoinSet::new();
    // Users 1-20: three orders at once with the same coupon: one may use it.
    for user in 1..=20u64 {
        for _ in 0..3 {
            let app = app.clone();
            let body = json!({"user_id": user, "items": [{"sku": 1, "quantity": 1}], "coupon_id": 7});
            tasks.spawn(async move { ("coupon", user, app.post("/v1/sales/30/orders", &body, &[]).await) });
        }
    }
    // Users 101-200: three one-unit orders at once against a limit of two.
    for user in 101..=200u64 {
        for _ in 0..3 {
            let app = app.clone();
            tasks.spawn(async move { ("limit", user, app.reserve(30, user, &[(2, 1)]).await) });
        }
    }
    // Users 301-400: the same Idempotency-Key three times at once: one order.
    for user in 301..=400u64 {
        for _ in 0..3 {
            let app = app.clone();
            let body = json!({"user_id": user, "items": [{"sku": 1, "quantity": 1}, {"sku": 2, "quantity": 1}]});
            tasks.spawn(async move {
                let key = format!("key-{user}");
                ("idem", user, app.post("/v1/sales/30/orders", &body, &[("idempotency-key", &key)]).await)
            });
        }
    }
    let mut orders = BTreeSet::new();
    let mut per_user = std::collections::BTreeMap::<(&str, u64), Vec<(StatusCode, serde_json::Value)>>::new();
    while let Some(done) = tasks.join_next().await {
        let (kind, user, res) = done.unwrap();
        per_user.entry((kind, user)).or_default().push((res.status, res.body));
    }
    let (mut sku1, mut sku2) = (0, 0);
    for ((kind, user), answers) in &per_user {
        let created: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).collect();
        match *kind {
            "coupon" => {
                assert_eq!(created.len(), 1, "user {user}: one order with the coupon: {answers:?}");
                assert_eq!(created[0].1["to_pay"], 50);
                assert!(answers.iter().all(|(s, b)| *s == StatusCode::CREATED || b["error"] == "coupon_unavailable"));
                sku1 += 1;
            }
            "limit" => {
                assert_eq!(created.len(), 2, "user {user}: two of three within the limit: {answers:?}");
                let refused = answers.iter().find(|(s, _)| *s != StatusCode::CREATED).unwrap();
                assert_eq!(refused.1["error"], "limit_exceeded");
                sku2 += 2;
            }
            _ => {
                assert_eq!(created.len(), 3, "user {user}: the key answers all three: {answers:?}");
                let ids: BTreeSet<_> = created.iter().map(|(_, b)| b["order_id"].as_u64().unwrap()).collect();
                assert_eq!(ids.len(), 1, "user {user}: one order behind one key: {ids:?}");
                sku1 += 1;
                sku2 += 1;
            }
        }
        for (_, body) in &created {
            orders.insert(body["order_id"].as_u64().unwrap());
        }
    }
    let remaining = app.remaining(30).await;
    assert_eq!((remaining[&1], remaining[&2]), (10000 - sku1, 10000 - sku2), "stock moved once per order");
    // 20 coupon orders + 200 within limits + 100 keyed orders, each its own id.
    assert_eq!(orders.len(), 320);

    let (sum, count) = batches(&app, "reserve_order").await;
    let (requests, calls) = (sum - sum_before, count - count_before);
    eprintln!("reserve_order: {requests} requests in {calls} script calls");
    assert!(requests >= 660.0 && calls < requests, "some calls carried several requests: {requests} in {calls}");
    let rows = app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 30", 320).await;
    assert_eq!(rows, 320, "MySQL holds each order once");
    // A call's new orders share one outbox entry; each keeps its own event id.
    let ids: Vec<String> = app.sql("SELECT event_id FROM orders WHERE sale_id = 30").await;
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 320, "one event id per order");
    let shared = ids.iter().filter(|id| id.matches('-').count() == 3).count();
    assert!(shared > 0, "no entry carried several orders: {ids:?}");
}
