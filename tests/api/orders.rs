//! Flash-sale orders through the real HTTP API: reservation races, confirm,
//! cancel, expiry, coupons, idempotency, and MySQL agreeing after the drain.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use hyper::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_users_race_for_three_skus_and_nothing_is_oversold() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_sale(7, &["1:9900:300", "2:19900:120", "3:500:80"], &["--per-user", "3"]);

    let mut tasks = tokio::task::JoinSet::new();
    for user in 1..=5000u64 {
        let app = app.clone();
        // Multi-line orders of 1-3 units in all; every 10th user tries a second
        // order at once, which the per-user limit of 3 must cap.
        let items: Vec<(u64, u64)> = match user % 4 {
            0 => vec![(1, 1), (2, 1)],
            1 => vec![(2, 1), (3, 2)],
            2 => vec![(1, 2), (3, 1)],
            _ => vec![(1, 1), (2, 1), (3, 1)],
        };
        let second = user % 10 == 0;
        tasks.spawn(async move {
            let mut answers = vec![(user, items.clone(), app.reserve(7, user, &items).await)];
            if second {
                answers.push((user, vec![(3, 1)], app.reserve(7, user, &[(3, 1)]).await));
            }
            answers
        });
    }
    let mut reserved: BTreeMap<u64, u64> = BTreeMap::new();
    let mut per_user: BTreeMap<u64, u64> = BTreeMap::new();
    let (mut created, mut sold_out, mut limited) = (0, 0, 0);
    while let Some(done) = tasks.join_next().await {
        for (user, items, res) in done.unwrap() {
            match res.status {
                StatusCode::CREATED => {
                    created += 1;
                    assert_eq!(res.body["status"], "reserved");
                    for (sku, q) in &items {
                        *reserved.entry(*sku).or_default() += q;
                        *per_user.entry(user).or_default() += q;
                    }
                }
                StatusCode::GONE => {
                    assert_eq!(res.body["error"], "sold_out");
                    assert!(!res.body["skus"].as_array().unwrap().is_empty(), "names the short SKUs");
                    sold_out += 1;
                }
                StatusCode::CONFLICT => {
                    assert_eq!(res.body["error"], "limit_exceeded");
                    limited += 1;
                }
                other => panic!("unexpected {other}: {}", res.body),
            }
        }
    }
    assert!(created > 0 && sold_out > 0, "created {created}, sold out {sold_out}");
    assert!(per_user.values().all(|q| *q <= 3), "per-user limit held");
    let initial = BTreeMap::from([(1, 300), (2, 120), (3, 80)]);
    let remaining = app.remaining(7).await;
    for (sku, start) in &initial {
        let held = reserved.get(sku).copied().unwrap_or(0);
        assert_eq!(held + remaining[sku], *start, "SKU {sku}: reserved + remaining == initial");
    }
    eprintln!("orders: {created} reserved, {sold_out} sold out, {limited} over the limit");

    // MySQL agrees once the pipe drains: one row per reserved order, same units per SKU.
    let rows = app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 7", created).await;
    assert_eq!(rows, created);
    let units: Vec<(u64, u64)> =
        app.sql("SELECT sku, CAST(SUM(quantity) AS UNSIGNED) FROM order_items WHERE sale_id = 7 GROUP BY sku").await;
    assert_eq!(units.into_iter().collect::<BTreeMap<_, _>>(), reserved);
    let reconcile = app.cli(&["reconcile", "--sale", "7"]).success();
    assert!(reconcile.stdout.contains("agree"), "{}", reconcile.stdout);
}

