//! Hot-item buckets for single-SKU sales (`sale create --buckets N`, see
//! `sales::moves`): each user's orders in the user's home bucket, stock moving
//! to where it is asked for. Sells out exactly, the per-user limit holds
//! across buckets, orders route by id, the expiry task finishes stock moves a
//! dead process left; on one node and on the stack's Redis Cluster.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use flashsale::{
    buckets,
    keys::{Keys, SaleKeys},
};
use fred::prelude::*;
use hyper::StatusCode;
use serde_json::json;

use crate::{cluster::cluster_url, helpers::TestApp};

/// Users `users` each send `times` one-unit orders of SKU 21, 64 requests in
/// flight; returns each user's reserved order ids and how many were refused
/// sold out.
async fn race(
    app: &Arc<TestApp>,
    sale: u64,
    users: std::ops::Range<u64>,
    times: u64,
) -> (BTreeMap<u64, Vec<u64>>, u64) {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = users.end - users.start;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (app, next, first) = (app.clone(), next.clone(), users.start);
        tasks.spawn(async move {
            let (mut won, mut gone) = (Vec::new(), 0u64);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count * times {
                    return (won, gone);
                }
                let user = first + i / times;
                let answer = app.reserve(sale, user, &[(21, 1)]).await;
                match (answer.status, answer.body["error"].as_str()) {
                    (StatusCode::CREATED, _) => won.push((user, answer.body["order_id"].as_u64().unwrap())),
                    (StatusCode::GONE, _) => gone += 1,
                    (StatusCode::CONFLICT, Some("limit_exceeded")) => {}
                    (status, _) => panic!("user {user}: {status} {}", answer.body),
                }
            }
        });
    }
    let (mut wins, mut gone) = (BTreeMap::new(), 0);
    for (won, g) in tasks.join_all().await {
        gone += g;
        for (user, order) in won {
            wins.entry(user).or_insert_with(Vec::new).push(order);
        }
    }
    (wins, gone)
}

fn units(wins: &BTreeMap<u64, Vec<u64>>) -> usize {
    wins.values().map(Vec::len).sum()
}

/// Each user's orders are in the user's home bucket, and their ids name it.
fn all_at_home(wins: &BTreeMap<u64, Vec<u64>>, n: u32) {
    for (user, orders) in wins {
        for order in orders {
            assert_eq!(buckets::of_order(*order, n), buckets::home(*user, n), "order {order} of user {user}");
        }
    }
}

async fn remaining(app: &TestApp, sale: u64) -> u64 {
    app.remaining(sale).await[&21]
}

