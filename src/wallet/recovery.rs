//! The recovery pass: settles wallet payments cut off between their steps
//! (a crash, a lost connection) once their hold's deadline passed. Runs
//! beside the expiry task, over every sale, in bounded batches.

use std::{sync::atomic::Ordering::Relaxed, time::Duration};

use tokio::time::Instant;

use super::pay::Payments;
use crate::{metrics::METRICS, relay::backoff, scripts::SettleOutcome, shutdown::Shutdown};

/// How often overdue holds are looked for.
const TICK: Duration = Duration::from_millis(250);
/// Holds settled per sale per look.
const BATCH: u64 = 100;
const REFRESH_EVERY: Duration = Duration::from_secs(1);

pub async fn run(payments: Payments, mut shutdown: Shutdown) {
    let mut ids = Vec::new();
    let mut refreshed: Option<Instant> = None;
    let mut failures = 0;
    while !shutdown.is_started() {
        if refreshed.is_none_or(|at| at.elapsed() >= REFRESH_EVERY) {
            match payments.sales().ids().await {
                Ok(fresh) => ids = fresh,
                Err(e) => tracing::warn!(error = %e, "wallet recovery: cannot list sales"),
            }
            refreshed = Some(Instant::now());
        }
        let mut failed = false;
        for &sale_id in &ids {
            match pass(&payments, sale_id).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, sale_id, "wallet recovery failed");
                    failed = true;
                }
            }
        }
        failures = if failed { failures + 1 } else { 0 };
        let pause = if failed { backoff(failures) } else { TICK };
        shutdown.sleep(pause).await;
    }
    tracing::info!("wallet recovery stopped");
}

/// Settles one sale's overdue holds (up to `BATCH`).
async fn pass(payments: &Payments, sale_id: u64) -> anyhow::Result<()> {
    for (order_id, attempt) in payments.overdue(sale_id, BATCH).await? {
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
