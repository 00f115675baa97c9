//! The live view: `GET /dashboard` (a static page, no build step) and the
//! small JSON it polls, `GET /v1/dashboard/stats?coupon=ID` or `?sale=ID`.
//! Counts come from the process's counters and Redis (MySQL once the campaign
//! or sale retired); the MySQL row count is cached per subject for a second
//! (`probes`), so pollers cost MySQL at most one `COUNT(*)` per subject per second.

use hyper::StatusCode;
use serde::Serialize;

use super::{
    error::ApiError,
    respond::{json, text, Reply},
};
use crate::{
    app::App,
    keys::Room,
    metrics::{BOUNDS_US, METRICS},
    probes::Subject,
    time::now_ms,
};

const PAGE: &str = include_str!("dashboard.html");

pub fn page() -> Result<Reply, ApiError> {
    Ok(text(PAGE.to_string(), "text/html; charset=utf-8"))
}

#[derive(Serialize)]
struct Stats {
    at_ms: u64,
    /// Requests answered by this process, all routes.
    requests_total: u64,
    latency_bounds_ms: Vec<f64>,
    /// Cumulative API latency counts per bound, then +Inf.
    latency_cumulative: Vec<u64>,
    remaining: u64,
    outbox_entries: i64,
    sink_lag: i64,
    mysql_rows: u64,
    /// The waiting room, when it has one (`--queue`); null otherwise.
    queue: Option<QueueStats>,
}

#[derive(Serialize)]
struct QueueStats {
    /// Joined, place not served yet.
    waiting: u64,
    joins: u64,
    /// Admitted in all (the page derives admitted / s).
    admitted_total: u64,
    admissions_unused: u64,
    starts_at_ms: u64,
    /// When the units ran out; null while some remain.
    sold_out_at_ms: Option<u64>,
}

pub async fn stats(app: &App, query: Option<&str>) -> Result<Reply, ApiError> {
    let bad = || ApiError::BadRequest("invalid_query", "pass exactly one of ?coupon=ID or ?sale=ID".into());
    let mut subjects = query.unwrap_or("").split('&').filter_map(|pair| match pair.split_once('=') {
        Some((kind @ ("coupon" | "sale"), id)) => Some((kind, id)),
        _ => None,
    });
    let (kind, id) = subjects.next().ok_or_else(bad)?;
    if subjects.next().is_some() {
        return Err(bad());
    }
    let id = super::decimal::canonical(id).ok_or_else(bad)?;
    // Redis first, MySQL for a retired one: an unknown id answers 404.
    let (remaining, subject, room) = if kind == "coupon" {
        (app.domain.coupons.campaign(id).await?.remaining, Subject::Coupon(id), Room::Coupon(id))
    } else {
        let sale = app.domain.orders.sale(id).await?;
        (sale.skus.iter().map(|s| s.remaining).sum(), Subject::Sale(id), Room::Sale(id))
    };
    let queue = app.domain.queue.state(room).await?.map(|q| QueueStats {
        waiting: q.joins.saturating_sub(q.served),
        joins: q.joins,
        admitted_total: q.admitted_total,
        admissions_unused: q.admissions_unused,
        starts_at_ms: q.starts_at,
        sold_out_at_ms: q.sold_out_at,
    });
    let mysql_rows = app.probes.mysql_rows(subject).await?;
    let stats = Stats {
        at_ms: now_ms(),
        requests_total: METRICS.requests_total(),
        latency_bounds_ms: BOUNDS_US.iter().map(|b| *b as f64 / 1000.0).collect(),
        latency_cumulative: METRICS.api_latency_cumulative(),
        remaining,
        outbox_entries: METRICS.outbox_entries.load(std::sync::atomic::Ordering::Relaxed),
        sink_lag: METRICS.sink_lag_total(),
        mysql_rows,
        queue,
    };
    Ok(json(StatusCode::OK, &stats))
}
