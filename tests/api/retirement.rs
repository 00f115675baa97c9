//! Retirement: campaigns and sales that ended leave Redis once MySQL holds
//! every event of theirs, and the API still answers for them, from MySQL.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use fred::{
    prelude::*,
    types::{ClusterHash, CustomCommand},
};
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

const COUPONS: u64 = 200;
const SALES: u64 = 50;
/// From the test's start to the end of every campaign and sale: room to
/// create them all and send the traffic before they end.
const WINDOW: Duration = Duration::from_secs(25);

/// Every key under the test's prefix (SCAN, not KEYS).
pub(crate) async fn keys_under(client: &Client, prefix: &str) -> Vec<String> {
    let (mut cursor, mut keys) = ("0".to_string(), Vec::new());
    loop {
        let command = CustomCommand::new_static("SCAN", ClusterHash::Random, false);
        let args = vec![cursor.clone(), "MATCH".into(), format!("{prefix}*"), "COUNT".into(), "1000".into()];
        let (next, page): (String, Vec<String>) = client.custom(command, args).await.unwrap();
        keys.extend(page);
        if next == "0" {
            return keys;
        }
        cursor = next;
    }
}

/// Keys of a campaign or sale (every one of theirs carries a `{coupon:` or `{sale:` hash tag).
fn owned(keys: &[String]) -> Vec<&String> {
    keys.iter().filter(|k| k.contains("{coupon:") || k.contains("{sale:")).collect()
}

fn order_id(answer: &Value) -> u64 {
    answer["order_id"].as_u64().unwrap_or_else(|| panic!("an order, got {answer}"))
}

