//! Metrics: static atomics written on the hot path (no locks, no allocation
//! per request), read by the live dashboard and written out for `GET /metrics`
//! by `exposition` (prometheus-client). Every metric the service exports is here.

mod exposition;
mod histogram;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
        Mutex,
    },
};

pub use exposition::render;
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
    QueueJoin,
    QueuePoll,
    QueueChallenge,
    WaitPage,
    Other,
}

impl Route {
    const ALL: [Route; 22] = [
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
        Route::QueueJoin,
        Route::QueuePoll,
        Route::QueueChallenge,
        Route::WaitPage,
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
            Route::QueueJoin => "queue_join",
            Route::QueuePoll => "queue_poll",
            Route::QueueChallenge => "queue_challenge",
            Route::WaitPage => "wait_page",
            Route::Other => "other",
        }
    }
}

/// Status codes counted one by one; anything else counts as "other".
const STATUSES: [u16; 17] = [200, 201, 400, 401, 402, 403, 404, 405, 409, 410, 413, 422, 429, 500, 503, 504, 0];

/// Script outcomes per script (the outcome enums' names).
/// Every write's outcomes (recorded by `domain`): a success, a refusal's
/// code, or why it has no outcome (`timeout`, `unavailable`, `outcome_unknown`, `internal`).
const OUTCOMES: [(&str, &[&str]); 7] = [
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
            "not_admitted",
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
    (
        "queue_join",
        &[
            "joined",
            "again",
            "unknown_sale",
            "no_queue",
            "not_started",
            "ended",
            "sold_out",
            "queue_not_configured",
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
const MAX_OUTCOMES: usize = 17;
const _: () = {
    let mut i = 0;
    while i < OUTCOMES.len() {
        assert!(OUTCOMES[i].1.len() <= MAX_OUTCOMES, "a script has more outcomes than MAX_OUTCOMES");
        i += 1;
    }
};

/// Request counts and latencies: one shard per worker thread or so (see `shard`).
const REQUEST_SHARDS: usize = 8;

#[repr(align(128))]
struct RequestShard {
    requests: [[AtomicU64; STATUSES.len()]; ROUTES],
    latency: [Histogram; ROUTES],
}

pub struct Metrics {
    requests: [RequestShard; REQUEST_SHARDS],
    outcomes: [[AtomicU64; MAX_OUTCOMES]; OUTCOMES.len()],
    pub relay_events: AtomicU64,
    pub relay_batches: AtomicU64,
    pub relay_batch_size: Histogram,
    /// Requests carried per `issue_coupon.lua` / `reserve_order.lua` call (see `batch`).
    pub issue_batch_size: Histogram,
    pub reserve_batch_size: Histogram,
    /// Requests carried per `wallet_apply.lua` call.
    pub wallet_batch_size: Histogram,
    /// Joins carried per `queue_join.lua` call.
    pub join_batch_size: Histogram,
    pub kafka_produce: Histogram,
    pub kafka_produce_errors: AtomicU64,
    pub outbox_entries: AtomicI64,
    pub outbox_pending: AtomicI64,
    pub sink_events: AtomicU64,
    pub mysql_write: Histogram,
    pub mysql_errors: AtomicU64,
    /// Sink batches MySQL chose as a deadlock's victim (1213), retried.
    pub mysql_deadlocks: AtomicU64,
    /// Order events the sink refused to merge into another order's row.
    pub order_conflicts: AtomicU64,
    pub orders_expired: AtomicU64,
    /// Waiting rooms: admissions and skipped places by this instance's admitter.
    pub queue_admitted: AtomicU64,
    pub queue_skipped: AtomicU64,
    /// Waiting rooms: people in line (joined, place not yet served), all rooms,
    /// as this instance's admitter last saw them.
    pub queue_waiting: AtomicI64,
    /// Wallet payments settled by the recovery pass (interrupted between their steps).
    pub wallet_recovered: AtomicU64,
    /// Panics anywhere in the process (see `panics`); every one is a bug.
    pub panics: AtomicU64,
    /// Write scripts that failed after they started (a Lua error): each is a
    /// bug, and its caller was told `outcome_unknown`.
    pub script_errors: AtomicU64,
    /// (topic, partition) -> high watermark - next offset; written by sink tasks only.
    sink_lag: Mutex<BTreeMap<(String, i32), i64>>,
    /// (topic, partition) -> stalled (see `sink::stall`); written by sink tasks only.
    sink_stalled: Mutex<BTreeMap<(String, i32), bool>>,
}

pub static METRICS: Metrics = Metrics {
    requests: [const {
        RequestShard {
            requests: [const { [const { AtomicU64::new(0) }; STATUSES.len()] }; ROUTES],
            latency: [const { Histogram::new() }; ROUTES],
        }
    }; REQUEST_SHARDS],
    outcomes: [const { [const { AtomicU64::new(0) }; MAX_OUTCOMES] }; OUTCOMES.len()],
    relay_events: AtomicU64::new(0),
    relay_batches: AtomicU64::new(0),
    relay_batch_size: Histogram::sizes(),
    issue_batch_size: Histogram::sizes(),
    reserve_batch_size: Histogram::sizes(),
    wallet_batch_size: Histogram::sizes(),
    join_batch_size: Histogram::sizes(),
    kafka_produce: Histogram::new(),
    kafka_produce_errors: AtomicU64::new(0),
    outbox_entries: AtomicI64::new(0),
    outbox_pending: AtomicI64::new(0),
    sink_events: AtomicU64::new(0),
    mysql_write: Histogram::new(),
    mysql_errors: AtomicU64::new(0),
    mysql_deadlocks: AtomicU64::new(0),
    order_conflicts: AtomicU64::new(0),
    orders_expired: AtomicU64::new(0),
    queue_admitted: AtomicU64::new(0),
    queue_skipped: AtomicU64::new(0),
    queue_waiting: AtomicI64::new(0),
    wallet_recovered: AtomicU64::new(0),
    panics: AtomicU64::new(0),
    script_errors: AtomicU64::new(0),
    sink_lag: Mutex::new(BTreeMap::new()),
    sink_stalled: Mutex::new(BTreeMap::new()),
};

impl Metrics {
    pub fn request(&self, route: Route, status: u16, elapsed: std::time::Duration) {
        let r = route as usize;
        let slot = STATUSES.iter().position(|s| *s == status).unwrap_or(STATUSES.len() - 1);
        let shard = &self.requests[crate::shard::of_thread(REQUEST_SHARDS)];
        shard.requests[r][slot].fetch_add(1, Relaxed);
        shard.latency[r].observe(elapsed);
    }

    /// Requests of `route` answered with the status in `STATUSES[slot]`.
    fn requests_of(&self, route: Route, slot: usize) -> u64 {
        self.requests.iter().map(|s| s.requests[route as usize][slot].load(Relaxed)).sum()
    }

    /// `route`'s latencies, all shards together.
    fn latency_of(&self, route: Route) -> Histogram {
        let all = Histogram::new();
        for shard in &self.requests {
            all.add(&shard.latency[route as usize]);
        }
        all
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
        self.requests.iter().flat_map(|s| s.requests.iter().flatten()).map(|c| c.load(Relaxed)).sum()
    }

    /// Cumulative latency buckets summed over the API routes (not health/metrics/dashboard).
    pub fn api_latency_cumulative(&self) -> Vec<u64> {
        let api = [Route::IssueCoupon, Route::ReserveOrder, Route::ConfirmOrder, Route::CancelOrder];
        let mut sum = vec![0; BOUNDS_US.len() + 1];
        for r in api {
            for (s, c) in sum.iter_mut().zip(self.latency_of(r).cumulative()) {
                *s += c;
            }
        }
        sum
    }

    pub fn sink_lag_total(&self) -> i64 {
        self.sink_lag.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }
}
