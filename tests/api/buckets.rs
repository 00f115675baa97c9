//! Hot-item buckets (`coupon create --buckets N`, see `buckets`): the stock
//! and the holders split over N slots, each user walking the buckets from its
//! own; sells out exactly, one coupon per user, on one node and on the
//! stack's Redis Cluster (where the buckets land on several primaries).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use flashsale::keys::Keys;
use fred::prelude::*;
use hyper::StatusCode;
use serde_json::json;

use crate::{cluster::cluster_url, ha_redis::redis_cli, helpers::TestApp};

/// Every user of `users` asks `times` times at once, 64 requests in flight;
/// returns how many 201s each user got and how many requests were refused 410.
async fn race(app: &Arc<TestApp>, coupon: u64, users: u64, times: u64) -> (BTreeMap<u64, u64>, u64) {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (app, next) = (app.clone(), next.clone());
        tasks.spawn(async move {
            let (mut won, mut gone) = (Vec::new(), 0u64);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= users * times {
                    return (won, gone);
                }
                // A user's requests follow each other: in flight together.
                let user = i / times + 1;
                match app.issue(coupon, user).await.status {
                    StatusCode::CREATED => won.push(user),
                    StatusCode::GONE => gone += 1,
                    StatusCode::CONFLICT => {}
                    other => panic!("user {user}: {other}"),
                }
            }
        });
    }
    let (mut wins, mut gone) = (BTreeMap::new(), 0);
    for (won, g) in tasks.join_all().await {
        gone += g;
        for user in won {
            *wins.entry(user).or_insert(0) += 1;
        }
    }
    (wins, gone)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bucketed_campaign_sells_out_exactly_once_per_user_and_its_coupons_redeem() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_coupon(1, 1_000, &["--buckets", "4", "--discount", "100"]);
    let (wins, gone) = race(&app, 1, 1_300, 2).await;
    assert_eq!(wins.len(), 1_000, "exactly the stock");
    assert!(wins.values().all(|&n| n == 1), "a user issued twice");
    assert!(gone >= 300, "the other 300 users were told sold out");
    let info = app.coupon(1).await.body;
    assert_eq!(
        (info["total"].as_u64(), info["remaining"].as_u64(), info["issued"].as_u64()),
        (Some(1_000), Some(0), Some(1_000))
    );

    // Every bucket took its share; each holder is in exactly one.
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let mut seen = BTreeSet::new();
    for bucket in 0..4 {
        let users: Vec<u64> = redis.smembers(keys.coupon_bucket(1, bucket).users).await.unwrap();
        assert_eq!(users.len(), 250, "bucket {bucket}");
        for user in users {
            assert!(seen.insert(user), "user {user} in two buckets");
        }
    }

    // A holder from a bucket other than the campaign's own redeems it once.
    let other: Vec<u64> = redis.smembers(keys.coupon_bucket(1, 3).users).await.unwrap();
    let holder = other[0];
    app.create_sale(2, &["21:1000:10"], &[]);
    let body = json!({"user_id": holder, "items": [{"sku": 21, "quantity": 1}], "coupon_id": 1});
    let order = app.post("/v1/sales/2/orders", &body, &[]).await;
    assert_eq!((order.status, order.body["discount"].as_u64()), (StatusCode::CREATED, Some(100)), "{:?}", order.body);
    let again = app.post("/v1/sales/2/orders", &body, &[]).await;
    assert_eq!(again.body["error"], "coupon_unavailable");
    let stranger = json!({"user_id": 5_000, "items": [{"sku": 21, "quantity": 1}], "coupon_id": 1});
    assert_eq!(app.post("/v1/sales/2/orders", &stranger, &[]).await.body["error"], "coupon_unavailable");
    let mine = app.get(&format!("/v1/users/{holder}/coupons")).await;
    assert_eq!(mine.body["coupons"][0]["coupon_id"], 1, "{:?}", mine.body);

    let rows = app.wait_for_rows(1, 1_000).await;
    assert_eq!(rows.iter().copied().collect::<BTreeSet<u64>>(), wins.keys().copied().collect());
    // The order is in MySQL too (its sale's stream joined the relay later) before the two are compared.
    assert_eq!(app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE sale_id = 2", 1).await, 1);
    let agree = app.cli(&["reconcile"]);
    assert!(agree.stdout.contains("agree"), "{} {}", agree.stdout, agree.stderr);

    // Lost from Redis and loaded back: every holder is still one, once.
    let lost: Vec<String> = (0..4).flat_map(|b| keys.coupon_bucket(1, b).all().map(str::to_string)).collect::<Vec<_>>();
    for key in lost {
        let _: () = redis.del(key).await.unwrap();
    }
    let out = app.cli(&["coupon", "load", "--id", "1", "--force"]);
    assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);
    assert_eq!(app.coupon(1).await.body["issued"], 1_000);
    for user in wins.keys().take(50) {
        assert_eq!(app.issue(1, *user).await.status, StatusCode::CONFLICT, "holder {user} after the load");
    }
    assert_eq!(app.issue(1, 4_000).await.status, StatusCode::GONE);
    let refused = app.cli(&["coupon", "create", "--id", "1", "--quantity", "10", "--replace"]);
    assert_ne!(refused.code, Some(0), "--replace cannot change the bucket count");
    let _ = redis.quit().await;
}