#[tokio::test]
async fn confirm_pays_once_and_cancel_gives_stock_back_exactly_once() {
    let app = TestApp::spawn().await;
    app.create_sale(1, &["10:1000:5", "11:250:5"], &[]);

    let a = app.reserve(1, 100, &[(10, 2), (11, 1)]).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!((a.body["total"].as_u64(), a.body["to_pay"].as_u64()), (Some(2250), Some(2250)));
    let a_id = a.body["order_id"].as_u64().unwrap();
    let b_id = app.reserve(1, 101, &[(10, 1)]).await.body["order_id"].as_u64().unwrap();
    assert_eq!(app.remaining(1).await, BTreeMap::from([(10, 2), (11, 4)]));

    let wrong = app.confirm(1, a_id, 2000).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.body["error"], "amount_mismatch");
    assert_eq!(wrong.body["to_pay"], 2250);
    // Above 2^53 a Lua number cannot tell amounts apart: refused before Redis.
    for huge in [1u64 << 53, (1 << 53) + 2250, u64::MAX] {
        let refused = app.confirm(1, a_id, huge).await;
        assert_eq!(
            (refused.status, refused.body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_amount")),
            "{huge}"
        );
    }
    for _ in 0..2 {
        let paid = app.confirm(1, a_id, 2250).await;
        assert_eq!(paid.status, StatusCode::OK, "confirm is idempotent: {}", paid.body);
        assert_eq!(paid.body["status"], "paid");
    }
    let cancel_paid = app.cancel(1, a_id).await;
    assert_eq!((cancel_paid.status, cancel_paid.body["error"].as_str()), (StatusCode::CONFLICT, Some("order_paid")));

    for _ in 0..2 {
        let cancelled = app.cancel(1, b_id).await;
        assert_eq!(cancelled.status, StatusCode::OK);
        assert_eq!(cancelled.body["status"], "cancelled");
    }
    assert_eq!(app.remaining(1).await, BTreeMap::from([(10, 3), (11, 4)]), "b's unit came back once");
    let confirm_cancelled = app.confirm(1, b_id, 1000).await;
    assert_eq!(confirm_cancelled.status, StatusCode::CONFLICT);
    assert_eq!(confirm_cancelled.body["error"], "order_cancelled");

    let order = app.get(&format!("/v1/sales/1/orders/{a_id}")).await;
    assert_eq!(order.body["status"], "paid");
    assert_eq!(order.body["items"].as_array().unwrap().len(), 2);

    let paid =
        app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 1 AND status = 'paid' AND version = 2", 1).await;
    assert_eq!(paid, 1);
    let cancelled = app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 1 AND status = 'cancelled'", 1).await;
    assert_eq!(cancelled, 1);
}

#[tokio::test]
async fn unpaid_reservations_expire_and_give_their_stock_back() {
    let app = TestApp::spawn().await;
    // The hold outlasts the checks right after the reserve, on a loaded box too.
    app.create_sale(2, &["1:100:10"], &["--hold", "4s", "--per-user", "2"]);
    let order = app.reserve(2, 5, &[(1, 2)]).await;
    let id = order.body["order_id"].as_u64().unwrap();
    assert_eq!(app.remaining(2).await[&1], 8);
    assert_eq!(app.reserve(2, 5, &[(1, 1)]).await.body["error"], "limit_exceeded");

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.get(&format!("/v1/sales/2/orders/{id}")).await.body["status"] != "expired" {
        assert!(std::time::Instant::now() < deadline, "not expired within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.remaining(2).await[&1], 10, "stock back");
    let late = app.confirm(2, id, 200).await;
    assert_eq!((late.status, late.body["error"].as_str()), (StatusCode::CONFLICT, Some("order_expired")));
    assert_eq!(app.reserve(2, 5, &[(1, 2)]).await.status, StatusCode::CREATED, "the user's limit came back");
    let expired = app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 2 AND status = 'expired'", 1).await;
    assert_eq!(expired, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirm_racing_the_expiry_has_exactly_one_winner() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_sale(3, &["1:100:200"], &["--hold", "1s"]);
    let mut ids = Vec::new();
    for user in 0..100 {
        ids.push(app.reserve(3, user, &[(1, 1)]).await.body["order_id"].as_u64().unwrap());
    }
    // Confirm each around its deadline: some win, some lose, none both.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().copied().enumerate() {
        let app = app.clone();
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(800 + (i as u64 % 20) * 20)).await;
            (id, app.confirm(3, id, 100).await)
        });
    }
    let mut paid = 0;
    while let Some(done) = tasks.join_next().await {
        let (id, res) = done.unwrap();
        let now = app.get(&format!("/v1/sales/3/orders/{id}")).await.body["status"].clone();
        match res.status {
            StatusCode::OK => {
                assert_eq!(now, "paid");
                paid += 1;
            }
            StatusCode::CONFLICT => {
                assert_eq!(res.body["error"], "order_expired");
                assert_eq!(now, "expired");
            }
            other => panic!("unexpected {other}: {}", res.body),
        }
    }
    // Whatever is not paid expires; then stock is exactly initial - paid.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.remaining(3).await[&1] != 200 - paid {
        assert!(std::time::Instant::now() < deadline, "stock did not settle at {}", 200 - paid);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{paid} of 100 confirmations won against the expiry");
}

