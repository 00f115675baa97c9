//! Metrics: static atomics written on the hot path (no locks, no allocation
//! per request), rendered in Prometheus text format for `GET /metrics` and
//! read by the live dashboard. Every metric name the service exports is in
//! this module.

mod histogram;

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
        Mutex,
    },
};

pub use histogram::{Histogram, BOUNDS_US};

/// The routes requests are counted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    IssueCoupon,
    GetCoupon,
    ReserveOrder,
    ConfirmOrder,
    CancelOrder,
    GetOrder,
    GetSale,
    Rankings,
    Health,
    Metrics,
    Dashboard,
    ChargeWallet,
    GetWallet,
    WalletTransactions,
    PayOrder,
    MyCoupons,
    MyOrders,
    Other,
}

impl Route {
    const ALL: [Route; 18] = [
        Route::IssueCoupon,
        Route::GetCoupon,
        Route::ReserveOrder,
        Route::ConfirmOrder,
        Route::CancelOrder,
        Route::GetOrder,
        Route::GetSale,
        Route::Rankings,
        Route::Health,
        Route::Metrics,
        Route::Dashboard,
        Route::ChargeWallet,
        Route::GetWallet,
        Route::WalletTransactions,
        Route::PayOrder,
        Route::MyCoupons,
        Route::MyOrders,
        Route::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Route::IssueCoupon => "issue_coupon",
            Route::GetCoupon => "get_coupon",
            Route::ReserveOrder => "reserve_order",
            Route::ConfirmOrder => "confirm_order",
            Route::CancelOrder => "cancel_order",
            Route::GetOrder => "get_order",
            Route::GetSale => "get_sale",
            Route::Rankings => "rankings",
            Route::Health => "health",
            Route::Metrics => "metrics",
            Route::Dashboard => "dashboard",
            Route::ChargeWallet => "charge_wallet",
            Route::GetWallet => "get_wallet",
            Route::WalletTransactions => "wallet_transactions",
            Route::PayOrder => "pay_order",
            Route::MyCoupons => "my_coupons",
            Route::MyOrders => "my_orders",
            Route::Other => "other",
        }
    }
}

/// Status codes counted one by one; anything else counts as "other".
const STATUSES: [u16; 17] = [200, 201, 400, 401, 402, 403, 404, 405, 409, 410, 413, 422, 429, 500, 503, 504, 0];

/// Script outcomes per script (the outcome enums' names).
/// Every write's outcomes (recorded by `domain`): a success, a refusal's
/// code, or why it has no outcome (`timeout`, `unavailable`, `outcome_unknown`, `internal`).
const OUTCOMES: [(&str, &[&str]); 6] = [
    (
        "issue_coupon",
        &[
            "issued",
            "already_issued",
            "sold_out",
            "not_started",
            "ended",
            "unknown_coupon",
            FAILED[0],
            FAILED[1],
            FAILED[2],
            FAILED[3],
        ],
    ),
    (
        "reserve_order",
        &[
            "reserved",
            "replay",
            "idempotency_key_reused",
            "unknown_sale",
            "not_started",
            "ended",
            "unknown_sku",
            "sold_out",
            "limit_exceeded",
            "too_many_orders",
            "coupon_unavailable",
            "coupon_expired",
            FAILED[0],
            FAILED[1],
            FAILED[2],
            FAILED[3],
        ],
    ),
    (
        "confirm_order",
        &[
            "paid",
            "already_paid",
            "order_paid",
            "order_cancelled",
            "order_expired",
            "payment_in_progress",
            "amount_mismatch",
            "unknown_order",
            "payment_key_used",
            FAILED[0],
            FAILED[1],
            FAILED[2],
            FAILED[3],
        ],
    ),
    (
        "cancel_order",
        &[
            "cancelled",
            "order_paid",
            "order_cancelled",
            "order_expired",
            "payment_in_progress",
            "unknown_order",
            FAILED[0],
            FAILED[1],
            FAILED[2],
            FAILED[3],
        ],
    ),
    (
        "charge_wallet",
        &[
            "charged",
            "replay",
            "idempotency_key_reused",
            "balance_limit_exceeded",
            "payment_key_used",
            FAILED[0],
            FAILED[1],
            FAILED[2],
            FAILED[3],
        ],
    ),
    (
        "pay_order",
        &[
            "paid",
            "order_paid",
            "order_cancelled",
            "order_expired",
            "insufficient_balance",
            "unknown_order",
            FAILED[0],
            FAILED[1],
            FAILED[2],
            FAILED[3],
        ],
    ),
];

/// The outcomes of a write that has none to tell.
const FAILED: [&str; 4] = ["timeout", "unavailable", "outcome_unknown", "internal"];

const ROUTES: usize = Route::ALL.len();

/// Outcome counters per script; a script with more outcomes fails to compile.
const MAX_OUTCOMES: usize = 16;
const _: () = {
    let mut i = 0;
    while i < OUTCOMES.len() {
        assert!(OUTCOMES[i].1.len() <= MAX_OUTCOMES, "a script has more outcomes than MAX_OUTCOMES");
        i += 1;
    }
};

