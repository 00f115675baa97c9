//! Grafana in `compose/`: provisioned with the Prometheus datasource and the
//! flashsale dashboard, and every metric the dashboard queries is in a live
//! `GET /metrics` scrape of the real service.

use std::collections::{BTreeMap, BTreeSet};

use hyper::StatusCode;
use serde_json::Value;

use crate::compose_files::*;
use crate::helpers::TestApp;

#[test]
fn grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboard() {
    let compose = yaml(COMPOSE);
    let grafana = service(&compose, "grafana");
    let mounts: BTreeMap<String, String> = words(&grafana["volumes"])
        .iter()
        .map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            (parts[0].to_string(), parts[1].to_string())
        })
        .collect();
    assert_eq!(mounts["./grafana/provisioning"], "/etc/grafana/provisioning");
    let dashboards_dir = &mounts["./grafana/dashboards"];
    let providers = yaml("compose/grafana/provisioning/dashboards/dashboards.yml");
    let paths: Vec<String> =
        providers["providers"].as_vec().unwrap().iter().map(|p| scalar(&p["options"]["path"]).unwrap()).collect();
    assert!(paths.contains(dashboards_dir), "the provider reads {dashboards_dir}: {paths:?}");
    let home = &environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"];
    assert_eq!(home, &format!("{dashboards_dir}/flashsale.json"));

    let datasources = yaml("compose/grafana/provisioning/datasources/prometheus.yml");
    let ds = &datasources["datasources"][0];
    assert_eq!(scalar(&ds["type"]).as_deref(), Some("prometheus"));
    let url = scalar(&ds["url"]).unwrap();
    let (host, port) = host_port(&url);
    assert!(!service(&compose, &host).is_badvalue(), "{url} is the compose Prometheus");
    let published = words(&service(&compose, &host)["ports"]).join(" ");
    assert!(published.ends_with(&format!(":{port}")), "Prometheus listens on {port}: {published}");
    let uid = scalar(&ds["uid"]).unwrap();

    let dashboard: Value = serde_json::from_str(&read("compose/grafana/dashboards/flashsale.json")).unwrap();
    let mut refs = Vec::new();
    collect(&dashboard, "datasource", &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        assert_eq!(r["uid"], uid.as_str(), "panels use the provisioned datasource: {r}");
    }
}

/// Every value under `key`, anywhere in `v`.
fn collect(v: &Value, key: &str, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == key {
                    out.push(x.clone());
                } else {
                    collect(x, key, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| collect(x, key, out)),
        _ => {}
    }
}

/// Identifiers in a PromQL expression (functions, labels, metric names), string literals skipped.
fn promql_identifiers(expr: &str) -> Vec<String> {
    let (mut out, mut chars) = (Vec::new(), expr.chars().peekable());
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            while let Some(d) = chars.next() {
                if d == '\\' {
                    chars.next();
                } else if d == c {
                    break;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' || c == '$' {
            let mut word = c.to_string();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    word.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(word);
        } else if c.is_ascii_digit() {
            while chars.peek().is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.') {
                chars.next(); // numbers and durations (0.99, 5m)
            }
        }
    }
    out
}

#[tokio::test]
async fn every_metric_the_grafana_dashboard_queries_is_in_a_live_scrape() {
    let app = TestApp::spawn().await;
    app.create_coupon(1, 5, &[]);
    assert_eq!(app.issue(1, 7).await.status, StatusCode::CREATED);
    app.wait_for_rows(1, 1).await; // relay, Kafka and the sink have all run
    let (status, _, scrape) = app.try_request_raw("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l[..l.find(['{', ' ']).unwrap_or(l.len())].to_string())
        .collect();
    assert!(exported.contains("flashsale_http_request_duration_seconds_bucket"), "{exported:?}");
    assert!(exported.contains("flashsale_sink_lag"), "the sink has reported its lag: {exported:?}");

    let dashboard: Value = serde_json::from_str(&read("compose/grafana/dashboards/flashsale.json")).unwrap();
    let mut exprs = Vec::new();
    collect(&dashboard, "expr", &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut queried = BTreeSet::new();
    for expr in &exprs {
        let expr = expr.as_str().expect("expr is a string");
        let names: Vec<String> = promql_identifiers(expr).into_iter().filter(|w| w.starts_with("flashsale_")).collect();
        assert!(!names.is_empty(), "queries a flashsale metric: {expr}");
        for name in names {
            assert!(
                exported.contains(&name),
                "the dashboard queries {name}, which GET /metrics does not export: {expr}"
            );
            queried.insert(name);
        }
    }
    // The figures of the service's own live view and the pipe, all on the dashboard.
    for needed in [
        "flashsale_http_requests_total",
        "flashsale_http_request_duration_seconds_bucket",
        "flashsale_script_outcomes_total",
        "flashsale_outbox_entries",
        "flashsale_outbox_pending",
        "flashsale_relay_events_total",
        "flashsale_kafka_produce_duration_seconds_bucket",
        "flashsale_sink_lag",
        "flashsale_sink_events_total",
        "flashsale_mysql_errors_total",
        "flashsale_orders_expired_total",
    ] {
        assert!(queried.contains(needed), "the dashboard shows {needed}");
    }
}
