//! The live view in a real browser: headless Chromium loads `GET /dashboard`
//! for one campaign, a short spike of issues runs, and the numbers the page
//! shows must follow what the API and MySQL report.
//!
//! Remaining stock and MySQL rows belong to the campaign and are checked
//! exactly. Requests/s, p99 and the lag come from process-wide metrics (every
//! app this test binary runs in parallel adds to them), so they are checked for
//! moving, not for exact values. The page is read from the `data-value` of each
//! number; its text is checked to show the same digits.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use hyper::StatusCode;
use serde_json::Value;
use tokio::time::{interval, sleep, MissedTickBehavior};

use crate::{
    helpers::TestApp,
    webdriver::{require_chromium, Browser},
};

const COUPON: u64 = 7_301;
const STOCK: u64 = 5_000;
/// The spike: `WORKERS` tasks, each issuing every `PACE`, for `SPIKE_FOR` or
/// until `SPIKE_CAP` issues (about 1,000 issues/s when the box keeps up).
const WORKERS: u64 = 20;
const PACE: Duration = Duration::from_millis(20);
const SPIKE_FOR: Duration = Duration::from_secs(3);
const SPIKE_CAP: u64 = 3_000;
/// How long the page may take to catch up with the truth after the spike.
const SETTLE_WITHIN: Duration = Duration::from_secs(20);

/// Every number on the page: its text, raw value and how many polls it showed.
const READ_PAGE: &str = r#"
const read = id => {
  const e = document.getElementById(id);
  return { text: e.textContent, value: e.dataset.value ?? null, samples: Number(e.dataset.samples || 0) };
};
return {
  subject: document.getElementById("subject").textContent,
  error: document.getElementById("error").textContent,
  remaining: read("remaining"), rps: read("rps"), p99: read("p99"), lag: read("lag"), mysql: read("mysql"),
};
"#;