pub struct Metrics {
    requests: [[AtomicU64; STATUSES.len()]; ROUTES],
    latency: [Histogram; ROUTES],
    outcomes: [[AtomicU64; MAX_OUTCOMES]; OUTCOMES.len()],
    pub relay_events: AtomicU64,
    pub relay_batches: AtomicU64,
    pub relay_batch_size: Histogram,
    /// Requests carried per `issue_coupon.lua` / `reserve_order.lua` call (see `batch`).
    pub issue_batch_size: Histogram,
    pub reserve_batch_size: Histogram,
    /// Requests carried per `wallet_apply.lua` call.
    pub wallet_batch_size: Histogram,
    pub kafka_produce: Histogram,
    pub kafka_produce_errors: AtomicU64,
    pub outbox_entries: AtomicI64,
    pub outbox_pending: AtomicI64,
    pub sink_events: AtomicU64,
    pub mysql_write: Histogram,
    pub mysql_errors: AtomicU64,
    /// Order events the sink refused to merge into another order's row.
    pub order_conflicts: AtomicU64,
    pub orders_expired: AtomicU64,
    /// Wallet payments settled by the recovery pass (interrupted between their steps).
    pub wallet_recovered: AtomicU64,
    /// Panics anywhere in the process (see `panics`); every one is a bug.
    pub panics: AtomicU64,
    /// (topic, partition) -> high watermark - next offset; written by sink tasks only.
    sink_lag: Mutex<BTreeMap<(String, i32), i64>>,
    /// (topic, partition) -> stalled (see `sink::stall`); written by sink tasks only.
    sink_stalled: Mutex<BTreeMap<(String, i32), bool>>,
}

pub static METRICS: Metrics = Metrics {
    requests: [const { [const { AtomicU64::new(0) }; STATUSES.len()] }; ROUTES],
    latency: [const { Histogram::new() }; ROUTES],
    outcomes: [const { [const { AtomicU64::new(0) }; MAX_OUTCOMES] }; OUTCOMES.len()],
    relay_events: AtomicU64::new(0),
    relay_batches: AtomicU64::new(0),
    relay_batch_size: Histogram::sizes(),
    issue_batch_size: Histogram::sizes(),
    reserve_batch_size: Histogram::sizes(),
    wallet_batch_size: Histogram::sizes(),
    kafka_produce: Histogram::new(),
    kafka_produce_errors: AtomicU64::new(0),
    outbox_entries: AtomicI64::new(0),
    outbox_pending: AtomicI64::new(0),
    sink_events: AtomicU64::new(0),
    mysql_write: Histogram::new(),
    mysql_errors: AtomicU64::new(0),
    order_conflicts: AtomicU64::new(0),
    orders_expired: AtomicU64::new(0),
    wallet_recovered: AtomicU64::new(0),
    panics: AtomicU64::new(0),
    sink_lag: Mutex::new(BTreeMap::new()),
    sink_stalled: Mutex::new(BTreeMap::new()),
};

impl Metrics {
    pub fn request(&self, route: Route, status: u16, elapsed: std::time::Duration) {
        let r = route as usize;
        let slot = STATUSES.iter().position(|s| *s == status).unwrap_or(STATUSES.len() - 1);
        self.requests[r][slot].fetch_add(1, Relaxed);
        self.latency[r].observe(elapsed);
    }

    /// Counts a script's outcome; `outcome` must be one of `OUTCOMES`' names.
    pub fn outcome(&self, script: &str, outcome: &str) {
        if let Some(s) = OUTCOMES.iter().position(|(name, _)| *name == script) {
            if let Some(o) = OUTCOMES[s].1.iter().position(|name| *name == outcome) {
                self.outcomes[s][o].fetch_add(1, Relaxed);
            }
        }
    }

    pub fn set_sink_lag(&self, topic: &str, partition: i32, lag: i64) {
        let mut lag_map = self.sink_lag.lock().unwrap_or_else(|e| e.into_inner());
        match lag_map.get_mut(&(topic.to_string(), partition)) {
            Some(v) => *v = lag,
            None => {
                lag_map.insert((topic.to_string(), partition), lag);
            }
        }
    }

    pub fn set_sink_stalled(&self, topic: &str, partition: i32, stalled: bool) {
        let mut map = self.sink_stalled.lock().unwrap_or_else(|e| e.into_inner());
        map.insert((topic.to_string(), partition), stalled);
    }

    /// Requests answered so far, all routes.
    pub fn requests_total(&self) -> u64 {
        self.requests.iter().flatten().map(|c| c.load(Relaxed)).sum()
    }

    /// Cumulative latency buckets summed over the API routes (not health/metrics/dashboard).
    pub fn api_latency_cumulative(&self) -> Vec<u64> {
        let api = [Route::IssueCoupon, Route::ReserveOrder, Route::ConfirmOrder, Route::CancelOrder];
        let mut sum = vec![0; BOUNDS_US.len() + 1];
        for r in api {
            for (s, c) in sum.iter_mut().zip(self.latency[r as usize].cumulative()) {
                *s += c;
            }
        }
        sum
    }

