//! The domain: what the API asks of coupons, orders and wallets, answered in
//! the domain's own types and its one error type. Beneath it, the stores
//! (Redis through `coupons`, `sales`, `wallet`; MySQL through `db`, `retired_records`).

pub mod coupons;
pub mod orders;
pub mod queue;
pub mod wallets;

pub use crate::error::{refuse, Error, Refusal};

use crate::metrics::METRICS;

/// The services the API uses.
#[derive(Clone)]
pub struct Domain {
    pub coupons: coupons::CouponService,
    pub orders: orders::OrderService,
    pub wallets: wallets::WalletService,
    pub queue: queue::QueueService,
}

/// Counts a write's outcome: the one place every write's outcome is recorded
/// (`flashsale_script_outcomes_total{script=write, outcome}`).
fn record<T>(write: &'static str, result: &Result<T, Error>, ok: impl FnOnce(&T) -> &'static str) {
    let outcome = match result {
        Ok(done) => ok(done),
        Err(e) => e.name(),
    };
    METRICS.outcome(write, outcome);
}