/// What remains once the moves' bookkeeping is done: a sale's read sums the
/// buckets and the moves under way one after the other, so a move finishing
/// after its order was answered is counted twice for a moment.
async fn settled_remaining(app: &TestApp, sale: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = remaining(app, sale).await;
        if n == 0 || std::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bucketed_sale_sells_out_exactly_within_the_per_user_limit_and_its_orders_route_by_id() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_sale(1, &["21:1000:1000"], &["--buckets", "4", "--per-user", "2"]);
    // 700 users x 3 orders: 2,100 asked, at most 1,400 allowed, 1,000 there.
    let (wins, gone) = race(&app, 1, 1..701, 3).await;
    assert_eq!(units(&wins), 1_000, "exactly the stock");
    assert!(wins.values().all(|o| o.len() <= 2), "a user above the per-user limit");
    assert!(gone > 0, "the rest were told sold out");
    all_at_home(&wins, 4);
    assert_eq!(settled_remaining(&app, 1).await, 0);
    let homes: BTreeSet<u32> = wins.keys().map(|&u| buckets::home(u, 4)).collect();
    assert_eq!(homes.len(), 4, "users of every bucket bought");

    // Pay, look up and cancel orders of every bucket by id alone.
    let mut cancelled = Vec::new();
    for (user, orders) in wins.iter().take(40) {
        let order = orders[0];
        let got = app.get(&format!("/v1/sales/1/orders/{order}")).await;
        assert_eq!((got.status, got.body["user_id"].as_u64()), (StatusCode::OK, Some(*user)), "{}", got.body);
        if user % 2 == 0 {
            assert_eq!(app.confirm(1, order, 1000).await.status, StatusCode::OK);
        } else {
            assert_eq!(app.cancel(1, order).await.body["status"], "cancelled");
            cancelled.push(*user);
        }
    }
    assert_eq!(remaining(&app, 1).await, cancelled.len() as u64);
    // The in-process sold-out answer outlives a cancel by its TTL (see `soldout`).
    tokio::time::sleep(Duration::from_millis(flashsale::soldout::TTL_MS + 100)).await;
    // New users take exactly the cancelled units, wherever their homes are.
    let (more, _) = race(&app, 1, 5_000..5_100, 1).await;
    assert_eq!(units(&more), cancelled.len(), "the cancelled units sold again, no more");
    all_at_home(&more, 4);
    // A user at the limit stays there (the count lives in the user's home).
    let full = wins.iter().skip(40).find(|(_, o)| o.len() == 2).map(|(u, _)| *u).unwrap();
    app.cli(&["stock", "add", "--sale", "1", "--sku", "21", "--quantity", "10"]).success();
    // Another process's change shows once the shared summary lapses (see `sales::summary`).
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while remaining(&app, 1).await != 10 {
        assert!(std::time::Instant::now() < deadline, "the top-up never showed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(flashsale::soldout::TTL_MS + 100)).await;
    assert_eq!(app.reserve(1, full, &[(21, 1)]).await.body["error"], "limit_exceeded");
    let refused = app.cli(&["stock", "set", "--sale", "1", "--sku", "21", "--quantity", "5"]);
    assert_ne!(refused.code, Some(0), "a bucketed sale's stock is not set");

    // Every order made: the first 1,000 (some cancelled since) and the new ones.
    let all = 1_000 + units(&more) as u64;
    assert_eq!(app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 1", all).await, all);
    let agree = app.cli(&["reconcile"]);
    assert!(agree.stdout.contains("agree"), "{} {}", agree.stdout, agree.stderr);

    // Lost from Redis and loaded back: each bucket gets its orders and its
    // users' counts; ids keep naming their bucket.
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    for bucket in 0..4 {
        let _: () = redis.del(keys.sale_bucket(1, bucket).all().map(str::to_string).to_vec()).await.unwrap();
    }
    app.cli(&["stock", "load", "--sale", "1", "--force"]).success();
    assert_eq!(remaining(&app, 1).await, 10);
    assert_eq!(app.reserve(1, full, &[(21, 1)]).await.body["error"], "limit_exceeded", "the limit after the load");
    let (user, orders) = wins.iter().rev().find(|(u, _)| buckets::home(**u, 4) == 3).unwrap();
    let got = app.get(&format!("/v1/sales/1/orders/{}", orders[0])).await;
    assert_eq!(got.body["user_id"].as_u64(), Some(*user), "{}", got.body);
    let (last, _) = race(&app, 1, 6_000..6_030, 1).await;
    assert_eq!(units(&last), 10);
    all_at_home(&last, 4);
    // Lopsided demand: every buyer's home is bucket 1, and still the whole
    // stock sells, moved there from the other three.
    app.create_sale(5, &["21:1000:400"], &["--buckets", "4"]);
    let one: Vec<u64> = (10_000..).filter(|&u| buckets::home(u, 4) == 1).take(450).collect();
    let mut sold = 0;
    for chunk in one.chunks(50) {
        let answers = futures_util::future::join_all(chunk.iter().map(|&u| app.reserve(5, u, &[(21, 1)]))).await;
        for a in answers {
            match a.status {
                StatusCode::CREATED => sold += 1,
                StatusCode::GONE => {}
                other => panic!("{other} {}", a.body),
            }
        }
    }
    assert_eq!(sold, 400, "the whole stock, moved to where it was asked for");
    assert_eq!(remaining(&app, 5).await, 0);
    let refused = app.cli(&["sale", "create", "--id", "1", "--sku", "21:1000:10", "--replace"]);
    assert_ne!(refused.code, Some(0), "--replace cannot change the bucket count");
    let two = app.cli(&["sale", "create", "--id", "2", "--sku", "1:1:1", "--sku", "2:1:1", "--buckets", "2"]);
    assert_ne!(two.code, Some(0), "buckets are for single-SKU sales");
    let _ = redis.quit().await;
}

fn stock_of(keys: &SaleKeys) -> (String, String) {
    (keys.stock.clone(), keys.initial.clone())
}

async fn bucket_stock(redis: &Client, keys: &Keys, sale: u64, n: u32) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for b in 0..n {
        let (stock, initial) = stock_of(&keys.sale_bucket(sale, b));
        let s: Option<u64> = redis.hget(stock, 21).await.unwrap();
        let i: Option<u64> = redis.hget(initial, 21).await.unwrap();
        out.push((s.unwrap_or(0), i.unwrap_or(0)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stock_moves_a_dead_process_left_are_finished_once_or_put_back() {
    let app = TestApp::spawn().await;
    app.create_sale(3, &["21:500:90"], &["--buckets", "3"]);
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let ack = flashsale::durability::Ack::new(0, 0, false);
    let scripts = flashsale::scripts::Scripts::load(&redis, ack).await.unwrap();
    assert_eq!(bucket_stock(&redis, &keys, 3, 3).await, vec![(30, 30); 3]);
    let (b0, b1, b2) = (keys.sale_bucket(3, 0), keys.sale_bucket(3, 1), keys.sale_bucket(3, 2));

    // Died after taking: 15 units (half of 30) in no bucket, still for sale.
    let taken = scripts.move_stock.take(&redis, &b1, 1, 0, 21, 4).await.unwrap().unwrap();
    assert_eq!(taken.units, 15);
    assert_eq!(remaining(&app, 3).await, 90, "a move under way is still for sale");
    // Died after giving, before forgetting it: the expiry task must not give it twice.
    let given = scripts.move_stock.take(&redis, &b2, 2, 0, 21, 1).await.unwrap().unwrap();
    let said = scripts.move_stock.give(&redis, &b0, &given, flashsale::sales::moves::GIVE_WINDOW_MS).await.unwrap();
    assert_eq!(said, flashsale::scripts::Given::Given);
    // Died after taking, 40 s ago: too late to give, it goes back to its donor.
    let old = flashsale::time::now_ms() - 40_000;
    let epoch: String = redis.hget(&b2.meta, "epoch").await.unwrap();
    let _: () = redis.hset(&b2.moves, ("2.99", format!("0:21:5:{old}:{epoch}"))).await.unwrap();
    let _: () = redis.hincrby(&b2.stock, "21", -5).await.unwrap();
    let _: () = redis.hincrby(&b2.initial, "21", -5).await.unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left: u64 = redis.hlen(&b1.moves).await.unwrap();
        let left2: u64 = redis.hlen(&b2.moves).await.unwrap();
        if left + left2 == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "stock moves left unfinished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Bucket 0 got 15 + 15 once each; bucket 2 got its 5 back.
    assert_eq!(bucket_stock(&redis, &keys, 3, 3).await, vec![(60, 60), (15, 15), (15, 15)]);
    assert_eq!(remaining(&app, 3).await, 90);
    let late: Option<f64> = redis.zscore(&b0.received, "2.99").await.unwrap();
    assert_eq!(late, None, "a late move is never given");

    // A move taken before `sale create --replace` never reaches the new sale.
    let stale = scripts.move_stock.take(&redis, &b1, 1, 0, 21, 1).await.unwrap().unwrap();
    app.cli(&["sale", "create", "--id", "3", "--sku", "21:500:90", "--buckets", "3", "--replace"]).success();
    let said = scripts.move_stock.give(&redis, &b0, &stale, flashsale::sales::moves::GIVE_WINDOW_MS).await.unwrap();
    assert_eq!(said, flashsale::scripts::Given::Gone, "the home was seeded again since the take");
    assert!(!scripts.move_stock.undo(&redis, &b1, &stale.id).await.unwrap(), "the reseed forgot the move");
    assert_eq!(bucket_stock(&redis, &keys, 3, 3).await, vec![(30, 30); 3]);
    let _ = redis.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_a_bucketed_sale_sells_out_exactly_over_several_primaries_with_coupons() {
    let app = Arc::new(
        TestApp::spawn_with(|c| {
            c.redis.redis_url = cluster_url();
        })
        .await,
    );
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    app.create_sale(1, &["21:1000:3000"], &["--buckets", "6", "--per-user", "1"]);
    let primaries: BTreeSet<String> =
        (0..6).map(|b| crate::buckets::primary_of(&keys.sale_bucket(1, b).meta)).collect();
    assert!(primaries.len() >= 2, "six buckets on one primary: {primaries:?}");

    // Coupon holders among the buyers redeem in the bucketed sale (held in the
    // coupon's slot, recorded in the user's bucket).
    app.create_coupon(7, 20, &["--discount", "100"]);
    for user in 1..=20 {
        assert_eq!(app.issue(7, user).await.status, StatusCode::CREATED);
    }
    let mut with_coupon = Vec::new();
    for user in 1..=20u64 {
        let body = json!({"user_id": user, "items": [{"sku": 21, "quantity": 1}], "coupon_id": 7});
        let order = app.post("/v1/sales/1/orders", &body, &[]).await;
        assert_eq!((order.status, order.body["discount"].as_u64()), (StatusCode::CREATED, Some(100)), "{}", order.body);
        with_coupon.push((user, order.body["order_id"].as_u64().unwrap()));
    }
    // A cancelled one gives its coupon back, through the user's bucket.
    let (user, order) = with_coupon[3];
    assert_eq!(app.cancel(1, order).await.body["status"], "cancelled");
    let body = json!({"user_id": user, "items": [{"sku": 21, "quantity": 1}], "coupon_id": 7});
    let again = app.post("/v1/sales/1/orders", &body, &[]).await;
    assert_eq!(again.status, StatusCode::CREATED, "the coupon came back: {}", again.body);

    let (wins, _) = race(&app, 1, 21..4_001, 1).await;
    assert_eq!(units(&wins), 3_000 - 20, "exactly the stock");
    all_at_home(&wins, 6);
    assert_eq!(settled_remaining(&app, 1).await, 0);
    let reserved = "SELECT COUNT(*) FROM orders WHERE sale_id = 1 AND status = 'reserved'";
    assert_eq!(app.wait_for_sql(reserved, 3_000).await, 3_000);
    // The coupon's issues travel their own stream: wait for them too.
    let used = "SELECT COUNT(*) FROM coupon_issues WHERE coupon_id = 7 AND used_order_id IS NOT NULL";
    assert_eq!(app.wait_for_sql(used, 20).await, 20);
    // The cancelled order's coupon goes back in the coupon's slot a moment
    // later (settle_coupon.lua) and its event follows: MySQL catches up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let agree = app.cli(&["reconcile"]);
        if agree.stdout.contains("agree") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{} {}", agree.stdout, agree.stderr);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Commands Redis has run in all, from `INFO commandstats`.
fn commands_run(url: &str) -> u64 {
    let out = std::process::Command::new("redis-cli").args(["-u", url, "INFO", "commandstats"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(":calls=")?.1.split(',').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_sold_out_sale_of_64_buckets_answers_without_reading_every_bucket_per_request() {
    let redis = crate::helpers::OwnRedis::start();
    let url = redis.url.clone();
    let app = TestApp::spawn_with(|c| c.redis.redis_url = url).await;
    app.create_sale(1, &["21:1000:64"], &["--buckets", "64", "--per-user", "0"]);
    for user in 0..64 {
        assert_eq!(app.reserve(1, user, &[(21, 1)]).await.status, StatusCode::CREATED, "user {user}");
    }
    assert_eq!(app.remaining(1).await[&21], 0);
    let body = json!({"user_id": 999, "items": [{"sku": 21, "quantity": 1}]});

    // The background (relay, expiry) over as long as the requests take, to subtract.
    let (idle_from, started) = (commands_run(&redis.url), std::time::Instant::now());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle = (commands_run(&redis.url) - idle_from) as f64 / started.elapsed().as_secs_f64();

    let (from, started) = (commands_run(&redis.url), std::time::Instant::now());
    const REQUESTS: u64 = 200;
    for n in 0..REQUESTS {
        // A fresh Idempotency-Key always reaches the script; GET sums the buckets.
        let key = format!("k-{n}");
        let gone = app.post("/v1/sales/1/orders", &body, &[("idempotency-key", &key)]).await;
        assert_eq!(gone.status, StatusCode::GONE, "{}", gone.body);
        assert_eq!(app.get("/v1/sales/1").await.status, StatusCode::OK);
    }
    let spent = (commands_run(&redis.url) - from) as f64 - idle * started.elapsed().as_secs_f64();
    let per_request = spent / (2 * REQUESTS) as f64;
    eprintln!("Redis commands per sold-out request or GET at 64 buckets: {per_request:.1} (background {idle:.0}/s)");
    assert!(per_request < 10.0, "{per_request:.1} commands per request: the buckets are read per request");
}
