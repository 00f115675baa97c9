//! `FLASHSALE_READY_REQUIRES`: by default /readyz needs every server; with `redis`
//! it needs Redis alone, so a MySQL (or broker) outage, which the hot path rides
//! out, keeps the instance in its Service.

use flashsale::config::ReadyRequires;
use hyper::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn with_mysql_down_readyz_is_503_by_default_and_200_when_it_requires_redis_alone() {
    let app = TestApp::spawn().await;
    app.create_coupon(1, 10, &[]);
    let down = "mysql://flashsale:flashsale@127.0.0.1:1/nowhere";
    // Two more instances on the same Redis and broker, with a MySQL that is not there.
    let instance = |name: &'static str, requires: ReadyRequires| {
        move |c: &mut flashsale::config::ServeConfig| {
            c.mysql.mysql_url = down.into();
            c.run_sink = false;
            c.relay.relay_consumer = Some(name.into());
            c.http.ready_requires = requires;
        }
    };
    let strict = app.another_instance(instance("relay-strict", ReadyRequires::All)).await;
    let lenient = app.another_instance(instance("relay-lenient", ReadyRequires::Redis)).await;

    let ready = strict.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.body);
    assert_ne!(ready.body["mysql"], "ok");

    let ready = lenient.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["redis"], "ok");
    assert_ne!(ready.body["mysql"], "ok", "the body still names the failing part: {}", ready.body);
    // And the hot path, which keeps it in the Service, works.
    let res = lenient.post("/v1/coupons/1/issue", &json!({ "user_id": 7 }), &[]).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
}

#[tokio::test]
async fn readyz_that_requires_redis_alone_is_503_when_redis_is_down() {
    let mut redis = crate::helpers::OwnRedis::start();
    let url = redis.url.clone();
    let app = TestApp::spawn_with(|c| {
        c.redis.redis_url = url;
        c.redis.redis_timeout_ms = 1_000;
        c.http.ready_requires = ReadyRequires::Redis;
    })
    .await;
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    redis.child.kill().unwrap();
    redis.child.wait().unwrap();
    app.wait_until_unready().await;
}
