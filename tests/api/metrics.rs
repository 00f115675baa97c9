//! `GET /metrics` (Prometheus text) and the live view's page and JSON.

use hyper::StatusCode;

use crate::helpers::TestApp;

/// The value of one sample line (`name{labels} value`) in a scrape, 0 when absent.
pub fn sample(scrape: &str, series: &str) -> f64 {
    scrape.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

pub async fn scrape(app: &TestApp) -> String {
    let res = app.try_request_raw("/metrics").await;
    assert_eq!(res.0, StatusCode::OK);
    assert!(res.1.starts_with("text/plain"), "{}", res.1);
    res.2
}

#[tokio::test]
async fn metrics_count_requests_outcomes_and_the_pipe_in_prometheus_format() {
    let app = TestApp::spawn().await;
    app.create_coupon(1, 3, &[]);
    let before = scrape(&app).await;
    for user in 1..=5 {
        app.issue(1, user).await;
    }
    app.issue(1, 1).await;
    app.wait_for_rows(1, 3).await;
    let after = scrape(&app).await;

    let delta = |series: &str| sample(&after, series) - sample(&before, series);
    // Other tests share the process-wide counters: they only ever add.
    assert!(delta(r#"flashsale_http_requests_total{route="issue_coupon",status="201"}"#) >= 3.0);
    assert!(delta(r#"flashsale_http_requests_total{route="issue_coupon",status="410"}"#) >= 2.0);
    assert!(delta(r#"flashsale_script_outcomes_total{script="issue_coupon",outcome="issued"}"#) >= 3.0);
    assert!(delta(r#"flashsale_script_outcomes_total{script="issue_coupon",outcome="sold_out"}"#) >= 1.0);
    assert!(delta(r#"flashsale_http_request_duration_seconds_count{route="issue_coupon"}"#) >= 6.0);
    assert!(delta("flashsale_relay_events_total") >= 3.0);
    assert!(delta("flashsale_sink_events_total") >= 3.0);
    for name in
        ["flashsale_outbox_entries", "flashsale_kafka_produce_duration_seconds_count", "flashsale_mysql_errors_total"]
    {
        assert!(after.contains(&format!("\n{name} ")), "{name} is exported");
    }
    assert!(after.contains("# TYPE flashsale_http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn the_dashboard_page_and_its_stats_follow_a_campaign() {
    let app = TestApp::spawn().await;
    app.create_coupon(2, 10, &[]);
    let page = app.try_request_raw("/dashboard").await;
    assert_eq!(page.0, StatusCode::OK);
    assert!(page.1.starts_with("text/html"));
    assert!(page.2.contains("/v1/dashboard/stats"));

    let first = app.get("/v1/dashboard/stats?coupon=2").await.body;
    assert_eq!(first["remaining"], 10);
    for user in 1..=4 {
        app.issue(2, user).await;
    }
    app.wait_for_rows(2, 4).await;
    // The row count is cached for a second: poll past it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let second = loop {
        let stats = app.get("/v1/dashboard/stats?coupon=2").await.body;
        if stats["mysql_rows"] == 4 || std::time::Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(second["remaining"], 6);
    assert_eq!(second["mysql_rows"], 4);
    assert!(second["requests_total"].as_u64() > first["requests_total"].as_u64());
    assert_eq!(
        second["latency_cumulative"].as_array().unwrap().len(),
        second["latency_bounds_ms"].as_array().unwrap().len() + 1
    );
    assert_eq!(app.get("/v1/dashboard/stats").await.body["error"], "invalid_query");
    assert_eq!(app.get("/v1/dashboard/stats?sale=404").await.body["error"], "unknown_sale");
}

#[tokio::test]
async fn a_bad_query_parameter_is_never_hidden_by_a_good_one() {
    let app = TestApp::spawn().await;
    app.create_coupon(3, 10, &[]);
    for query in ["/v1/dashboard/stats?coupon=-1&coupon=3", "/v1/dashboard/stats?coupon=3&sale=1"] {
        assert_eq!(app.get(query).await.body["error"], "invalid_query", "{query}");
    }
    assert_eq!(app.get("/v1/rankings/products?window=bogus&window=3d").await.body["error"], "invalid_query");
    assert_eq!(app.get("/v1/rankings/products?window=3d&window=6h").await.status, StatusCode::OK);
}

/// A write script that fails once it runs (here a command inside it meets a
/// key of the wrong type) may have written before the error: the caller is
/// told `outcome_unknown`, not 500, and the failure counts as a bug.
#[tokio::test]
async fn a_write_script_that_fails_once_it_ran_answers_outcome_unknown_and_counts_a_bug() {
    use fred::prelude::*;
    let app = TestApp::spawn().await;
    app.create_sale(1, &["1:100:5"], &[]);
    let redis = flashsale::redis::pool(&app.config.redis).await.unwrap();
    let keys = flashsale::keys::Keys::new(app.config.redis.key_prefix.clone());
    let stock = keys.sale_bucket(1, 0).stock;
    let _: () = redis.del(&stock).await.unwrap();
    let _: () = redis.set(&stock, "not a hash", None, None, false).await.unwrap();
    let before = sample(&scrape(&app).await, "flashsale_script_errors_total");

    let res = app.reserve(1, 7, &[(1, 1)]).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert_eq!(res.body["error"], "outcome_unknown", "{}", res.body);
    let after = sample(&scrape(&app).await, "flashsale_script_errors_total");
    assert!(after >= before + 1.0, "counted: {before} -> {after}");
}
