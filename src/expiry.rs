//! The expiry task: releases reservations whose payment deadline passed, in
//! bounded batches (one short script call per sale per batch), so the hot
//! path never waits behind it.

use std::time::Duration;

use tokio::time::Instant;

use std::sync::atomic::Ordering::Relaxed;

use crate::{metrics::METRICS, relay::backoff, sales::Sales, shutdown::Shutdown};

/// How often overdue reservations are looked for.
const TICK: Duration = Duration::from_millis(200);
/// Orders released per script call.
const BATCH: u64 = 200;
const REFRESH_EVERY: Duration = Duration::from_secs(1);

pub async fn run(sales: Sales, mut shutdown: Shutdown) {
    let mut ids = Vec::new();
    let mut refreshed: Option<Instant> = None;
    let mut failures = 0;
    while !shutdown.is_started() {
        if refreshed.is_none_or(|at| at.elapsed() >= REFRESH_EVERY) {
            match sales.ids().await {
                Ok(fresh) => ids = fresh,
                Err(e) => tracing::warn!(error = %e, "expiry: cannot list sales"),
            }
            refreshed = Some(Instant::now());
        }
        let mut failed = false;
        for &sale_id in &ids {
            loop {
                match sales.expire_due(sale_id, BATCH).await {
                    Ok(n) if n == BATCH => {
                        METRICS.orders_expired.fetch_add(n, Relaxed);
                        continue;
                    }
                    Ok(0) => break,
                    Ok(n) => {
                        METRICS.orders_expired.fetch_add(n, Relaxed);
                        tracing::debug!(sale_id, released = n, "expired reservations");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, sale_id, "expiry failed");
                        failed = true;
                        break;
                    }
                }
            }
        }
        failures = if failed { failures + 1 } else { 0 };
        let pause = if failed { backoff(failures) } else { TICK };
        shutdown.sleep(pause).await;
    }
    tracing::info!("expiry stopped");
}
