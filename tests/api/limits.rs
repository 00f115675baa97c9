//! Limits and identity: every limit is a named setting with a default, and
//! each is driven here through the real listener.

use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{OwnRedis, TestApp};

const SECRET: &str = "test-secret-0123456789abcdef";

/// Sends raw bytes on a fresh connection and returns what the server answers
/// before it closes (or `wait` passes).
async fn raw(app: &TestApp, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn json_nested_deeper_than_the_limit_is_a_400() {
    let app = TestApp::spawn().await;
    app.create_coupon(1, 5, &[]);
    let deep = format!(r#"{{"user_id":1,"x":{}1{}}}"#, "[".repeat(20), "]".repeat(20));
    let res = app.issue_raw(1, deep.as_bytes()).await;
    assert_eq!((res.status, res.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("too_deep")));
    assert_eq!(app.coupon(1).await.body["remaining"], 5);
}

#[tokio::test]
async fn a_request_head_over_the_limit_gets_431() {
    let app = TestApp::spawn().await;
    let big = "x".repeat(20 * 1024);
    let answer = raw(
        &app,
        format!("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.80}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app = TestApp::spawn_with(|c| c.http.header_read_timeout_ms = 300).await;
    let started = Instant::now();
    let answer = raw(&app, b"POST /v1/coupons/1/issue HTTP/1.1\r\nHost: a\r\n", Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(5), "closed after the header read timeout");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer:.80}");
}

#[tokio::test]
async fn headers_dribbled_a_byte_at_a_time_and_idle_keep_alives_are_cut_off() {
    let app = TestApp::spawn_with(|c| c.http.header_read_timeout_ms = 300).await;
    // Bytes keep coming, but the head never completes: closed within two periods.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: ".iter().chain([b'a'; 100].iter()) {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_millis(1_500), "{:?}", started.elapsed());
    // A served connection left idle is closed too, after one to two periods.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await.expect("closed");
    assert_eq!(end.unwrap_or(0), 0, "closed, not answered");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_millis(1_000), "{waited:?}");
}

#[tokio::test]
async fn a_request_that_outlives_the_request_timeout_gets_503_timeout() {
    let mut redis = OwnRedis::start();
    let url = redis.url.clone();
    let app = TestApp::spawn_with(|c| {
        c.redis.redis_url = url;
        c.http.request_timeout_ms = 300;
    })
    .await;
    app.create_coupon(1, 5, &[]);
    redis.child.kill().unwrap();
    redis.child.wait().unwrap();
    app.wait_until_unready().await;
    // A read waits for Redis to come back until the request timeout cuts it.
    // (A write is not even sent while Redis is away: 503 `unavailable`.)
    let started = Instant::now();
    let res = app.coupon(1).await;
    assert_eq!((res.status, res.body["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("timeout")));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let app = TestApp::spawn_with(|c| c.http.max_connections = 2).await;
    let hold = || async {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        s
    };
    let first = hold().await;
    let _second = hold().await;
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the third connection waits while two are open: {early:?} {:?}",
        String::from_utf8_lossy(&buf[..64])
    );
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("served once a slot frees")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn too_many_requests_from_one_ip_get_429_with_retry_after() {
    let app = TestApp::spawn_with(|c| c.http.rate_per_ip = 5).await;
    app.create_coupon(1, 100, &[]);
    let mut statuses = Vec::new();
    for user in 0..8 {
        statuses.push(app.issue(1, user).await);
    }
    let limited: Vec<_> = statuses.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert!(!limited.is_empty(), "8 requests at once exceed 5/s");
    assert_eq!(limited[0].body["error"], "rate_limited");
    assert!(limited[0].headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK, "health checks are not limited");
}

/// Issues as user `user` with `X-Forwarded-For: xff`; the status.
async fn issue_via(app: &TestApp, user: u64, xff: &str) -> StatusCode {
    let body = serde_json::to_vec(&serde_json::json!({ "user_id": user })).unwrap();
    let path = "/v1/coupons/1/issue";
    app.try_request_with(hyper::Method::POST, path, Some(body), &[("x-forwarded-for", xff)]).await.unwrap().status
}

/// A service limiting 3 requests/s per client, trusting 127.0.0.0/8 as its
/// load balancer (the test client is 127.0.0.1), with campaign 1 of 1,000.
async fn behind_a_proxy() -> TestApp {
    let app = TestApp::spawn_with(|c| {
        c.http.rate_per_ip = 3;
        c.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    app.create_coupon(1, 1000, &[]);
    app
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_per_ip_limit_is_per_forwarded_client() {
    let app = behind_a_proxy().await;
    // Ten clients behind the balancer, two requests each: no one exceeds 3/s.
    let mut user = 0;
    for client in 1..=10 {
        for _ in 0..2 {
            user += 1;
            let status = issue_via(&app, user, &format!("203.0.113.{client}")).await;
            assert_eq!(status, StatusCode::CREATED, "client {client} is limited on its own");
        }
    }
    // One client forging a left-hand hop is still itself: the rightmost untrusted hop.
    let mut limited = 0;
    for forged in 0..6 {
        user += 1;
        if issue_via(&app, user, &format!("198.51.100.{forged}, 203.0.113.99")).await == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 1, "forged hops do not spread one client over several limits");

    // Without trusted proxies the header is ignored: every request is the peer's.
    let direct = TestApp::spawn_with(|c| c.http.rate_per_ip = 3).await;
    direct.create_coupon(1, 1000, &[]);
    let mut limited = 0;
    for client in 1..=8 {
        if issue_via(&direct, client, &format!("203.0.113.{client}")).await == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 1, "an untrusted peer cannot spread itself with X-Forwarded-For");
}

#[tokio::test]
async fn behind_a_trusted_proxy_a_client_cannot_escape_its_limit() {
    let app = behind_a_proxy().await;
    // Rotating addresses inside one IPv6 /64 is one client.
    let mut limited = 0;
    for n in 1..=8 {
        if issue_via(&app, n, &format!("2001:db8:7:7::{n:x}")).await == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 1, "one /64 is one client");
    assert_eq!(issue_via(&app, 100, "2001:db8:7:8::1").await, StatusCode::CREATED, "the next /64 is another");

    // A header the proxy should have written but that cannot be read: 400, not the proxy's bucket.
    for bad in ["garbage", "1.1.1.1, not-an-address"] {
        let body = serde_json::to_vec(&json!({"user_id": 200})).unwrap();
        let res = app
            .try_request_with(hyper::Method::POST, "/v1/coupons/1/issue", Some(body), &[("x-forwarded-for", bad)])
            .await
            .unwrap();
        assert_eq!((res.status, res.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_forwarded_for")));
    }
    let non_ascii = raw(
        &app,
        b"POST /v1/coupons/1/issue HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.\xc3\xa9\r\nContent-Length: 15\r\n\r\n{\"user_id\":201}",
        Duration::from_secs(2),
    )
    .await;
    assert!(non_ascii.starts_with("HTTP/1.1 400") && non_ascii.contains("invalid_forwarded_for"), "{non_ascii}");
    assert_eq!(app.coupon(1).await.body["issued"].as_u64().unwrap(), 1 + 8 - limited, "refused ones took nothing");
}

#[tokio::test]
async fn one_client_past_its_connection_cap_is_told_429_and_others_still_connect() {
    let app = TestApp::spawn_with(|c| c.http.max_connections_per_ip = 2).await;
    let open = || async {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        (s, String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let (first, a) = open().await;
    let (_second, b) = open().await;
    assert!(a.starts_with("HTTP/1.1 200") && b.starts_with("HTTP/1.1 200"));
    let (_, third) = open().await;
    assert!(third.starts_with("HTTP/1.1 429") && third.contains("rate_limited"), "{third}");
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_s, again) = open().await;
        if again.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "a place frees when a connection closes: {again}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn too_many_requests_from_one_user_get_429_and_others_are_not_affected() {
    let app = TestApp::spawn_with(|c| c.http.rate_per_user = 2).await;
    app.create_sale(1, &["1:100:100"], &[]);
    let mut limited = 0;
    for _ in 0..4 {
        let res = app.reserve(1, 7, &[(1, 1)]).await;
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 1);
    assert_eq!(app.reserve(1, 8, &[(1, 1)]).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn with_auth_on_the_user_comes_from_a_verified_token() {
    let app = TestApp::spawn_with(|c| c.http.jwt_secret = Some(SECRET.parse().unwrap())).await;
    app.create_coupon(1, 10, &[]);
    app.create_sale(2, &["1:100:10"], &[]);
    let token = |user: &str, ttl: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
            .args(["token", "--user", user, "--ttl", ttl])
            .env("FLASHSALE_JWT_SECRET", SECRET)
            .output()
            .unwrap();
        assert!(out.status.success());
        format!("Bearer {}", String::from_utf8(out.stdout).unwrap().trim())
    };
    let seven = token("7", "1h");

    let anonymous = app.post("/v1/coupons/1/issue", &json!({"user_id": 7}), &[]).await;
    assert_eq!((anonymous.status, anonymous.body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let issued = app.post("/v1/coupons/1/issue", &json!({}), &[("authorization", &seven)]).await;
    assert_eq!(issued.status, StatusCode::CREATED);
    assert_eq!(issued.body["user_id"], 7);
    let mismatch = app.post("/v1/coupons/1/issue", &json!({"user_id": 8}), &[("authorization", &seven)]).await;
    assert_eq!(mismatch.status, StatusCode::UNAUTHORIZED);
    let forged = app.post("/v1/coupons/1/issue", &json!({}), &[("authorization", "Bearer a.b.c")]).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.coupon(1).await.body["issued"], 1, "only the verified request counted");

    let order = app
        .post("/v1/sales/2/orders", &json!({"items": [{"sku": 1, "quantity": 1}]}), &[("authorization", &seven)])
        .await;
    assert_eq!(order.status, StatusCode::CREATED);
    let id = order.body["order_id"].as_u64().unwrap();
    let eight = token("8", "1h");
    let theirs = app.post(&format!("/v1/sales/2/orders/{id}/cancel"), &json!(null), &[("authorization", &eight)]).await;
    let answer = (theirs.status, theirs.body["error"].as_str());
    assert_eq!(
        answer,
        (StatusCode::NOT_FOUND, Some("unknown_order")),
        "only the owner cancels; to others it is unknown"
    );
    let mine = app.post(&format!("/v1/sales/2/orders/{id}/cancel"), &json!(null), &[("authorization", &seven)]).await;
    assert_eq!(mine.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations_past_the_sales_admission_cap_get_429() {
    let app = std::sync::Arc::new(TestApp::spawn_with(|c| c.http.sale_admission = 1).await);
    app.create_sale(1, &["1:100:100000"], &[]);
    app.create_sale(2, &["1:100:100000"], &[]);
    let mut tasks = tokio::task::JoinSet::new();
    for user in 0..300 {
        let app = app.clone();
        tasks.spawn(async move { app.reserve(1, user, &[(1, 1)]).await.status });
    }
    let (mut created, mut capped) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => capped += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(capped > 0, "300 at once exceed one in flight");
    assert!(created > 0);
    assert_eq!(app.remaining(1).await[&1], 100_000 - created, "a capped request took nothing");
    assert_eq!(app.reserve(2, 1, &[(1, 1)]).await.status, StatusCode::CREATED, "other sales are not affected");
}
