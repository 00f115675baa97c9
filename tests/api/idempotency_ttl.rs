//! FLASHSALE_IDEMPOTENCY_TTL: an Idempotency-Key's answer is replayed while
//! it lasts; after it the key is new, and Redis forgets the old answer.

use std::time::{Duration, Instant};

use fred::prelude::*;
use hyper::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn an_idempotency_key_replays_within_its_ttl_and_is_a_new_request_after_it() {
    // The replays below must land within the TTL: room for a loaded box.
    let app = TestApp::spawn_with(|c| c.retention.idempotency_ttl = Duration::from_secs(6)).await;
    app.create_sale(5, &["1:100:100"], &[]);
    let body = json!({"user_id": 3, "items": [{"sku": 1, "quantity": 1}]});
    let key = [("idempotency-key", "order-ttl")];

    let first = app.post("/v1/sales/5/orders", &body, &key).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = app.post("/v1/sales/5/orders", &body, &key).await;
    assert_eq!((replay.status, &replay.body), (StatusCode::CREATED, &first.body), "replayed within the TTL");
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let other = json!({"user_id": 3, "items": [{"sku": 1, "quantity": 2}]});
    let mismatch = app.post("/v1/sales/5/orders", &other, &key).await;
    assert_eq!(mismatch.body["error"], "idempotency_key_reused", "still the first request's key");

    // Asked again until the answer is not a replay: a new order for the same key.
    let deadline = Instant::now() + Duration::from_secs(30);
    let fresh = loop {
        let again = app.post("/v1/sales/5/orders", &body, &key).await;
        assert_eq!(again.status, StatusCode::CREATED);
        if !again.headers.contains_key("idempotent-replayed") {
            break again;
        }
        assert!(Instant::now() < deadline, "still replayed 30 s after a 6 s TTL");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(fresh.body["order_id"], first.body["order_id"], "a new order");
    assert_eq!(app.remaining(5).await[&1], 98, "two reservations: the first and the one after the TTL");

    // Redis forgets an expired answer on its own (the expiry task deletes it).
    let redis = flashsale::redis::client(&app.config.redis).await.unwrap();
    let idem = format!("{}{{sale:5}}:idem", app.config.redis.key_prefix);
    let other_key = [("idempotency-key", "order-forgotten")];
    assert_eq!(app.post("/v1/sales/5/orders", &body, &other_key).await.status, StatusCode::CREATED);
    assert!(redis.hexists::<bool, _, _>(&idem, "3:order-forgotten").await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis.hexists::<bool, _, _>(&idem, "3:order-forgotten").await.unwrap() {
        assert!(Instant::now() < deadline, "the expired answer is still in Redis 20 s later");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = redis.quit().await;
}
