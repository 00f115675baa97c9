//! `GET /v1/coupons/{id}`, `/healthz`, `/readyz`, and Redis going away.

use hyper::{Method, StatusCode};

use crate::helpers::{OwnRedis, TestApp};

#[tokio::test]
async fn get_coupon_reports_total_remaining_issued_and_window() {
    let app = TestApp::spawn().await;
    app.create_coupon(11, 50, &["--starts-at", "2024-05-01T10:00:00Z"]);
    app.issue(11, 1).await;
    app.issue(11, 2).await;
    let res = app.coupon(11).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body["coupon_id"], 11);
    assert_eq!(res.body["total"], 50);
    assert_eq!(res.body["remaining"], 48);
    assert_eq!(res.body["issued"], 2);
    assert_eq!(res.body["starts_at"], "2024-05-01T10:00:00.000Z");
    assert!(res.body["ends_at"].is_null());
}

#[tokio::test]
async fn healthz_and_readyz_answer_ok_when_every_server_is_up() {
    let app = TestApp::spawn().await;
    assert_eq!(app.request(Method::GET, "/healthz", None).await.status, StatusCode::OK);
    let ready = app.request(Method::GET, "/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["redis"], "ok");
    assert_eq!(ready.body["kafka"], "ok");
    assert_eq!(ready.body["mysql"], "ok");
}

#[tokio::test]
async fn issue_returns_503_with_retry_after_when_redis_is_unreachable() {
    let mut redis = OwnRedis::start();
    let url = redis.url.clone();
    let app = TestApp::spawn_with(|c| {
        c.redis.redis_url = url;
        // The first issue must succeed on a loaded box; the 503 below comes at once (not connected).
        c.redis.redis_timeout_ms = 3_000;
    })
    .await;
    app.create_coupon(8, 10, &[]);
    assert_eq!(app.issue(8, 1).await.status, StatusCode::CREATED);

    redis.child.kill().unwrap();
    redis.child.wait().unwrap();
    app.wait_until_unready().await;
    let ready = app.request(Method::GET, "/readyz", None).await;
    assert_ne!(ready.body["redis"], "ok");

    // Not connected: the issue is not sent at all, and the answer says so.
    let res = app.issue(8, 2).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert_eq!(res.body["error"], "unavailable");
    assert_eq!(res.headers["retry-after"], "1");
}
