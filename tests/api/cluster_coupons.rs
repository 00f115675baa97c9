//! Orders that redeem a coupon on a Redis Cluster: the coupon is held in its
//! own slot, the order reserved in the sale's, then the hold settled (see
//! `sales::holds`). Each coupon is used once, a released order gives it back,
//! and a request that died between the steps loses no coupon and uses none twice.

use std::{collections::HashMap, sync::Arc, time::Duration};

use flashsale::{
    durability::Ack,
    keys::Keys,
    scripts::{CouponUse, Held, HoldState, InBucket, Reservation, ReserveOutcome, ReserveRules, Scripts},
};
use fred::prelude::*;
use hyper::StatusCode;
use serde_json::json;

use crate::{cluster::cluster_url, helpers::TestApp, requests::Response};

async fn on_cluster() -> TestApp {
    TestApp::spawn_with(|c| c.redis.redis_url = cluster_url()).await
}

async fn reserve_with_coupon(app: &TestApp, sale: u64, user: u64, sku: u64, coupon: u64) -> Response {
    let body = json!({"user_id": user, "items": [{"sku": sku, "quantity": 1}], "coupon_id": coupon});
    app.post(&format!("/v1/sales/{sale}/orders"), &body, &[]).await
}

/// The campaign's used-marks and open holds, as Redis holds them.
async fn marks(redis: &Client, keys: &Keys, coupon: u64) -> (HashMap<u64, String>, u64) {
    let used: HashMap<u64, String> = redis.hgetall(keys.coupon(coupon).used).await.unwrap();
    let holds: u64 = redis.zcard(keys.coupon(coupon).holds).await.unwrap();
    (used, holds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_each_coupon_redeems_one_order_and_a_released_order_gives_it_back() {
    let app = Arc::new(on_cluster().await);
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    app.create_coupon(1, 40, &["--discount", "100"]);
    app.create_sale(2, &["21:1000:200", "22:500:200", "23:200:200"], &["--per-user", "3", "--hold", "3s"]);
    app.issue_all(1, 1..=40).await;

    // Every holder and ten users without the coupon send two orders at once.
    let mut tasks = tokio::task::JoinSet::new();
    for user in 1..=50u64 {
        for sku in [21, 22] {
            let app = app.clone();
            tasks.spawn(async move { (user, reserve_with_coupon(&app, 2, user, sku, 1).await) });
        }
    }
    let mut orders: HashMap<u64, u64> = HashMap::new();
    for (user, answer) in tasks.join_all().await {
        match (answer.status, answer.body["error"].as_str()) {
            (StatusCode::CREATED, _) => {
                assert_eq!(answer.body["discount"], 100, "{:?}", answer.body);
                let id = answer.body["order_id"].as_u64().unwrap();
                assert!(orders.insert(user, id).is_none(), "user {user}'s coupon redeemed twice");
            }
            (StatusCode::CONFLICT, Some("coupon_unavailable")) => {}
            other => panic!("user {user}: {other:?} {:?}", answer.body),
        }
    }
    let mut winners: Vec<u64> = orders.keys().copied().collect();
    winners.sort_unstable();
    assert_eq!(winners, (1..=40).collect::<Vec<_>>(), "each holder's coupon in exactly one order");
    let (used, holds) = marks(&redis, &keys, 1).await;
    assert_eq!(holds, 0, "every hold settled");
    for (user, order) in &orders {
        assert_eq!(used.get(user), Some(&format!("2:{order}")), "user {user}'s mark names the order");
    }

    // Cancelled: the coupon comes back and redeems another order, paid.
    for user in 1..=10u64 {
        let cancelled = app.cancel(2, orders[&user]).await;
        assert_eq!(cancelled.body["status"], "cancelled", "{:?}", cancelled.body);
        let again = reserve_with_coupon(&app, 2, user, 23, 1).await;
        assert_eq!(again.status, StatusCode::CREATED, "user {user}: {:?}", again.body);
        let id = again.body["order_id"].as_u64().unwrap();
        assert_eq!(app.confirm(2, id, again.body["to_pay"].as_u64().unwrap()).await.status, StatusCode::OK);
        orders.insert(user, id);
    }
    for user in 11..=20u64 {
        let id = orders[&user];
        let to_pay = app.get(&format!("/v1/sales/2/orders/{id}")).await.body["to_pay"].as_u64().unwrap();
        assert_eq!(app.confirm(2, id, to_pay).await.status, StatusCode::OK);
    }
    // Users 21..=40 never pay: their orders expire and the coupons come back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (used, _) = marks(&redis, &keys, 1).await;
        if used.len() == 20 {
            let mut users: Vec<u64> = used.keys().copied().collect();
            users.sort_unstable();
            assert_eq!(users, (1..=20).collect::<Vec<_>>());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "expired orders' coupons not given back: {used:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = reserve_with_coupon(&app, 2, 21, 21, 1).await;
    assert_eq!(again.status, StatusCode::CREATED, "an expired order's coupon redeems again: {:?}", again.body);
    let id = again.body["order_id"].as_u64().unwrap();
    assert_eq!(app.cancel(2, id).await.body["status"], "cancelled");

    // MySQL: 20 coupons used by paid orders, the others free again.
    app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 2 AND status = 'paid'", 20).await;
    let paid_with_coupon = "SELECT COUNT(*) FROM coupon_issues c JOIN orders o \
        ON o.sale_id = c.used_sale_id AND o.order_id = c.used_order_id \
        WHERE c.coupon_id = 1 AND o.status = 'paid' AND o.coupon_id = 1";
    app.wait_for_sql(paid_with_coupon, 20).await;
    app.wait_for_sql("SELECT COUNT(*) FROM coupon_issues WHERE coupon_id = 1 AND used_order_id IS NOT NULL", 20).await;
    // The last order, cancelled, is in MySQL too before the two are compared.
    let last = format!("SELECT COUNT(*) FROM orders WHERE sale_id = 2 AND order_id = {id} AND status = 'cancelled'");
    assert_eq!(app.wait_for_sql(&last, 1).await, 1);
    let agree = app.cli(&["reconcile"]);
    assert!(agree.stdout.contains("agree"), "{} {}", agree.stdout, agree.stderr);
    let _ = redis.quit().await;
}

/// What a kill -9 between the steps leaves, made with the service's own
/// scripts: a hold with no reservation, a reservation whose hold was never
/// settled, and a reservation that came after its hold's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_holds_left_by_a_dead_request_are_settled_by_what_the_sale_recorded() {
    let app = on_cluster().await;
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let scripts = Scripts::load(&redis, Ack::new(0, 0, false)).await.unwrap();
    app.create_coupon(1, 5, &["--discount", "100"]);
    app.create_sale(2, &["21:1000:10"], &[]);
    for user in 1..=3 {
        assert_eq!(app.issue(1, user).await.status, StatusCode::CREATED);
    }
    let (coupon, sale) = (keys.coupon(1), keys.sale(2));
    let hold = |user: u64, token: &'static str| {
        let (scripts, redis, coupon) = (&scripts, &redis, &coupon);
        async move {
            match scripts
                .hold_coupon
                .call(redis, coupon, 2, 300, 1_000, &[(user, token.to_string(), false)])
                .await
                .unwrap()
            {
                Held::Holds { deadline, discount, seqs } => (deadline, discount, seqs[0].expect("held")),
                Held::Expired => panic!("campaign ended"),
            }
        }
    };
    let reserve = |user: u64, token: &'static str, held: (u64, u64, u64)| {
        let (scripts, redis, sale) = (&scripts, &redis, &sale);
        async move {
            let states = [HoldState::Held { token: token.to_string(), seq: held.2 }];
            let apart = CouponUse::Held { coupon_id: 1, discount: held.1, deadline: held.0, holds: &states };
            let request = Reservation { user_id: user, lines: vec![(21, 1)], idempotency: None, admitted: false };
            scripts
                .reserve_order
                .call(
                    redis,
                    sale,
                    2,
                    InBucket::NONE,
                    apart,
                    ReserveRules { idempotency_ttl_ms: 60_000, max_orders_per_user: 0 },
                    &[request],
                )
                .await
                .unwrap()
                .remove(0)
        }
    };

    // User 1: held, then the process died. User 2: held and reserved, then it
    // died before settling. User 3: the reservation came after the deadline.
    hold(1, "t1").await;
    let ReserveOutcome::Reserved(order) = reserve(2, "t2", hold(2, "t2").await).await else { panic!("reserved") };
    assert_eq!((order.discount, order.coupon_id), (100, Some(1)));
    let late = hold(3, "t3").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(reserve(3, "t3", late).await, ReserveOutcome::HoldLapsed);
    assert_eq!(app.remaining(2).await.get(&21), Some(&9), "only user 2's order took a unit");
    let held = reserve_with_coupon(&app, 2, 1, 21, 1).await;
    assert_eq!(held.body["error"], "coupon_unavailable", "a hold is a use until it is settled");

    // The expiry task settles them once overdue: 1 and 3 free, 2 used by its order.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (used, holds) = marks(&redis, &keys, 1).await;
        if holds == 0 {
            assert_eq!(used, HashMap::from([(2, format!("2:{}", order.order_id))]));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "overdue holds left: {used:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(reserve_with_coupon(&app, 2, 1, 21, 1).await.status, StatusCode::CREATED);
    assert_eq!(reserve_with_coupon(&app, 2, 3, 21, 1).await.status, StatusCode::CREATED);
    let twice = reserve_with_coupon(&app, 2, 2, 21, 1).await;
    assert_eq!(twice.body["error"], "coupon_unavailable", "user 2's coupon is its order's");
    assert_eq!(app.cancel(2, order.order_id).await.body["status"], "cancelled");
    let back = reserve_with_coupon(&app, 2, 2, 21, 1).await;
    assert_eq!(back.status, StatusCode::CREATED, "given back by the cancel: {:?}", back.body);

    app.wait_for_sql("SELECT COUNT(*) FROM coupon_issues WHERE coupon_id = 1 AND used_order_id IS NOT NULL", 3).await;
    app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 2", 4).await;
    let agree = app.cli(&["reconcile"]);
    assert!(agree.stdout.contains("agree"), "{} {}", agree.stdout, agree.stderr);
    let _ = redis.quit().await;
}
