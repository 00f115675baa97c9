//! The expiry task: releases reservations whose payment deadline passed and
//! forgets idempotency answers past their TTL, in bounded batches (one short
//! script call per live sale per batch), so the hot path never waits behind
//! it. Once a second it also runs retirement (see `retire`) and forgets
//! released orders MySQL has (see `sales::forget`).
//!
//! Several service instances share the work: each tick goes to the first
//! instance that takes it (a Redis key that lives a little less than a tick),
//! so a sale's overdue orders are looked for once per tick, not once per
//! instance, and an instance that dies simply stops taking turns.

use std::time::Duration;

use tokio::time::Instant;

use std::sync::atomic::Ordering::Relaxed;

use crate::{metrics::METRICS, relay::backoff, retire::Retirer, sales::Sales, shutdown::Shutdown};

/// How often overdue reservations are looked for.
const TICK: Duration = Duration::from_millis(200);
/// Orders released (and idempotency answers forgotten) per script call.
const BATCH: u64 = 200;
/// How often the live sales are listed again, and retirement runs.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How long a taken tick stays taken: a little less than a tick, so the
/// taker's own next tick finds it free.
const TURN: Duration = Duration::from_millis(TICK.as_millis() as u64 * 9 / 10);

/// Released orders forgotten per sale and bucket per pass.
const FORGET_BATCH: u64 = 500;

/// Where released orders are checked before Redis forgets them, and after how long.
pub struct Forget {
    pub mysql: mysql_async::Pool,
    pub after: Duration,
}

/// Runs until shutdown; `instance` names this process in the turn key.
pub async fn run(sales: Sales, mut retirer: Retirer, forget: Forget, instance: String, mut shutdown: Shutdown) {
    let mut ids = Vec::new();
    let mut refreshed: Option<Instant> = None;
    let mut failures = 0;
    while !shutdown.is_started() {
        match sales.take_expiry_turn(&instance, TURN).await {
            Ok(true) => {}
            Ok(false) => {
                // Another instance runs this tick.
                shutdown.sleep(TICK).await;
                continue;
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "expiry: cannot take a turn");
                shutdown.sleep(backoff(failures)).await;
                continue;
            }
        }
        let refresh = refreshed.is_none_or(|at| at.elapsed() >= REFRESH_EVERY);
        if refresh {
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
                    Ok(done) => {
                        METRICS.orders_expired.fetch_add(done.released, Relaxed);
                        if done.released > 0 {
                            tracing::debug!(sale_id, released = done.released, "expired reservations");
                        }
                        if done.released < BATCH && done.forgotten < BATCH {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, sale_id, "expiry failed");
                        failed = true;
                        break;
                    }
                }
            }
        }
        // On a cluster: coupon holds whose request died between the steps.
        if refresh {
            match sales.settle_overdue_holds().await {
                Ok(0) => {}
                Ok(settled) => tracing::info!(settled, "settled overdue coupon holds"),
                Err(e) => {
                    tracing::warn!(error = %e, "expiry: cannot settle coupon holds");
                    failed = true;
                }
            }
        }
        // Sales with buckets: stock moves whose request died between the steps.
        if refresh {
            match sales.finish_overdue_moves().await {
                Ok(0) => {}
                Ok(finished) => tracing::info!(finished, "finished overdue stock moves"),
                Err(e) => {
                    tracing::warn!(error = %e, "expiry: cannot finish stock moves");
                    failed = true;
                }
            }
        }
        // Released orders MySQL holds leave Redis.
        if refresh {
            let after = forget.after.as_millis() as u64;
            for &sale_id in &ids {
                match sales.forget_released(sale_id, &forget.mysql, after, FORGET_BATCH).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(sale_id, forgotten = n, "forgot released orders"),
                    Err(e) => {
                        tracing::warn!(error = %e, sale_id, "expiry: cannot forget released orders");
                        failed = true;
                    }
                }
            }
        }
        // After a whole expiry pass: a campaign's keys go only once the
        // reservations holding its coupons were released.
        if refresh && !failed {
            if let Err(e) = retirer.tick().await {
                tracing::warn!(error = %e, "retirement failed");
                failed = true;
            }
        }
        failures = if failed { failures + 1 } else { 0 };
        let pause = if failed { backoff(failures) } else { TICK };
        shutdown.sleep(pause).await;
    }
    tracing::info!("expiry stopped");
}
