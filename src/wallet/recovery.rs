//! Settling one sale's wallet payments cut off between their steps (a crash,
//! a lost connection) once their hold's deadline passed: a job of the
//! recovery registry (`recovery`).

use std::sync::atomic::Ordering::Relaxed;

use super::pay::Payments;
use crate::{metrics::METRICS, scripts::SettleOutcome};

/// Settles up to `batch` of the sale's overdue holds.
pub async fn pass(payments: &Payments, sale_id: u64, batch: u64) -> anyhow::Result<()> {
    for (order_id, attempt) in payments.overdue(sale_id, batch).await? {
        let settled = payments.recover(sale_id, order_id, attempt).await?;
        let outcome = match settled {
            SettleOutcome::Paid(_) => "paid",
            SettleOutcome::Released(_) => "released",
            SettleOutcome::NotHeld(_) | SettleOutcome::UnknownOrder => "settled_before",
        };
        METRICS.wallet_recovered.fetch_add(1, Relaxed);
        tracing::info!(sale_id, order_id, attempt, outcome, "wallet recovery: settled an interrupted payment");
    }
    Ok(())
}