/// The primary serving `key`'s slot on the stack's cluster.
pub(crate) fn primary_of(key: &str) -> String {
    let port: u16 = cluster_url().split(':').nth(2).unwrap().split('?').next().unwrap().parse().unwrap();
    let slot: u16 = redis_cli(port, &["cluster", "keyslot", key]).parse().unwrap();
    let nodes = redis_cli(port, &["cluster", "nodes"]);
    for line in nodes.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let serves = f.len() > 8
            && f[2].contains("master")
            && f[8..].iter().any(|r| match r.split_once('-') {
                Some((a, b)) => (a.parse::<u16>().unwrap()..=b.parse().unwrap()).contains(&slot),
                None => r.parse::<u16>().ok() == Some(slot),
            });
        if serves {
            return f[1].to_string();
        }
    }
    panic!("no primary for slot {slot}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_a_bucketed_campaign_of_10000_sells_out_exactly_over_several_primaries() {
    let app = Arc::new(
        TestApp::spawn_with(|c| {
            c.redis.redis_url = cluster_url();
            c.retention.retain_after_end = Duration::from_secs(2);
        })
        .await,
    );
    let keys = Keys::new(app.config.redis.key_prefix.clone());
    app.create_coupon(1, 10_000, &["--buckets", "6"]);
    let primaries: BTreeSet<String> = (0..6).map(|b| primary_of(&keys.coupon_bucket(1, b).meta)).collect();
    assert!(primaries.len() >= 2, "six buckets on one primary: {primaries:?}");

    let (wins, _) = race(&app, 1, 12_000, 1).await;
    assert_eq!(wins.len(), 10_000, "exactly the stock");
    assert!(wins.values().all(|&n| n == 1));
    let info = app.coupon(1).await.body;
    assert_eq!((info["remaining"].as_u64(), info["issued"].as_u64()), (Some(0), Some(10_000)));
    let rows = app.wait_for_rows(1, 10_000).await;
    assert_eq!(rows.len(), 10_000);
    let agree = app.cli(&["reconcile"]);
    assert!(agree.stdout.contains("agree"), "{} {}", agree.stdout, agree.stderr);

    // A bucketed campaign that ends retires, every bucket's keys with it.
    // Whole seconds: room for the 20 issues below to land before the end on a loaded box.
    let ends = (std::time::SystemTime::now() + Duration::from_secs(8))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    app.create_coupon(2, 30, &["--buckets", "3", "--ends-at", &ends]);
    for user in 1..=20 {
        assert_eq!(app.issue(2, user).await.status, StatusCode::CREATED);
    }
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut left = 0u64;
        for bucket in 0..3 {
            for key in keys.coupon_bucket(2, bucket).all() {
                left += redis.exists::<u64, _>(key).await.unwrap();
            }
        }
        if left == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{left} keys of the ended bucketed campaign left");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(app.coupon(2).await.body["retired"], true);
    let _ = redis.quit().await;
}