#[tokio::test]
async fn a_coupon_used_in_an_order_cannot_be_used_twice_and_comes_back_on_cancel() {
    let app = TestApp::spawn().await;
    app.create_coupon(42, 10, &["--discount", "500"]);
    app.create_sale(4, &["1:2000:10"], &[]);
    assert_eq!(app.issue(42, 9).await.status, StatusCode::CREATED);
    let with_coupon = |user: u64| json!({"user_id": user, "items": [{"sku": 1, "quantity": 1}], "coupon_id": 42});

    let first = app.post("/v1/sales/4/orders", &with_coupon(9), &[]).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!((first.body["discount"].as_u64(), first.body["to_pay"].as_u64()), (Some(500), Some(1500)));
    let id = first.body["order_id"].as_u64().unwrap();

    let again = app.post("/v1/sales/4/orders", &with_coupon(9), &[]).await;
    assert_eq!((again.status, again.body["error"].as_str()), (StatusCode::CONFLICT, Some("coupon_unavailable")));
    let stranger = app.post("/v1/sales/4/orders", &with_coupon(10), &[]).await;
    assert_eq!(stranger.body["error"], "coupon_unavailable", "never issued to user 10");

    let used =
        app.wait_for_sql("SELECT used_order_id FROM coupon_issues WHERE coupon_id = 42 AND user_id = 9", id).await;
    assert_eq!(used, id, "MySQL records the order that used the coupon");

    assert_eq!(app.cancel(4, id).await.status, StatusCode::OK);
    let second = app.post("/v1/sales/4/orders", &with_coupon(9), &[]).await;
    assert_eq!(second.status, StatusCode::CREATED, "the coupon came back: {}", second.body);
    let second_id = second.body["order_id"].as_u64().unwrap();
    let used = app
        .wait_for_sql("SELECT used_order_id FROM coupon_issues WHERE coupon_id = 42 AND user_id = 9", second_id)
        .await;
    assert_eq!(used, second_id);
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_first_answer_and_rejects_a_different_body() {
    let app = TestApp::spawn().await;
    app.create_sale(5, &["1:100:10", "2:100:10"], &[]);
    let body = json!({"user_id": 3, "items": [{"sku": 1, "quantity": 2}]});
    let key = [("idempotency-key", "order-abc")];

    let first = app.post("/v1/sales/5/orders", &body, &key).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = app.post("/v1/sales/5/orders", &body, &key).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, first.body, "the first answer, byte for byte");
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(app.remaining(5).await[&1], 8, "reserved once");

    let other = json!({"user_id": 3, "items": [{"sku": 2, "quantity": 1}]});
    let mismatch = app.post("/v1/sales/5/orders", &other, &key).await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(mismatch.body["error"], "idempotency_key_reused");
    assert_eq!(app.remaining(5).await[&2], 10);

    let bad_key = app.post("/v1/sales/5/orders", &body, &[("idempotency-key", "")]).await;
    assert_eq!(bad_key.body["error"], "invalid_idempotency_key");

    // A replay after the order changed answers it as it is now (still 201: a replay).
    let id = first.body["order_id"].as_u64().unwrap();
    assert_eq!(app.cancel(5, id).await.status, StatusCode::OK);
    let later = app.post("/v1/sales/5/orders", &body, &key).await;
    assert_eq!(
        (later.status, later.body["status"].as_str()),
        (StatusCode::CREATED, Some("cancelled")),
        "{}",
        later.body
    );
    assert_eq!(later.body["order_id"], id);
    assert_eq!(app.remaining(5).await[&1], 10, "nothing reserved again");
}

