//! The cheap, safe edge: the ops routes on a listener of their own, off the
//! public port, and /readyz answered from a check at most a second old.

use std::process::Command;

use hyper::{Method, StatusCode};

use crate::helpers::{free_port, OwnRedis, TestApp};

async fn get(addr: &str, path: &str) -> (StatusCode, String) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let req = hyper::Request::get(format!("http://{addr}{path}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let res = client.request(req).await.expect("the ops listener answers");
    let status = res.status();
    let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn with_an_ops_listener_the_ops_routes_leave_the_public_port() {
    let ops = format!("127.0.0.1:{}", free_port());
    let app = TestApp::spawn_with(|c| c.http.metrics_listen = Some(ops.parse().unwrap())).await;
    app.create_coupon(1, 10, &[]);
    assert_eq!(app.issue(1, 7).await.status, StatusCode::CREATED, "the API stays public");

    for path in ["/metrics", "/dashboard", "/v1/dashboard/stats?coupon=1"] {
        let public = app.request(Method::GET, path, None).await;
        assert_eq!(public.status, StatusCode::NOT_FOUND, "{path} on the public port");
        assert_eq!(public.body["error"], "not_found");
        let (status, body) = get(&ops, path).await;
        assert_eq!(status, StatusCode::OK, "{path} on the ops port: {body}");
    }
    // Readiness on both; only the ops port names the Redis primary.
    let public = app.get("/readyz").await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.body);
    assert!(public.body.get("redis_primary").is_none(), "no address on the public port: {}", public.body);
    let (status, body) = get(&ops, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("redis_primary"), "{body}");
    assert!(get(&ops, "/metrics").await.1.contains("flashsale_http_requests_total"));
    let (status, _) = get(&ops, "/v1/coupons/1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the API is not on the ops port");
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK, "liveness stays on both");
    assert_eq!(get(&ops, "/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn by_default_the_public_port_serves_no_ops_routes_and_readiness_names_no_server() {
    let app = TestApp::spawn_with(|c| c.http.ops_on_main = false).await;
    app.create_coupon(1, 10, &[]);
    for path in ["/metrics", "/dashboard", "/v1/dashboard/stats?coupon=1"] {
        let public = app.request(Method::GET, path, None).await;
        assert_eq!(
            (public.status, public.body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
    let ready = app.get("/readyz").await;
    assert_eq!((ready.status, ready.body["redis"].as_str()), (StatusCode::OK, Some("ok")), "{}", ready.body);
    let text = ready.body.to_string();
    assert!(ready.body.get("redis_primary").is_none() && !text.contains("127.0.0.1"), "{text}");
    // Auth is off and this is no demo: readiness says so (and the log, every minute).
    assert!(ready.body["warning"].as_str().is_some_and(|w| w.starts_with("auth is off")), "{text}");
    drop(app);

    let demo = TestApp::spawn_with(|c| c.http.demo = true).await;
    assert!(demo.get("/readyz").await.body.get("warning").is_none(), "a demo expects auth off");
    drop(demo);
    let with_auth = crate::wallet::with_auth().await;
    assert!(with_auth.get("/readyz").await.body.get("warning").is_none());
}

/// Times Redis ran PING, from `INFO commandstats`.
fn pings(url: &str) -> u64 {
    let out = Command::new("redis-cli").args(["-u", url, "INFO", "commandstats"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn readyz_probes_the_servers_at_most_once_a_second_however_often_it_is_asked() {
    let redis = OwnRedis::start();
    let url = redis.url.clone();
    let app = TestApp::spawn_with(|c| c.redis.redis_url = url).await;
    let before = pings(&redis.url);
    let started = std::time::Instant::now();
    let answers = readyz_answers(&app, 300).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(answers.iter().all(|s| *s == StatusCode::OK), "every /readyz answered 200");
    let probes = pings(&redis.url) - before;
    let allowed = elapsed.ceil() as u64 + 1;
    assert!(probes <= allowed, "{probes} Redis probes for 300 /readyz calls in {elapsed:.2} s (at most {allowed})");
}

async fn readyz_answers(app: &TestApp, n: usize) -> Vec<StatusCode> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(app.request(Method::GET, "/readyz", None).await.status);
    }
    out
}