#[tokio::test]
async fn ended_campaigns_and_sales_leave_redis_once_mysql_has_them_and_their_gets_answer_from_mysql() {
    let started = Instant::now();
    let app = TestApp::spawn_with(|c| c.retention.retain_after_end = Duration::from_secs(2)).await;
    let app = Arc::new(app);
    let ends_at = (std::time::SystemTime::now() + WINDOW).duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let ends = ends_at.to_string();

    // 200 campaigns and 50 sales, all ending at `ends_at` (the CLI, four at a time).
    let jobs: Vec<Vec<String>> = (1..=COUPONS)
        .map(|id| format!("coupon create --id {id} --quantity 10 --ends-at {ends}"))
        .chain(
            (1..=SALES)
                .map(|id| format!("sale create --id {id} --sku 1:100:50 --sku 2:250:50 --hold 5s --ends-at {ends}")),
        )
        .map(|line| line.split(' ').map(String::from).collect())
        .collect();
    std::thread::scope(|scope| {
        for chunk in jobs.chunks(jobs.len().div_ceil(4)) {
            let app = &app;
            scope.spawn(move || {
                for args in chunk {
                    app.cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).success();
                }
            });
        }
    });

    // Traffic: three users take a coupon of every campaign; in every sale user 1
    // pays (with a coupon), user 2 cancels, user 3 holds (a coupon too) until the
    // reservation expires.
    let mut tasks = tokio::task::JoinSet::new();
    for coupon in 1..=COUPONS {
        for user in 1..=3 {
            let app = app.clone();
            tasks.spawn(async move { assert_eq!(app.issue(coupon, user).await.status, StatusCode::CREATED) });
        }
    }
    tasks.join_all().await;
    let mut tasks = tokio::task::JoinSet::new();
    for sale in 1..=SALES {
        let app = app.clone();
        tasks.spawn(async move {
            let path = format!("/v1/sales/{sale}/orders");
            let paid = app
                .post(
                    &path,
                    &json!({"user_id": 1, "items": [{"sku": 1, "quantity": 2}], "coupon_id": sale + SALES}),
                    &[],
                )
                .await;
            assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
            let paid = order_id(&paid.body);
            assert_eq!(
                app.confirm_with_key(sale, paid, 200, &format!("pay-{sale}-{paid}")).await.status,
                StatusCode::OK
            );
            let cancelled = order_id(&app.reserve(sale, 2, &[(2, 1)]).await.body);
            assert_eq!(app.cancel(sale, cancelled).await.status, StatusCode::OK);
            let held = app
                .post(&path, &json!({"user_id": 3, "items": [{"sku": 2, "quantity": 3}], "coupon_id": sale}), &[])
                .await;
            assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
            (sale, paid, cancelled, order_id(&held.body))
        });
    }
    let orders = tasks.join_all().await;
    assert!(
        Instant::now() < started + WINDOW - Duration::from_secs(1),
        "setup took {:?}, past the window: the box is too slow for this test",
        started.elapsed()
    );

    // After the end, the drain and FLASHSALE_RETAIN_AFTER_END: no key of any of them.
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let prefix = app.config.redis.key_prefix.clone();
    let deadline = started + WINDOW + Duration::from_secs(30);
    loop {
        let keys = keys_under(&redis, &prefix).await;
        if owned(&keys).is_empty() {
            // Rankings, the wallet shards' outboxes (streams the relay keeps
            // for every deployment), the relay's heartbeat and the expiry
            // task's turn belong to no campaign or sale.
            let rest: Vec<&String> = keys
                .iter()
                .filter(|k| {
                    !k.contains("{rank}:products:")
                        && !k.contains("{wallets:")
                        && !k.contains("relay:alive:")
                        && !k.ends_with("expiry:turn")
                })
                .collect();
            assert!(rest.is_empty(), "only rankings, wallet outboxes, heartbeat and turn stay: {rest:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} keys of campaigns or sales left, e.g. {:?}",
            owned(&keys).len(),
            &owned(&keys)[..3.min(owned(&keys).len())]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // MySQL holds every row, each campaign and sale marked retired.
    let n = |q: &str| {
        let app = app.clone();
        let q = q.to_string();
        async move { app.sql::<u64>(&q).await[0] }
    };
    assert_eq!(n("SELECT COUNT(*) FROM coupon_issues WHERE event_id <> ''").await, COUPONS * 3);
    assert_eq!(n("SELECT COUNT(*) FROM coupon_campaigns WHERE retired_at IS NOT NULL").await, COUPONS);
    assert_eq!(n("SELECT COUNT(*) FROM sales WHERE retired_at IS NOT NULL").await, SALES);
    for status in ["paid", "cancelled", "expired"] {
        let q = format!("SELECT COUNT(*) FROM orders WHERE status = '{status}'");
        assert_eq!(n(&q).await, SALES, "{status} orders");
    }
    assert_eq!(
        n("SELECT COUNT(*) FROM coupon_issues WHERE used_order_id IS NOT NULL").await,
        SALES,
        "paid orders hold theirs"
    );

    // Reconcile is clean, for all and for a retired one named.
    let all = app.cli(&["reconcile"]).success();
    assert!(all.stdout.contains("agree"), "{}", all.stdout);
    let one = app.cli(&["reconcile", "--sale", "7"]).success();
    assert!(one.stdout.contains("retired; MySQL only: 3 orders"), "{}", one.stdout);
    let coupon = app.cli(&["reconcile", "--coupon", "7"]).success();
    assert!(coupon.stdout.contains("retired; MySQL only: 3 rows"), "{}", coupon.stdout);
    let status = app.cli(&["status", "--sale", "7"]).success();
    assert!(status.stdout.contains("sale 7: retired"), "{}", status.stdout);

    // GETs answer from MySQL, in the shape they had.
    let campaign = app.coupon(7).await;
    assert_eq!(campaign.status, StatusCode::OK, "{}", campaign.body);
    assert_eq!((campaign.body["issued"].as_u64(), campaign.body["remaining"].as_u64()), (Some(3), Some(7)));
    assert_eq!(campaign.body["retired"], true);
    assert!(campaign.body["ends_at"].is_string());
    let sale = app.get("/v1/sales/7").await;
    assert_eq!(sale.status, StatusCode::OK, "{}", sale.body);
    assert_eq!(sale.body["retired"], true);
    assert_eq!(sale.body["hold_seconds"], 5);
    assert_eq!(app.remaining(7).await, [(1, 48), (2, 50)].into_iter().collect(), "only the paid units stay taken");
    for (sale, paid, cancelled, expired) in orders.iter().copied().filter(|o| o.0 % 10 == 0) {
        for (order, status) in [(paid, "paid"), (cancelled, "cancelled"), (expired, "expired")] {
            let got = app.get(&format!("/v1/sales/{sale}/orders/{order}")).await;
            assert_eq!(got.status, StatusCode::OK, "{}", got.body);
            assert_eq!((got.body["status"].as_str(), got.body["retired"].as_bool()), (Some(status), Some(true)));
        }
    }

    // Late requests get the answers they got before retirement, and bring no key back.
    let (sale, paid, cancelled, _) = orders[6];
    let ended = app.issue(7, 99).await;
    assert_eq!((ended.status, ended.body["error"].as_str()), (StatusCode::FORBIDDEN, Some("ended")));
    let ended = app.reserve(sale, 99, &[(1, 1)]).await;
    assert_eq!((ended.status, ended.body["error"].as_str()), (StatusCode::FORBIDDEN, Some("ended")));
    let closed = app.cancel(sale, paid).await;
    assert_eq!((closed.status, closed.body["error"].as_str()), (StatusCode::CONFLICT, Some("order_paid")));
    let closed = app.confirm(sale, cancelled, 250).await;
    assert_eq!((closed.status, closed.body["error"].as_str()), (StatusCode::CONFLICT, Some("order_cancelled")));
    let replay = app.confirm_with_key(sale, paid, 200, &format!("pay-{sale}-{paid}")).await;
    assert_eq!((replay.status, replay.body["retired"].as_bool()), (StatusCode::OK, Some(true)));
    let other = app.confirm_with_key(sale, paid, 200, "another-payment").await;
    assert_eq!((other.status, other.body["error"].as_str()), (StatusCode::CONFLICT, Some("already_paid")));
    assert_eq!(app.get("/v1/sales/7/orders/1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.coupon(COUPONS + 1).await.status, StatusCode::NOT_FOUND);
    assert!(owned(&keys_under(&redis, &prefix).await).is_empty(), "late requests made no key");
    let _ = redis.quit().await;
}

/// The live view's JSON for `query`, once `ready` holds (the sink writes its rows a moment later).
async fn stats_once(app: &TestApp, query: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = app.get(&format!("/v1/dashboard/stats?{query}")).await;
        assert_eq!(stats.status, StatusCode::OK, "{query}: {}", stats.body);
        if ready(&stats.body) {
            return stats.body;
        }
        assert!(Instant::now() < deadline, "{query}: never ready, last {}", stats.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_live_view_of_a_retired_campaign_or_sale_answers_from_mysql_with_the_counts_it_had() {
    const WINDOW: Duration = Duration::from_secs(8);
    let started = Instant::now();
    let app = TestApp::spawn_with(|c| c.retention.retain_after_end = Duration::from_secs(1)).await;
    let ends =
        ((std::time::SystemTime::now() + WINDOW).duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).to_string();
    app.cli(&["coupon", "create", "--id", "1", "--quantity", "10", "--ends-at", &ends]).success();
    app.cli(&["sale", "create", "--id", "1", "--sku", "1:100:50", "--sku", "2:250:50", "--ends-at", &ends]).success();
    for user in 1..=3 {
        assert_eq!(app.issue(1, user).await.status, StatusCode::CREATED);
    }
    let paid = order_id(&app.reserve(1, 1, &[(1, 2)]).await.body);
    assert_eq!(app.confirm(1, paid, 200).await.status, StatusCode::OK);
    let cancelled = order_id(&app.reserve(1, 2, &[(2, 1)]).await.body);
    assert_eq!(app.cancel(1, cancelled).await.status, StatusCode::OK);
    assert!(Instant::now() < started + WINDOW - Duration::from_secs(1), "setup ran past the window");

    // Before retirement, from Redis, once MySQL holds every row.
    let coupon = stats_once(&app, "coupon=1", |s| s["mysql_rows"] == 3).await;
    let sale = stats_once(&app, "sale=1", |s| s["mysql_rows"] == 2).await;
    assert_eq!((coupon["remaining"].as_u64(), sale["remaining"].as_u64()), (Some(7), Some(98)));

    // Retired and let go by Redis: the GETs say so.
    let deadline = started + WINDOW + Duration::from_secs(40);
    while app.coupon(1).await.body["retired"] != true || app.get("/v1/sales/1").await.body["retired"] != true {
        assert!(Instant::now() < deadline, "never retired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The live view answers from MySQL with the counts it had.
    for (query, before) in [("coupon=1", &coupon), ("sale=1", &sale)] {
        let after = app.get(&format!("/v1/dashboard/stats?{query}")).await;
        assert_eq!(after.status, StatusCode::OK, "{query}: {}", after.body);
        for count in ["remaining", "mysql_rows"] {
            assert_eq!(after.body[count], before[count], "{query} {count}: {} then {}", before, after.body);
        }
    }
    for (query, error) in [("coupon=2", "unknown_coupon"), ("sale=2", "unknown_sale")] {
        let unknown = app.get(&format!("/v1/dashboard/stats?{query}")).await;
        assert_eq!((unknown.status, unknown.body["error"].as_str()), (StatusCode::NOT_FOUND, Some(error)), "{query}");
    }
}
