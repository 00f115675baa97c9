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

use flashsale::{coupons::Coupons, keys::Keys, redis, sales::Sales, scripts::Scripts};
use hyper::StatusCode;

use crate::{helpers::TestApp, requests::Response};

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
    eprintln!("{what}: answers {counts:?}; {} users hold one in Redis", holders.len());
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
    assert!(counts.get(&Answer::Timeout).copied().unwrap_or(0) > 0, "{what}: no request timed out: {counts:?}");
}

async fn sales_of(app: &TestApp) -> Sales {
    let pool = redis::pool(&app.config.redis).await.unwrap();
    let scripts = Arc::new(Scripts::load(pool.next()).await.unwrap());
    Sales::new(pool, Keys::new(app.config.redis.key_prefix.clone()), scripts)
}

async fn coupons_of(app: &TestApp) -> Coupons {
    let pool = redis::pool(&app.config.redis).await.unwrap();
    let scripts = Arc::new(Scripts::load(pool.next()).await.unwrap());
    Coupons::new(pool, Keys::new(app.config.redis.key_prefix.clone()), scripts)
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
