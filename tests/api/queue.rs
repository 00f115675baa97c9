//! The waiting room (`sale|coupon create --queue`): joins, polls, admissions in
//! order at the set rate, the pre-queue's draw, sold out, the admission gate on
//! reserving and issuing, the join limit and proof of work — through the HTTP
//! API and the CLI, on the real servers (what rooms survive: queue_survives.rs).

use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::{helpers::TestApp, requests::Response};

pub(crate) const QUEUE_SECRET: &str = "a-queue-secret-for-tests";

/// A service that signs tickets (the queue routes need a secret).
pub(crate) async fn app() -> TestApp {
    TestApp::spawn_with(|c| c.http.queue_secret = Some(QUEUE_SECRET.parse().unwrap())).await
}

impl TestApp {
    pub(crate) async fn join(&self, sale: u64, user: u64) -> Response {
        self.post(&format!("/v1/sales/{sale}/queue"), &json!({ "user_id": user }), &[]).await
    }

    async fn poll(&self, sale: u64, ticket: &str) -> Response {
        self.get(&format!("/v1/sales/{sale}/queue/{ticket}")).await
    }

    async fn reserve_admitted(&self, sale: u64, user: u64, sku: u64, admission: Option<&str>) -> Response {
        let headers: Vec<(&str, &str)> = admission.map(|a| ("flashsale-admission", a)).into_iter().collect();
        let body = json!({ "user_id": user, "items": [{ "sku": sku, "quantity": 1 }] });
        self.post(&format!("/v1/sales/{sale}/orders"), &body, &headers).await
    }
}

/// Polls every ticket until `done` holds for the last answers, or `limit` passes.
async fn poll_all(
    app: &TestApp,
    sale: u64,
    tickets: &[String],
    limit: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let mut answers = Vec::with_capacity(tickets.len());
        for t in tickets {
            let r = app.poll(sale, t).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            answers.push(r.body);
        }
        if done(&answers) || Instant::now() > deadline {
            return answers;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn state(v: &Value) -> &str {
    v["state"].as_str().unwrap()
}

#[tokio::test]
async fn joins_are_admitted_in_order_and_only_the_admitted_reserve() {
    let app = app().await;
    app.create_sale(1, &["1:100:100"], &["--queue", "--admit-per-second", "10"]);
    let mut tickets = Vec::new();
    for user in 1..=20u64 {
        let r = app.join(1, user).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["position"], user, "joins after the start are served in join order");
        assert_eq!(r.body["state"], "waiting");
        tickets.push(r.body["ticket"].as_str().unwrap().to_string());
    }
    let again = app.join(1, 3).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!((again.body["ticket"].as_str().unwrap(), &again.body["position"]), (tickets[2].as_str(), &json!(3)));

    // Not admitted yet, none, forged, or another user's: 403, nothing reserved.
    assert_eq!(app.reserve_admitted(1, 20, 1, None).await.body["error"], "not_admitted");
    assert_eq!(app.reserve_admitted(1, 20, 1, Some("s1.20.9999999999999.00")).await.body["error"], "not_admitted");

    // At 10 a second, 20 joins take about 2 s; at every look the admitted are a prefix of the line.
    let started = Instant::now();
    let mut first_all = None;
    while first_all.is_none() {
        let answers = poll_all(&app, 1, &tickets, Duration::ZERO, |_| true).await;
        let admitted: Vec<bool> = answers.iter().map(|a| state(a) == "admitted").collect();
        let n = admitted.iter().filter(|a| **a).count();
        assert!(admitted.iter().take(n).all(|a| *a), "admitted out of order: {admitted:?}");
        let elapsed = started.elapsed().as_secs_f64();
        assert!((n as f64) <= 10.0 * elapsed + 3.0, "{n} admitted after {elapsed:.2} s at 10/s");
        if n == tickets.len() {
            first_all = Some(answers);
        }
        assert!(started.elapsed() < Duration::from_secs(15), "not all admitted: {admitted:?}");
    }
    assert!(started.elapsed() >= Duration::from_millis(1200), "20 admitted in {:?} at 10/s", started.elapsed());
    let answers = first_all.unwrap();
    let admission = |user: u64| answers[user as usize - 1]["admission"].as_str().unwrap().to_string();
    assert!(answers[0]["admitted_until"].as_str().unwrap().ends_with('Z'));

    // Admitted, yet without the header, or with another user's: refused.
    assert_eq!(app.reserve_admitted(1, 1, 1, None).await.body["error"], "not_admitted");
    assert_eq!(app.reserve_admitted(1, 2, 1, Some(&admission(1))).await.body["error"], "not_admitted");
    let reserved = app.reserve_admitted(1, 1, 1, Some(&admission(1))).await;
    assert_eq!(reserved.status, StatusCode::CREATED, "{:?}", reserved.body);
    // An admission is used once.
    assert_eq!(app.reserve_admitted(1, 1, 1, Some(&admission(1))).await.body["error"], "not_admitted");
    assert_eq!(app.remaining(1).await[&1], 99);
}

#[tokio::test]
async fn the_pre_queue_is_drawn_at_the_start_ahead_of_later_joins() {
    let app = app().await;
    let starts = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() + Duration::from_secs(3))
        .as_secs()
        .to_string();
    app.create_sale(2, &["1:100:1000"], &["--starts-at", &starts, "--queue", "--queue-opens-before", "1m"]);
    let mut tickets = Vec::new();
    for user in 1..=200u64 {
        let r = app.join(2, user).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["position"], Value::Null, "no place before the draw");
        tickets.push(r.body["ticket"].as_str().unwrap().to_string());
    }
    let reserve_early = app.reserve_admitted(2, 1, 1, None).await;
    assert_eq!(reserve_early.status, StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let late = app.join(2, 1000).await;
    assert_eq!(late.body["position"], 201, "{:?}", late.body);
    let answers =
        poll_all(&app, 2, &tickets, Duration::from_secs(10), |a| a.iter().all(|v| v["position"].is_u64())).await;
    let positions: Vec<u64> = answers.iter().map(|a| a["position"].as_u64().unwrap()).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=200).collect::<Vec<_>>(), "the pre-queue holds places 1..200");
    // Drawn, not in join order: Spearman's rank correlation of a random order is
    // about 0 (sd 0.07 for 200); join order would be 1.
    let n = 200.0;
    let d2: f64 = positions.iter().enumerate().map(|(i, p)| (i as f64 + 1.0 - *p as f64).powi(2)).sum();
    let rho = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
    assert!(rho.abs() < 0.3, "pre-queue places follow join order (rho {rho:.2}): {positions:?}");
}

