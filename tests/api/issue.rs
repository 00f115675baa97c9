//! `POST /v1/coupons/{id}/issue`: the race, dedup, windows and bad input.

use std::sync::Arc;

use hyper::StatusCode;

use crate::helpers::{distinct, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_users_race_for_a_hundred_coupons_and_exactly_a_hundred_win() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_coupon(42, 100, &[]);

    let mut tasks = tokio::task::JoinSet::new();
    for user in 1..=2000u64 {
        let app = app.clone();
        tasks.spawn(async move { (user, app.issue(42, user).await) });
    }
    let (mut winners, mut sold_out) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (user, res) = done.unwrap();
        match res.status {
            StatusCode::CREATED => {
                assert_eq!(res.body["coupon_id"], 42);
                assert_eq!(res.body["user_id"], user);
                assert!(res.body["issued_at"].as_str().unwrap().ends_with('Z'));
                winners.push(user);
            }
            StatusCode::GONE => {
                assert_eq!(res.body["error"], "sold_out");
                sold_out += 1;
            }
            other => panic!("unexpected {other}: {}", res.body),
        }
    }
    assert_eq!(winners.len(), 100);
    assert_eq!(sold_out, 1900);

    let campaign = app.coupon(42).await;
    assert_eq!(campaign.body["remaining"], 0);
    assert_eq!(campaign.body["issued"], 100);

    let rows = app.wait_for_rows(42, 100).await;
    assert_eq!(distinct(&rows), distinct(&winners), "MySQL holds exactly the winners");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_sending_fifty_requests_at_once_gets_exactly_one_coupon() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_coupon(7, 10, &[]);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let app = app.clone();
        tasks.spawn(async move { app.issue(7, 1234).await });
    }
    let (mut created, mut conflicts) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let res = done.unwrap();
        match res.status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                assert_eq!(res.body["error"], "already_issued");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {}", res.body),
        }
    }
    assert_eq!((created, conflicts), (1, 49));
    assert_eq!(app.coupon(7).await.body["remaining"], 9);
    assert_eq!(app.wait_for_rows(7, 1).await, vec![1234]);
}

#[tokio::test]
async fn issue_answers_201_with_the_remaining_stock() {
    let app = TestApp::spawn().await;
    app.create_coupon(1, 3, &[]);
    let res = app.issue(1, 10).await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(res.body["remaining"], 2);
    assert_eq!(res.headers["content-type"], "application/json");
}

#[tokio::test]
async fn issue_returns_403_not_started_before_the_window_opens() {
    let app = TestApp::spawn().await;
    let tomorrow =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 86_400).to_string();
    app.create_coupon(5, 10, &["--starts-at", &tomorrow]);
    let res = app.issue(5, 1).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.body["error"], "not_started");
    assert_eq!(app.coupon(5).await.body["remaining"], 10, "nothing taken");
}

#[tokio::test]
async fn issue_returns_403_ended_after_the_window_closes() {
    let app = TestApp::spawn().await;
    app.create_coupon(6, 10, &["--starts-at", "2020-01-01T00:00:00Z", "--ends-at", "2020-01-02T00:00:00Z"]);
    let res = app.issue(6, 1).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.body["error"], "ended");
    let campaign = app.coupon(6).await.body;
    assert_eq!(campaign["ends_at"], "2020-01-02T00:00:00.000Z");
    assert_eq!(campaign["remaining"], 10);
}

#[tokio::test]
async fn issue_returns_404_for_an_unknown_campaign() {
    let app = TestApp::spawn().await;
    let res = app.issue(999, 1).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.body["error"], "unknown_coupon");
    assert_eq!(app.coupon(999).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_bodies_get_400_naming_the_problem_and_take_nothing() {
    let app = TestApp::spawn().await;
    app.create_coupon(3, 5, &[]);
    let cases: &[(&[u8], &str)] = &[
        (b"{", "malformed_json"),
        (b"", "malformed_json"),
        (b"not json", "malformed_json"),
        (b"[7]", "invalid_body"),
        (b"7", "invalid_body"),
        (b"{}", "missing_field"),
        (br#"{"user":7}"#, "missing_field"),
        (br#"{"user_id":null}"#, "missing_field"),
        (br#"{"user_id":"7"}"#, "invalid_field"),
        (br#"{"user_id":-7}"#, "invalid_field"),
        (br#"{"user_id":7.5}"#, "invalid_field"),
        (br#"{"user_id":18446744073709551616}"#, "invalid_field"),
    ];
    for (body, code) in cases {
        let res = app.issue_raw(3, body).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(body));
        assert_eq!(res.body["error"], *code, "{}", String::from_utf8_lossy(body));
        assert!(res.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let res = app.issue_raw(3, br#"{"user_id":"7"}"#).await;
    assert!(res.body["message"].as_str().unwrap().contains("user_id"), "message names the field");
    assert_eq!(app.coupon(3).await.body["remaining"], 5);
}

#[tokio::test]
async fn a_bad_coupon_id_in_the_path_is_a_400() {
    let app = TestApp::spawn().await;
    let res = app.issue_raw_path("/v1/coupons/abc/issue", br#"{"user_id":1}"#).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.body["error"], "invalid_coupon_id");
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_takes_nothing() {
    let app = TestApp::spawn().await;
    app.create_coupon(4, 5, &[]);
    let mut body = br#"{"user_id":1,"pad":""#.to_vec();
    body.extend(std::iter::repeat_n(b'x', 8192));
    body.extend(br#""}"#);
    let res = app.issue_raw(4, &body).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.body["error"], "payload_too_large");
    assert_eq!(app.coupon(4).await.body["remaining"], 5);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    let res = app.request(hyper::Method::GET, "/nope", None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.body["error"], "not_found");
    let res = app.request(hyper::Method::GET, "/v1/coupons/1/issue", None).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers["allow"], "POST");
}