/// One reading of the page; `None` until a number is first shown.
#[derive(Clone, Copy, Debug)]
struct Shown {
    polls: u64,
    remaining: Option<f64>,
    rps: Option<f64>,
    p99_ms: Option<f64>,
    lag: Option<f64>,
    mysql: Option<f64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_numbers_move_during_a_spike_in_headless_chromium() {
    require_chromium();
    let started = Instant::now();
    let app = Arc::new(TestApp::spawn().await);
    app.create_coupon(COUPON, STOCK, &[]);
    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/dashboard?coupon={COUPON}", app.addr)).await;
    let mut seen = Vec::new();

    // Arrange: the page shows the untouched campaign, over two polls so req/s and p99 exist.
    let idle = read_until(&browser, &mut seen, Duration::from_secs(15), "the untouched campaign", |s| {
        s.polls >= 2 && s.remaining == Some(STOCK as f64)
    })
    .await;
    assert_eq!(idle.mysql, Some(0.0), "no rows before the spike: {idle:?}");
    let before = seen.len();

    // Act: the spike, with the page read every 200 ms while it runs.
    let spike = tokio::spawn(spike(app.clone()));
    while !spike.is_finished() {
        read_page(&browser, &mut seen).await;
        sleep(Duration::from_millis(200)).await;
    }
    let issued = spike.await.unwrap();
    let truth = app.coupon(COUPON).await.body["remaining"].as_u64().expect("remaining in GET /v1/coupons/ID");
    let settled = read_until(&browser, &mut seen, SETTLE_WITHIN, "remaining and MySQL rows to match the truth", |s| {
        s.remaining == Some(truth as f64) && s.mysql == Some(issued as f64)
    })
    .await;

    // Assert: the campaign's numbers moved to the truth, and never backwards.
    assert!(issued >= 300, "the spike issued only {issued} coupons");
    assert_eq!(truth, STOCK - issued, "every issue took one from the stock");
    assert_eq!(app.mysql_users(COUPON).await.len() as u64, issued, "MySQL holds one row per issue");
    let spike_seen = &seen[before..];
    let series = |f: fn(&Shown) -> Option<f64>| spike_seen.iter().filter_map(f).collect::<Vec<f64>>();
    let (remaining, mysql) = (series(|s| s.remaining), series(|s| s.mysql));
    assert!(remaining.windows(2).all(|w| w[1] <= w[0]), "remaining stock never rises: {remaining:?}");
    assert!(mysql.windows(2).all(|w| w[1] >= w[0]), "MySQL rows never fall: {mysql:?}");
    let moving = remaining.iter().filter(|r| **r < STOCK as f64 && **r > truth as f64).count();
    // The spike outlasts a poll, so the page catches it part-way at least once.
    assert!(moving >= 1, "no reading between {STOCK} and {truth}: {remaining:?}");

    let peak_rps = series(|s| s.rps).into_iter().fold(0.0, f64::max);
    let peak_p99 = series(|s| s.p99_ms).into_iter().fold(0.0, f64::max);
    let peak_lag = series(|s| s.lag).into_iter().fold(0.0, f64::max);
    // The spike lasts ~3 s, so some one-poll window holds well over a tenth of it.
    // (req/s is the whole process's: tests running beside this one only add to
    // it, so it is not compared with the idle reading.)
    assert!(peak_rps * 10.0 >= issued as f64, "req/s peaked at {peak_rps} for {issued} issues");
    assert!(peak_p99 > 0.0, "p99 shown during the spike");
    assert!(settled.lag.is_some(), "lag shown: {settled:?}");
    let errors: Vec<Value> = browser.console().await.into_iter().filter(|e| e["level"] == "SEVERE").collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");

    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    let path = std::path::Path::new(&std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("dashboard.png");
    std::fs::write(&path, &png).unwrap();
    browser.quit().await;
    println!(
        "dashboard: {issued} issued; remaining {STOCK} -> {truth}; MySQL rows 0 -> {issued}; \
         peak req/s {peak_rps}, p99 {peak_p99} ms, lag {peak_lag}; idle req/s {:?}; \
         {} readings in {:.1} s; screenshot {}",
        idle.rps,
        seen.len(),
        started.elapsed().as_secs_f64(),
        path.display()
    );
}

/// Issues to distinct users from `WORKERS` paced tasks; returns how many were issued.
async fn spike(app: Arc<TestApp>) -> u64 {
    let started = Instant::now();
    let next_user = Arc::new(AtomicU64::new(1));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (app, next_user) = (app.clone(), next_user.clone());
            tokio::spawn(async move {
                let mut tick = interval(PACE);
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                let mut issued = 0u64;
                loop {
                    tick.tick().await;
                    let user = next_user.fetch_add(1, Relaxed);
                    if user > SPIKE_CAP || started.elapsed() >= SPIKE_FOR {
                        return issued;
                    }
                    let res = app.issue(COUPON, user).await;
                    assert_eq!(res.status, StatusCode::CREATED, "issue to user {user}: {}", res.body);
                    issued += 1;
                }
            })
        })
        .collect();
    let mut issued = 0;
    for worker in workers {
        issued += worker.await.unwrap();
    }
    issued
}

/// Reads the page until `done` holds; fails with the last reading after `within`.
async fn read_until(
    browser: &Browser,
    seen: &mut Vec<Shown>,
    within: Duration,
    what: &str,
    done: impl Fn(&Shown) -> bool,
) -> Shown {
    let deadline = Instant::now() + within;
    loop {
        let shown = read_page(browser, seen).await;
        if done(&shown) {
            return shown;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {what}; the page shows {shown:?}");
        sleep(Duration::from_millis(200)).await;
    }
}

/// One reading of the page, appended to `seen`. The page must name the campaign,
/// show no fetch error, and render each number's digits as its text.
async fn read_page(browser: &Browser, seen: &mut Vec<Shown>) -> Shown {
    let page = browser.execute(READ_PAGE).await;
    assert_eq!(page["subject"], format!("coupon {COUPON}"), "the page names the campaign");
    assert_eq!(page["error"], "", "the page shows no fetch error");
    let number = |id: &str| {
        let value = page[id]["value"].as_str()?;
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let text = page[id]["text"].as_str().unwrap_or_default();
        assert_eq!(digits(text), digits(value), "#{id} text {text:?} shows the value {value}");
        Some(value.parse::<f64>().unwrap_or_else(|_| panic!("#{id} value {value:?} is a number")))
    };
    let shown = Shown {
        polls: page["remaining"]["samples"].as_u64().unwrap_or(0),
        remaining: number("remaining"),
        rps: number("rps"),
        p99_ms: number("p99"),
        lag: number("lag"),
        mysql: number("mysql"),
    };
    seen.push(shown);
    shown
}