#[tokio::test]
async fn admissions_never_outnumber_the_units_and_sold_out_reaches_every_ticket() {
    let app = app().await;
    app.create_sale(3, &["1:100:3"], &["--queue"]);
    let mut tickets = Vec::new();
    for user in 1..=8u64 {
        tickets.push(app.join(3, user).await.body["ticket"].as_str().unwrap().to_string());
    }
    let answers = poll_all(&app, 3, &tickets, Duration::from_secs(5), |a| {
        a.iter().filter(|v| state(v) == "admitted").count() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answers2 = poll_all(&app, 3, &tickets, Duration::ZERO, |_| true).await;
    let admitted: Vec<usize> = (0..8).filter(|i| state(&answers2[*i]) == "admitted").collect();
    assert_eq!(admitted, vec![0, 1, 2], "3 units: 3 admitted, the first three ({answers:?})");

    let mut orders = Vec::new();
    for i in 0..3u64 {
        let r = app.reserve_admitted(3, i + 1, 1, answers2[i as usize]["admission"].as_str()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        orders.push(r.body["order_id"].as_u64().unwrap());
    }
    let sold = Instant::now();
    let waiting = &tickets[3..];
    let answers =
        poll_all(&app, 3, waiting, Duration::from_secs(3), |a| a.iter().all(|v| state(v) == "sold_out")).await;
    assert!(answers.iter().all(|v| state(v) == "sold_out"), "{answers:?}");
    assert!(sold.elapsed() < Duration::from_secs(1), "sold_out reached every ticket after {:?}", sold.elapsed());
    assert_eq!(app.join(3, 99).await.body["error"], "sold_out");

    // A unit back (a cancel): the next in line is admitted.
    assert_eq!(app.cancel(3, orders[0]).await.status, StatusCode::OK);
    let answers = poll_all(&app, 3, waiting, Duration::from_secs(5), |a| state(&a[0]) == "admitted").await;
    assert_eq!(state(&answers[0]), "admitted", "{answers:?}");
    assert!(answers[1..].iter().all(|v| state(v) != "admitted"), "{answers:?}");
}

/// A ticket not polled within the poll grace is skipped when its turn comes
/// (its next poll: `expired`; joining again goes to the back), and an
/// admission unused at `admitted_until` lapses (refused at the reservation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_tickets_are_skipped_and_unused_admissions_lapse() {
    let app = app().await;
    let args = ["--queue", "--admit-per-second", "1", "--poll-grace", "3s", "--admission-ttl", "1s"];
    app.create_sale(23, &["1:100:100"], &args);
    let mut tickets = Vec::new();
    for user in 1..=6u64 {
        tickets.push(app.join(23, user).await.body["ticket"].as_str().unwrap().to_string());
    }
    // Everyone but user 5 keeps polling; each admission is noted when first seen.
    let mut admitted_at: Vec<Option<Instant>> = vec![None; 6];
    let mut first_admission: Vec<Option<String>> = vec![None; 6];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut fifth = Value::Null;
    while admitted_at[5].is_none() && Instant::now() < deadline {
        for i in (0..6).filter(|&i| i != 4) {
            let v = app.poll(23, &tickets[i]).await.body;
            if state(&v) == "admitted" && admitted_at[i].is_none() {
                admitted_at[i] = Some(Instant::now());
                first_admission[i] = v["admission"].as_str().map(str::to_string);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(admitted_at.iter().enumerate().all(|(i, a)| (i == 4) == a.is_none()), "{admitted_at:?}");
    let order: Vec<Instant> = [0, 1, 2, 3, 5].iter().map(|&i| admitted_at[i].unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "admitted in order, user 5 skipped: {admitted_at:?}");
    for _ in 0..20 {
        fifth = app.poll(23, &tickets[4]).await.body;
        if state(&fifth) == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state(&fifth), "expired", "not polled within the grace: skipped ({fifth})");
    let again = app.join(23, 5).await;
    assert_eq!((again.status, &again.body["position"]), (StatusCode::CREATED, &json!(7)), "{:?}", again.body);

    // User 1's admission (1 s) lapsed long ago, unused.
    let first = app.poll(23, &tickets[0]).await.body;
    assert_eq!(state(&first), "expired", "{first}");
    let r = app.reserve_admitted(23, 1, 1, first_admission[0].as_deref()).await;
    assert_eq!((r.status, &r.body["error"]), (StatusCode::FORBIDDEN, &json!("not_admitted")), "{:?}", r.body);
}

/// The live view's room cards read `queue` in the stats; /metrics counts admissions.
#[tokio::test]
async fn the_live_view_and_metrics_follow_a_room_until_it_sells_out() {
    let app = app().await;
    app.create_sale(21, &["1:100:2"], &["--queue"]);
    app.create_sale(22, &["1:100:2"], &[]);
    assert_eq!(app.get("/v1/dashboard/stats?sale=22").await.body["queue"], Value::Null, "no room, no cards");
    let mut tickets = Vec::new();
    for user in 1..=5u64 {
        tickets.push(app.join(21, user).await.body["ticket"].as_str().unwrap().to_string());
    }
    let answers = poll_all(&app, 21, &tickets, Duration::from_secs(5), |a| {
        a.iter().filter(|v| state(v) == "admitted").count() >= 2
    })
    .await;
    let stats = app.get("/v1/dashboard/stats?sale=21").await.body;
    let queue = &stats["queue"];
    assert_eq!(queue["joins"], 5, "{stats}");
    assert_eq!(queue["admitted_total"], 2, "{stats}");
    assert_eq!(queue["waiting"], 3, "two served, three in line: {stats}");
    assert_eq!(queue["sold_out_at_ms"], Value::Null, "{stats}");
    let metrics = app.try_request_raw("/metrics").await.2;
    let admitted = metric(&metrics, "flashsale_queue_admitted_total");
    assert!(admitted >= 2.0, "admissions counted: {admitted}");
    assert!(metrics.contains("flashsale_queue_waiting "), "the waiting gauge is exported");

    for i in 0..2u64 {
        let r = app.reserve_admitted(21, i + 1, 1, answers[i as usize]["admission"].as_str()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let stats = loop {
        let stats = app.get("/v1/dashboard/stats?sale=21").await.body;
        if stats["queue"]["sold_out_at_ms"].is_u64() || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (sold_out, starts) = (stats["queue"]["sold_out_at_ms"].as_u64(), stats["queue"]["starts_at_ms"].as_u64());
    assert!(sold_out.is_some() && sold_out >= starts, "the sold-out time shows: {stats}");
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

#[tokio::test]
async fn queue_routes_refuse_clearly() {
    let app = app().await;
    app.create_sale(4, &["1:100:10"], &[]);
    let r = app.join(4, 1).await;
    assert_eq!((r.status, r.body["error"].as_str()), (StatusCode::CONFLICT, Some("no_queue")));
    app.create_sale(5, &["1:100:10"], &["--queue"]);
    let ticket = app.join(5, 1).await.body["ticket"].as_str().unwrap().to_string();
    for bad in [ticket.replace("s5.", "s4."), ticket.replace("s5.1.", "s5.2."), "nonsense".into(), "x".repeat(500)] {
        let r = app.poll(5, &bad).await;
        assert_eq!((r.status, r.body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_ticket")), "{bad}");
    }
    assert_eq!(app.poll(4, &ticket).await.body["error"], "invalid_ticket", "a ticket of another sale");
    assert_eq!(app.join(404, 1).await.body["error"], "unknown_sale");
    let r = app.post("/v1/coupons/404/queue", &json!({ "user_id": 1 }), &[]).await;
    assert_eq!((r.status, r.body["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_coupon")));

    let unset = TestApp::spawn().await;
    unset.create_sale(6, &["1:100:10"], &["--queue"]);
    let r = unset.join(6, 1).await;
    assert_eq!((r.status, r.body["error"].as_str()), (StatusCode::FORBIDDEN, Some("queue_not_configured")));
    assert_eq!(unset.reserve_admitted(6, 1, 1, None).await.body["error"], "not_admitted");

    let bucketed = app.cli(&["coupon", "create", "--id", "9", "--quantity", "9", "--buckets", "2", "--queue"]);
    assert!(bucketed.code != Some(0) && bucketed.stderr.contains("--queue is for campaigns without --buckets"));

    let shown = app.cli(&["queue", "show", "--sale", "5"]).success().stdout;
    assert!(shown.contains("joined      1") && shown.contains("limit 1000"), "{shown}");
}

/// How many of `tickets` (in line order) are admitted: they are a prefix, so a binary search.
async fn admitted_count(app: &TestApp, sale: u64, tickets: &[String]) -> usize {
    let (mut lo, mut hi) = (0, tickets.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let r = app.poll(sale, &tickets[mid]).await;
        if state(&r.body) == "admitted" {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[tokio::test]
async fn two_instances_admit_at_the_set_rate_together() {
    let app = app().await;
    let other = app.another_instance(|_| {}).await;
    app.create_sale(7, &["1:100:10000"], &["--queue", "--admit-per-second", "40"]);
    let mut tickets = Vec::new();
    for user in 1..=400u64 {
        let via = if user % 2 == 0 { &app } else { &other };
        tickets.push(via.join(7, user).await.body["ticket"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (t0, n0) = (Instant::now(), admitted_count(&app, 7, &tickets).await);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let n1 = admitted_count(&other, 7, &tickets).await;
    let rate = (n1 - n0) as f64 / t0.elapsed().as_secs_f64();
    assert!((36.0..=44.0).contains(&rate), "{rate:.1} admitted/s with two instances at 40/s ({n0} -> {n1})");
}

#[tokio::test]
async fn a_campaign_with_a_room_issues_only_to_the_admitted_until_none_is_left() {
    let app = app().await;
    app.create_coupon(8, 3, &["--queue", "--admit-per-second", "100"]);
    let mut tickets = Vec::new();
    for user in 1..=5u64 {
        let r = app.post("/v1/coupons/8/queue", &json!({ "user_id": user }), &[]).await;
        assert_eq!((r.status, &r.body["position"]), (StatusCode::CREATED, &json!(user)), "{:?}", r.body);
        tickets.push(r.body["ticket"].as_str().unwrap().to_string());
    }
    let poll = |i: usize| {
        let path = format!("/v1/coupons/8/queue/{}", tickets[i]);
        let app = &app;
        async move { app.get(&path).await }
    };
    // Three coupons: three admitted, the other two wait.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut answers = Vec::new();
    while answers.iter().filter(|a| state(a) == "admitted").count() < 3 {
        assert!(Instant::now() < deadline, "three admitted: {answers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        answers.clear();
        for i in 0..5 {
            answers.push(poll(i).await.body);
        }
    }
    assert_eq!(
        answers.iter().map(state).collect::<Vec<_>>(),
        ["admitted", "admitted", "admitted", "waiting", "waiting"]
    );
    let admission = |i: usize| answers[i]["admission"].as_str().unwrap().to_string();
    let issue = |user: u64, admission: Option<String>| {
        let headers: Vec<(&str, String)> = admission.map(|a| ("flashsale-admission", a)).into_iter().collect();
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post("/v1/coupons/8/issue", &json!({ "user_id": user }), &headers).await
        }
    };
    let refused = issue(1, None).await;
    assert_eq!((refused.status, refused.body["error"].as_str()), (StatusCode::FORBIDDEN, Some("not_admitted")));
    assert_eq!(issue(2, Some(admission(0))).await.body["error"], "not_admitted", "another user's admission");
    assert_eq!(issue(4, None).await.body["error"], "not_admitted", "still waiting");
    for i in 0..3 {
        let issued = issue(i as u64 + 1, Some(admission(i))).await;
        assert_eq!(issued.status, StatusCode::CREATED, "{:?}", issued.body);
    }
    assert_eq!(issue(1, Some(admission(0))).await.body["error"], "already_issued");
    // None left: the waiting learn it within a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(state(&poll(3).await.body), "sold_out");
    let late = app.post("/v1/coupons/8/queue", &json!({ "user_id": 9 }), &[]).await;
    assert_eq!((late.status, late.body["error"].as_str()), (StatusCode::GONE, Some("sold_out")));
    // A campaign's ticket is no sale's, and the other way round.
    app.create_sale(8, &["1:100:10"], &["--queue"]);
    assert_eq!(app.poll(8, &tickets[0]).await.body["error"], "invalid_ticket");
    let shown = app.cli(&["queue", "show", "--coupon", "8"]).success().stdout;
    assert!(shown.contains("coupon 8 waiting room") && shown.contains("joined      5"), "{shown}");
}

#[tokio::test]
async fn one_address_may_join_only_so_often() {
    let app = TestApp::spawn_with(|c| {
        c.http.queue_secret = Some(QUEUE_SECRET.parse().unwrap());
        c.http.queue_joins_per_ip = 3;
    })
    .await;
    app.create_sale(10, &["1:100:10"], &["--queue"]);
    for user in 1..=3 {
        assert_eq!(app.join(10, user).await.status, StatusCode::CREATED);
    }
    let r = app.join(10, 4).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")),
        "{:?}",
        r.body
    );
    assert!(r.headers.contains_key("retry-after"));
    // Polls and other routes are not joins.
    assert_eq!(app.get("/v1/sales/10").await.status, StatusCode::OK);
}

/// Solves a challenge of `GET /v1/queue/challenge` as the ALTCHA widget would.
pub(crate) fn solve(challenge: &Value) -> String {
    use base64::Engine;
    let challenge: altcha::Challenge = serde_json::from_value(challenge.clone()).unwrap();
    let solution = altcha::solve_challenge(altcha::SolveChallengeOptions::new(&challenge)).unwrap().unwrap();
    let payload = serde_json::to_vec(&altcha::Payload { challenge, solution }).unwrap();
    base64::engine::general_purpose::STANDARD.encode(payload)
}

#[tokio::test]
async fn a_room_with_proof_of_work_lets_in_only_solved_unused_challenges_of_its_own() {
    let app = app().await;
    app.create_sale(12, &["1:100:10"], &["--queue", "--pow-difficulty", "50"]);
    app.create_sale(13, &["1:100:10"], &["--queue", "--pow-difficulty", "50"]);
    app.create_sale(14, &["1:100:10"], &["--queue"]);
    let join = |user: u64, altcha: Option<&str>| {
        let mut body = json!({ "user_id": user });
        if let Some(a) = altcha {
            body["altcha"] = a.into();
        }
        let app = &app;
        async move { app.post("/v1/sales/12/queue", &body, &[]).await }
    };
    let r = join(1, None).await;
    assert_eq!((r.status, r.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("pow_required")), "{:?}", r.body);

    let challenge = app.get("/v1/queue/challenge?sale=12").await;
    assert_eq!(challenge.status, StatusCode::OK, "{:?}", challenge.body);
    assert_eq!(challenge.body["parameters"]["algorithm"], "PBKDF2/SHA-256");
    let payload = solve(&challenge.body);
    let joined = join(1, Some(&payload)).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{:?}", joined.body);
    let reused = join(2, Some(&payload)).await;
    assert_eq!((reused.status, reused.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("pow_invalid")));
    let elsewhere = solve(&app.get("/v1/queue/challenge?sale=13").await.body);
    assert_eq!(join(2, Some(&elsewhere)).await.body["error"], "pow_invalid", "a challenge of another room");
    assert_eq!(join(2, Some("bm90IGEgcGF5bG9hZA==")).await.body["error"], "pow_invalid");
    let fresh = solve(&app.get("/v1/queue/challenge?sale=12").await.body);
    assert_eq!(join(2, Some(&fresh)).await.status, StatusCode::CREATED);

    for (query, status, code) in [
        ("?sale=14", StatusCode::CONFLICT, "pow_not_required"),
        ("?sale=404", StatusCode::CONFLICT, "no_queue"),
        ("", StatusCode::BAD_REQUEST, "invalid_query"),
        ("?sale=x", StatusCode::BAD_REQUEST, "invalid_query"),
    ] {
        let r = app.get(&format!("/v1/queue/challenge{query}")).await;
        assert_eq!((r.status, r.body["error"].as_str()), (status, Some(code)), "{query}");
    }
}
