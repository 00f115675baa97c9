//! An answer tells the truth: under a spike with a tiny request timeout, many
//! requests are answered 503 `timeout` while queued. Afterwards every order
//! (coupon) Redis holds belongs to a user answered 201, and no user answered
//! an error that says "not done" holds one.
//!
//! Each user sends exactly one request, so users match answers to effects.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use flashsale::{coupons::Coupons, keys::Keys, placement::Placement, redis, sales::Sales, scripts::Scripts};
use hyper::StatusCode;
use serde_json::json;

use crate::{
    helpers::{OwnRedis, TestApp},
    requests::Response,
};

/// Requests in the spike, each from its own user, all in flight at once.
const SPIKE: u64 = 2_500;
/// The request timeout of these tests: far below a spike's queue wait.
const TINY_TIMEOUT_MS: u64 = 2;

/// What one user was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Answer {
    Created,
    /// 503 `timeout`: never sent, not done.
    Timeout,
    /// 503 `outcome_unknown`: may or may not have happened.
    Unknown,
    /// The connection failed: the client cannot know either.
    NoReply,
}

fn classify(user: u64, res: Result<Response, String>) -> (Answer, Option<u64>) {
    let Ok(res) = res else { return (Answer::NoReply, None) };
    match (res.status, res.body["error"].as_str()) {
        (StatusCode::CREATED, _) => (Answer::Created, res.body["order_id"].as_u64()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("timeout")) => (Answer::Timeout, None),
        (StatusCode::SERVICE_UNAVAILABLE, Some("outcome_unknown")) => {
            assert!(res.headers.contains_key("retry-after"), "outcome_unknown carries Retry-After");
            (Answer::Unknown, None)
        }
        (status, _) => panic!("user {user}: unexpected {status}: {}", res.body),
    }
}

/// Sends one request per user in `users` at once (one connection each, as
/// the pool has no idle one to share) and collects who was answered what.
async fn spike<F, Fut>(app: &Arc<TestApp>, users: std::ops::Range<u64>, send: F) -> BTreeMap<u64, (Answer, Option<u64>)>
where
    F: Fn(Arc<TestApp>, u64) -> Fut,
    Fut: std::future::Future<Output = Result<Response, String>> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for user in users {
        let request = send(app.clone(), user);
        tasks.spawn(async move { (user, classify(user, request.await)) });
    }
    tasks.join_all().await.into_iter().collect()
}

/// One request at a time from fresh users until one is answered 201: every
/// job queued before it has then been taken off the queue (it is FIFO), so
/// nothing of the spike is still waiting to be sent when Redis is read.
async fn until_one_created<F, Fut>(app: &Arc<TestApp>, first_user: u64, send: F) -> BTreeMap<u64, (Answer, Option<u64>)>
where
    F: Fn(Arc<TestApp>, u64) -> Fut,
    Fut: std::future::Future<Output = Result<Response, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answers = BTreeMap::new();
    for user in first_user.. {
        let answer = classify(user, send(app.clone(), user).await);
        answers.insert(user, answer);
        if answer.0 == Answer::Created {
            break;
        }
        assert!(Instant::now() < deadline, "no request answered 201 within 30 s: {answers:?}");
    }
    answers
}

fn counts(answers: &BTreeMap<u64, (Answer, Option<u64>)>) -> BTreeMap<Answer, usize> {
    let mut counts = BTreeMap::new();
    for (answer, _) in answers.values() {
        *counts.entry(*answer).or_default() += 1;
    }
    counts
}

/// Every user holding something was answered 201 (or was told the outcome is
/// unknown); every user answered 201 holds it; no user told "not done" does.
fn assert_truthful(what: &str, answers: &BTreeMap<u64, (Answer, Option<u64>)>, holders: &BTreeSet<u64>) {
    let counts = counts(answers);
    let n = |answer| counts.get(&answer).copied().unwrap_or(0);
    eprintln!(
        "{what}: {} answered 201, {} 503 timeout, {} 503 outcome_unknown, {} no reply; {} users hold one in Redis",
        n(Answer::Created),
        n(Answer::Timeout),
        n(Answer::Unknown),
        n(Answer::NoReply),
        holders.len()
    );
    for user in holders {
        assert!(answers.contains_key(user), "{what}: user {user} sent nothing yet holds one");
    }
    let lied: Vec<u64> = answers
        .iter()
        .filter(|(user, (answer, _))| *answer == Answer::Timeout && holders.contains(user))
        .map(|(user, _)| *user)
        .collect();
    assert!(
        lied.is_empty(),
        "{what}: {} users answered 503 `timeout` hold one, e.g. {:?}",
        lied.len(),
        &lied[..lied.len().min(5)]
    );
    for (user, (answer, _)) in answers {
        if *answer == Answer::Created {
            assert!(holders.contains(user), "{what}: user {user} was answered 201 but holds nothing");
        }
    }
    assert!(n(Answer::Timeout) > 0, "{what}: no request timed out: {counts:?}");
}

async fn sales_of(app: &TestApp) -> Sales {
    let pool = redis::pool(&app.config.redis).await.unwrap();
    let scripts = Arc::new(Scripts::load(pool.next(), Default::default()).await.unwrap());
    let (ttl, max_orders) = (app.config.retention.idempotency_ttl, app.config.http.max_orders_per_user);
    let placement = Placement::detect(pool.next());
    Sales::new(pool, Keys::new(app.config.redis.key_prefix.clone()), scripts, placement, ttl, max_orders)
}