#[tokio::test]
async fn bad_orders_get_clear_errors_and_take_nothing() {
    let app = TestApp::spawn().await;
    app.create_sale(6, &["1:100:10", "2:100:10"], &[]);
    let future =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600).to_string();
    app.create_sale(8, &["1:100:10"], &["--starts-at", &future]);
    app.create_sale(9, &["1:100:10"], &["--starts-at", "2020-01-01T00:00:00Z", "--ends-at", "2020-01-02T00:00:00Z"]);

    let lines = |items: serde_json::Value| json!({"user_id": 1, "items": items});
    let too_many: Vec<_> = (0..21).map(|sku| json!({"sku": sku, "quantity": 1})).collect();
    let cases = [
        (6, lines(json!([{"sku": 1, "quantity": 0}])), StatusCode::BAD_REQUEST, "invalid_quantity"),
        (6, lines(json!([{"sku": 1, "quantity": -3}])), StatusCode::BAD_REQUEST, "invalid_quantity"),
        (6, lines(json!([{"sku": 1, "quantity": 1_000_000}])), StatusCode::BAD_REQUEST, "invalid_quantity"),
        (
            6,
            lines(json!([{"sku": 1, "quantity": 1}, {"sku": 1, "quantity": 2}])),
            StatusCode::BAD_REQUEST,
            "duplicate_sku",
        ),
        (6, lines(json!(too_many)), StatusCode::BAD_REQUEST, "too_many_items"),
        (6, lines(json!([])), StatusCode::BAD_REQUEST, "invalid_field"),
        (6, json!({"items": [{"sku": 1, "quantity": 1}]}), StatusCode::BAD_REQUEST, "missing_field"),
        (6, lines(json!([{"sku": 99, "quantity": 1}])), StatusCode::NOT_FOUND, "unknown_sku"),
        (6, lines(json!([{"sku": 1, "quantity": 11}])), StatusCode::GONE, "sold_out"),
        (77, lines(json!([{"sku": 1, "quantity": 1}])), StatusCode::NOT_FOUND, "unknown_sale"),
        (8, lines(json!([{"sku": 1, "quantity": 1}])), StatusCode::FORBIDDEN, "not_started"),
        (9, lines(json!([{"sku": 1, "quantity": 1}])), StatusCode::FORBIDDEN, "ended"),
    ];
    for (sale, body, status, code) in cases {
        let res = app.post(&format!("/v1/sales/{sale}/orders"), &body, &[]).await;
        assert_eq!((res.status, res.body["error"].as_str()), (status, Some(code)), "{body}");
    }
    assert_eq!(app.remaining(6).await, BTreeMap::from([(1, 10), (2, 10)]));
    assert_eq!(app.get("/v1/sales/6/orders/1").await.body["error"], "unknown_order");
    assert_eq!(app.get("/v1/sales/x").await.body["error"], "invalid_sale_id");
}

#[tokio::test]
async fn rankings_count_paid_orders_per_product_over_the_window() {
    let app = TestApp::spawn().await;
    app.create_sale(11, &["501:100:50", "502:100:50", "503:100:50"], &[]);
    let pay = |items: Vec<(u64, u64)>, user: u64| {
        let app = &app;
        async move {
            let order = app.reserve(11, user, &items).await.body;
            app.confirm(11, order["order_id"].as_u64().unwrap(), order["to_pay"].as_u64().unwrap()).await
        }
    };
    for user in 0..3 {
        assert_eq!(pay(vec![(502, 5)], user).await.status, StatusCode::OK);
    }
    assert_eq!(pay(vec![(501, 1), (502, 1)], 10).await.status, StatusCode::OK);
    app.reserve(11, 11, &[(503, 9)]).await; // reserved, never paid: not ranked

    let ranking = app.get("/v1/rankings/products?window=3d&limit=5").await;
    assert_eq!(ranking.status, StatusCode::OK);
    let products = ranking.body["products"].as_array().unwrap();
    let mine: Vec<(u64, u64)> = products
        .iter()
        .map(|p| (p["sku"].as_u64().unwrap(), p["paid_orders"].as_u64().unwrap()))
        .filter(|(sku, _)| (501..=503).contains(sku))
        .collect();
    assert_eq!(mine, vec![(502, 4), (501, 1)]);
    assert_eq!(app.get("/v1/rankings/products?window=3w").await.body["error"], "invalid_query");
}

#[tokio::test]
async fn a_user_makes_at_most_the_capped_number_of_orders_in_a_sale_cancelled_ones_included() {
    let app = TestApp::spawn_with(|c| c.http.max_orders_per_user = 3).await;
    app.create_sale(1, &["1:100:100"], &["--per-user", "0"]);
    app.create_sale(2, &["1:100:100"], &["--per-user", "0"]);
    let body = json!({"user_id": 7, "items": [{"sku": 1, "quantity": 1}]});
    let first = app.post("/v1/sales/1/orders", &body, &[("idempotency-key", "first")]).await;
    assert_eq!(first.status, StatusCode::CREATED);
    for _ in 0..2 {
        let order = app.reserve(1, 7, &[(1, 1)]).await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
        assert_eq!(app.cancel(1, order.body["order_id"].as_u64().unwrap()).await.status, StatusCode::OK);
    }
    let capped = app.reserve(1, 7, &[(1, 1)]).await;
    assert_eq!((capped.status, capped.body["error"].as_str()), (StatusCode::CONFLICT, Some("too_many_orders")));
    assert_eq!(app.remaining(1).await[&1], 99, "the refused order took nothing");
    // The replay of an order made before the cap still answers; others are not capped.
    let replay = app.post("/v1/sales/1/orders", &body, &[("idempotency-key", "first")]).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(app.reserve(1, 8, &[(1, 1)]).await.status, StatusCode::CREATED, "another user");
    assert_eq!(app.reserve(2, 7, &[(1, 1)]).await.status, StatusCode::CREATED, "another sale");
}