    pub fn sink_lag_total(&self) -> i64 {
        self.sink_lag.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }

    /// Everything, in Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        header(&mut out, "flashsale_http_requests_total", "counter", "HTTP requests by route and status");
        for route in Route::ALL {
            for (slot, status) in STATUSES.iter().enumerate() {
                let n = self.requests[route as usize][slot].load(Relaxed);
                if n > 0 {
                    let status = if *status == 0 { "other".to_string() } else { status.to_string() };
                    let _ = writeln!(
                        out,
                        "flashsale_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                        route.name()
                    );
                }
            }
        }
        header(&mut out, "flashsale_http_request_duration_seconds", "histogram", "HTTP request latency by route");
        for route in Route::ALL {
            let labels = format!("route=\"{}\"", route.name());
            self.latency[route as usize].render(&mut out, "flashsale_http_request_duration_seconds", &labels);
        }
        header(&mut out, "flashsale_script_outcomes_total", "counter", "Lua script outcomes");
        for (s, (script, names)) in OUTCOMES.iter().enumerate() {
            for (o, outcome) in names.iter().enumerate() {
                let n = self.outcomes[s][o].load(Relaxed);
                let _ =
                    writeln!(out, "flashsale_script_outcomes_total{{script=\"{script}\",outcome=\"{outcome}\"}} {n}");
            }
        }
        header(&mut out, "flashsale_script_batch_size", "histogram", "Requests carried per hot-path script call");
        self.issue_batch_size.render_scaled(&mut out, "flashsale_script_batch_size", "script=\"issue_coupon\"", 1.0);
        self.reserve_batch_size.render_scaled(&mut out, "flashsale_script_batch_size", "script=\"reserve_order\"", 1.0);
        self.wallet_batch_size.render_scaled(&mut out, "flashsale_script_batch_size", "script=\"wallet_apply\"", 1.0);
        counter(&mut out, "flashsale_relay_events_total", "Events produced to Kafka", self.relay_events.load(Relaxed));
        counter(&mut out, "flashsale_relay_batches_total", "Relay batches delivered", self.relay_batches.load(Relaxed));
        header(&mut out, "flashsale_relay_batch_size", "histogram", "Events per relay batch");
        self.relay_batch_size.render_scaled(&mut out, "flashsale_relay_batch_size", "", 1.0);
        header(&mut out, "flashsale_kafka_produce_duration_seconds", "histogram", "Kafka produce latency per request");
        self.kafka_produce.render(&mut out, "flashsale_kafka_produce_duration_seconds", "");
        counter(
            &mut out,
            "flashsale_kafka_produce_errors_total",
            "Failed Kafka produce attempts",
            self.kafka_produce_errors.load(Relaxed),
        );
        gauge(
            &mut out,
            "flashsale_outbox_entries",
            "Outbox entries not yet relayed, all streams",
            self.outbox_entries.load(Relaxed),
        );
        gauge(
            &mut out,
            "flashsale_outbox_pending",
            "Outbox entries read by the relay, not yet acknowledged",
            self.outbox_pending.load(Relaxed),
        );
        counter(
            &mut out,
            "flashsale_sink_events_total",
            "Events written to MySQL by the sink",
            self.sink_events.load(Relaxed),
        );
        header(&mut out, "flashsale_sink_lag", "gauge", "Kafka records not yet in MySQL, per partition");
        for ((topic, partition), lag) in self.sink_lag.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "flashsale_sink_lag{{topic=\"{topic}\",partition=\"{partition}\"}} {lag}");
        }
        header(
            &mut out,
            "flashsale_sink_stalled",
            "gauge",
            "1 while a sink partition is stalled: its stored offset is past the broker's end, or its batch \
             failed FLASHSALE_SINK_STALL_AFTER times in a row (see flashsale status)",
        );
        for ((topic, partition), stalled) in self.sink_stalled.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "flashsale_sink_stalled{{topic=\"{topic}\",partition=\"{partition}\"}} {}",
                *stalled as u8
            );
        }
        header(&mut out, "flashsale_mysql_write_duration_seconds", "histogram", "Sink transaction latency");
        self.mysql_write.render(&mut out, "flashsale_mysql_write_duration_seconds", "");
        counter(
            &mut out,
            "flashsale_mysql_errors_total",
            "Failed MySQL operations in the sink",
            self.mysql_errors.load(Relaxed),
        );
        counter(
            &mut out,
            "flashsale_sink_order_conflicts_total",
            "Order events refused because their id names another order's row (see order_conflicts)",
            self.order_conflicts.load(Relaxed),
        );
        counter(
            &mut out,
            "flashsale_orders_expired_total",
            "Reservations released by the sweeper (past their payment deadline)",
            self.orders_expired.load(Relaxed),
        );
        counter(
            &mut out,
            "flashsale_wallet_recovered_total",
            "Wallet payments interrupted between their steps and settled by the recovery pass",
            self.wallet_recovered.load(Relaxed),
        );
        counter(
            &mut out,
            "flashsale_panics_total",
            "Panics in this process; each is a bug, logged with its backtrace",
            self.panics.load(Relaxed),
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}