async fn coupons_of(app: &TestApp) -> Coupons {
    let pool = redis::pool(&app.config.redis).await.unwrap();
    let scripts = Arc::new(Scripts::load(pool.next(), Default::default()).await.unwrap());
    let placement = Placement::detect(pool.next());
    Coupons::new(pool, Keys::new(app.config.redis.key_prefix.clone()), scripts, &placement)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations_that_time_out_in_a_spike_leave_orders_only_for_users_answered_201() {
    let app = Arc::new(TestApp::spawn_with(|c| c.http.request_timeout_ms = TINY_TIMEOUT_MS).await);
    app.create_sale(41, &["1:100:1000000"], &[]);
    let reserve = |app: Arc<TestApp>, user: u64| async move { app.try_reserve(41, user, &[(1, 1)]).await };

    let mut answers = spike(&app, 1..SPIKE + 1, reserve).await;
    answers.extend(until_one_created(&app, SPIKE + 1, reserve).await);

    let orders = sales_of(&app).await.orders(41).await.unwrap();
    let holders: BTreeSet<u64> = orders.iter().map(|o| o.user_id).collect();
    assert_eq!(holders.len(), orders.len(), "each user sent one request, so holds at most one order");
    for order in &orders {
        if let Some((Answer::Created, Some(id))) = answers.get(&order.user_id) {
            assert_eq!(*id, order.order_id, "user {}: the 201 named this order", order.user_id);
        }
    }
    assert_truthful("reserve", &answers, &holders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coupon_issues_that_time_out_in_a_spike_go_only_to_users_answered_201() {
    let app = Arc::new(TestApp::spawn_with(|c| c.http.request_timeout_ms = TINY_TIMEOUT_MS).await);
    app.create_coupon(42, 1_000_000, &[]);
    let issue = |app: Arc<TestApp>, user: u64| async move { app.try_issue(42, user).await };

    let mut answers = spike(&app, 1..SPIKE + 1, issue).await;
    answers.extend(until_one_created(&app, SPIKE + 1, issue).await);

    let holders: BTreeSet<u64> = coupons_of(&app).await.users(42).await.unwrap().into_iter().collect();
    assert_truthful("issue", &answers, &holders);
}

/// Runs `redis-cli` against `url`.
fn redis_cli(url: &str, args: &[&str]) {
    let out = std::process::Command::new("redis-cli").arg("-u").arg(url).args(args).output().unwrap();
    assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn assert_outcome_unknown(res: &Response, retry_with: &str) {
    assert_eq!((res.status, res.body["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("outcome_unknown")));
    assert_eq!(res.headers["retry-after"], "1");
    let message = res.body["message"].as_str().unwrap();
    assert!(message.contains(retry_with), "the message says how to learn the truth: {message}");
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_answers_outcome_unknown_and_a_retry_tells_the_truth() {
    let redis = OwnRedis::start();
    let url = redis.url.clone();
    let app = TestApp::spawn_with(|c| {
        c.redis.redis_url = url;
        c.redis.redis_timeout_ms = 300;
    })
    .await;
    app.create_coupon(43, 10, &[]);
    app.create_sale(44, &["1:100:10"], &[]);
    let order = json!({"user_id": 1, "items": [{"sku": 1, "quantity": 1}]});
    let key = [("idempotency-key", "order-1")];

    // Redis holds every command for 1.5 s: the issue and the reservation are
    // sent, and no answer comes back within the Redis timeout.
    redis_cli(&redis.url, &["CLIENT", "PAUSE", "1500", "ALL"]);
    let (issue, reserve, read) =
        tokio::join!(app.issue(43, 1), app.post("/v1/sales/44/orders", &order, &key), app.coupon(43),);
    assert_outcome_unknown(&issue, "already_issued");
    assert_outcome_unknown(&reserve, "Idempotency-Key");
    assert_eq!(read.body["error"], "unavailable", "a read changed nothing: {}", read.body);

    // Once Redis answers again, each retry is safe and tells what happened.
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.coupon(43).await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "Redis answers again after its pause");
    }
    let issued = coupons_of(&app).await.users(43).await.unwrap().contains(&1);
    let retry = app.issue(43, 1).await;
    if issued {
        assert_eq!((retry.status, retry.body["error"].as_str()), (StatusCode::CONFLICT, Some("already_issued")));
    } else {
        assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    }
    let reserved = sales_of(&app).await.orders(44).await.unwrap();
    let retry = app.post("/v1/sales/44/orders", &order, &key).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    let replayed = retry.headers.get("idempotent-replayed").is_some();
    assert_eq!(replayed, !reserved.is_empty(), "the retry replays the order exactly when the first made one");
    let orders = sales_of(&app).await.orders(44).await.unwrap();
    assert_eq!(orders.len(), 1, "one order behind one key: {orders:?}");
    assert_eq!(orders[0].order_id, retry.body["order_id"].as_u64().unwrap());
    eprintln!("after the pause: coupon issued by the lost call: {issued}; order reserved by it: {replayed}");
}
