//! The service on a Redis Cluster (3 primaries + 3 replicas, `scripts/stack
//! up --cluster`): every script's keys share one slot, the relay reads each
//! outbox stream on its own node, the registries and `retiring` are written
//! beside the scripts, rankings are bumped apart from the payment, and an
//! answer can wait for a replica (a key write in the slot instead of
//! `PUBLISH`). Orders that redeem a coupon: `cluster_coupons`.

use std::{sync::Arc, time::Duration};

use flashsale::keys::Keys;
use fred::prelude::*;
use hyper::StatusCode;

use crate::helpers::{distinct, TestApp};

/// The test cluster: `FLASHSALE_TEST_CLUSTER_URL`, by default the stack's.
pub fn cluster_url() -> String {
    std::env::var("FLASHSALE_TEST_CLUSTER_URL")
        .unwrap_or_else(|_| "redis-cluster://127.0.0.1:26501?node=127.0.0.1:26502&node=127.0.0.1:26503".to_string())
}

async fn on_cluster(adjust: impl FnOnce(&mut flashsale::config::ServeConfig)) -> TestApp {
    TestApp::spawn_with(|c| {
        c.redis.redis_url = cluster_url();
        adjust(c);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_campaigns_sales_payments_and_rankings_reach_mysql_and_agree() {
    let app = Arc::new(on_cluster(|_| {}).await);
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    // Campaigns and sales whose hash tags land on different primaries.
    for id in 1..=3 {
        app.create_coupon(id, 40, &[]);
    }
    app.create_sale(7, &["71:500:30", "72:300:30", "73:100:30"], &["--per-user", "5"]);
    app.create_sale(8, &["81:900:10"], &[]);

    let mut tasks = tokio::task::JoinSet::new();
    for user in 1..=150u64 {
        for coupon in 1..=3u64 {
            let app = app.clone();
            tasks.spawn(async move { (coupon, user, app.issue(coupon, user).await.status) });
        }
    }
    let mut winners: Vec<Vec<u64>> = vec![Vec::new(); 4];
    for (coupon, user, status) in tasks.join_all().await {
        match status {
            StatusCode::CREATED => winners[coupon as usize].push(user),
            StatusCode::GONE => {}
            other => panic!("coupon {coupon} user {user}: {other}"),
        }
    }
    for coupon in 1..=3u64 {
        assert_eq!(winners[coupon as usize].len(), 40, "campaign {coupon} issues exactly its quantity");
    }

    // Orders in both sales; some paid (ranked), one cancelled.
    let mut paid = 0;
    for user in 1..=12u64 {
        let (sale, items): (u64, &[(u64, u64)]) =
            if user % 3 == 0 { (8, &[(81, 1)]) } else { (7, &[(71, 1), (72, 2)]) };
        let order = app.reserve(sale, user, items).await;
        assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
        let id = order.body["order_id"].as_u64().unwrap();
        if user == 12 {
            assert_eq!(app.cancel(sale, id).await.status, StatusCode::OK);
        } else {
            let to_pay = order.body["to_pay"].as_u64().unwrap();
            assert_eq!(app.confirm(sale, id, to_pay).await.status, StatusCode::OK);
            paid += 1;
        }
    }
    assert_eq!(paid, 11);
    let ranking = app.get("/v1/rankings/products?window=1d&limit=10").await;
    assert_eq!(ranking.status, StatusCode::OK);
    let ranked: Vec<(u64, u64)> = ranking.body["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["sku"].as_u64().unwrap(), p["paid_orders"].as_u64().unwrap()))
        .filter(|(sku, _)| [71, 72, 81].contains(sku))
        .collect();
    assert_eq!(ranked, vec![(71, 8), (72, 8), (81, 3)], "bumped beside each payment");

    // The relay read every stream on its node; the sink wrote every row.
    for coupon in 1..=3u64 {
        let rows = app.wait_for_rows(coupon, 40).await;
        assert_eq!(distinct(&rows), distinct(&winners[coupon as usize]));
    }
    app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE status = 'paid'", 11).await;
    app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE status = 'cancelled'", 1).await;
    let agree = app.cli(&["reconcile"]);
    assert!(agree.stdout.contains("agree"), "reconcile on the cluster: {} {}", agree.stdout, agree.stderr);
    let status = app.cli(&["status", "--json"]).success();
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let campaigns = status["coupons"].as_array().unwrap();
    assert_eq!(campaigns.len(), 3, "{status}");
    for c in campaigns {
        assert_eq!(
            (c["issued"].as_u64(), c["remaining"].as_u64(), c["mysql_rows"].as_u64()),
            (Some(40), Some(0), Some(40))
        );
    }

    // The registries hold what was created, from their own slot.
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let mut sales: Vec<u64> = redis.smembers(keys.sales()).await.unwrap();
    sales.sort_unstable();
    assert_eq!(sales, vec![7, 8]);
    let _ = redis.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_ended_campaigns_and_sales_retire_and_leave_redis() {
    let app = on_cluster(|c| c.retention.retain_after_end = Duration::from_secs(2)).await;
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    // Whole seconds: room for seven CLI runs and the traffic before the end on a loaded box.
    let ends = (std::time::SystemTime::now() + Duration::from_secs(12))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    for id in 1..=6u64 {
        app.create_coupon(id, 5, &["--ends-at", &ends]);
        assert_eq!(app.issue(id, 1).await.status, StatusCode::CREATED);
    }
    app.create_sale(9, &["91:100:5"], &["--ends-at", &ends]);
    let order = app.reserve(9, 1, &[(91, 1)]).await.body;
    let id = order["order_id"].as_u64().unwrap();
    assert_eq!(app.confirm(9, id, order["to_pay"].as_u64().unwrap()).await.status, StatusCode::OK);

    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut left = 0;
        for id in 1..=6u64 {
            let n: u64 = redis.exists(keys.coupon(id).meta).await.unwrap();
            left += n;
        }
        let n: u64 = redis.exists(keys.sale(9).meta).await.unwrap();
        left += n;
        let retiring: u64 = redis.zcard(keys.retiring()).await.unwrap();
        let listed: u64 = redis.scard(keys.coupons()).await.unwrap();
        if left == 0 && retiring == 0 && listed == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{left} metas, {retiring} retiring, {listed} listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // MySQL answers for them now.
    let coupon = app.coupon(1).await;
    assert_eq!(coupon.status, StatusCode::OK);
    assert_eq!(coupon.body["retired"], true);
    let _ = redis.quit().await;
}

#[tokio::test]
async fn on_a_cluster_answers_wait_for_a_replica_of_their_slot() {
    let app = on_cluster(|c| c.redis.ack_replicas = 1).await;
    app.create_coupon(5, 10, &[]);
    assert_eq!(app.issue(5, 1).await.status, StatusCode::CREATED);
    // Nothing written by this answer: it waits behind a write in its slot.
    assert_eq!(app.issue(5, 1).await.status, StatusCode::CONFLICT);
    app.create_sale(6, &["61:100:5"], &[]);
    assert_eq!(app.reserve(6, 1, &[(61, 1)]).await.status, StatusCode::CREATED);
    app.wait_for_rows(5, 1).await;
}

/// Recovery works on a cluster too: a sale's and a campaign's keys deleted
/// mid-sale come back from MySQL with `stock load` and `coupon load`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_lost_sales_and_campaigns_load_back_from_mysql() {
    let app = Arc::new(on_cluster(|_| {}).await);
    app.create_coupon(3, 50, &[]);
    app.create_sale(4, &["41:100:20"], &["--per-user", "3"]);
    let holders = app.issue_all(3, 1..=10).await;
    let mut paid = Vec::new();
    for user in 1..=4u64 {
        let order = app.reserve(4, user, &[(41, 2)]).await.body;
        let id = order["order_id"].as_u64().unwrap();
        assert_eq!(app.confirm(4, id, order["to_pay"].as_u64().unwrap()).await.status, StatusCode::OK);
        paid.push(id);
    }
    app.wait_for_rows(3, 10).await;
    app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 4 AND status = 'paid'", 4).await;

    // Redis loses both (each one's keys share a slot: one DEL each).
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let sale: Vec<String> = keys.sale(4).all().iter().map(|k| k.to_string()).collect();
    let _: () = redis.del(sale).await.unwrap();
    let coupon: Vec<String> = keys.coupon(3).all().iter().map(|k| k.to_string()).collect();
    let _: () = redis.del(coupon).await.unwrap();
    assert_eq!(app.coupon(3).await.status, StatusCode::NOT_FOUND);

    let out = app.cli(&["stock", "load", "--sale", "4"]);
    assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);
    assert_eq!(app.remaining(4).await.get(&41), Some(&12));
    assert_eq!(app.reserve(4, 1, &[(41, 2)]).await.body["error"], "limit_exceeded", "user 1 holds 2 of 3");
    let out = app.cli(&["coupon", "load", "--id", "3"]);
    assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);
    assert_eq!(app.coupon(3).await.body["remaining"], 40);
    assert_eq!(app.issue(3, holders[0]).await.status, StatusCode::CONFLICT);
    assert_eq!(app.issue(3, 11).await.status, StatusCode::CREATED);
    app.wait_for_rows(3, 11).await;
    let _ = redis.quit().await;
}
