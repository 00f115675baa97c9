//! The recovery registry: every multi-step protocol's overdue-step finisher,
//! the chores that keep Redis bounded, and their timing, listed once; one
//! sweeper runs them. What each protocol's steps are: docs/protocols.md.

use std::{sync::atomic::Ordering::Relaxed, time::Duration};

use tokio::time::Instant;

use crate::{
    metrics::METRICS, relay::backoff, retirement::Retirer, sales::Sales, shutdown::Shutdown, wallet::pay::Payments,
};

/// The protocols' timing, each constant in this one place.
pub mod timing {
    /// Coupon holds (`sales::holds`): how long a hold lasts, the time the
    /// service may take between holding a coupon and reserving its order.
    pub const COUPON_HOLD_MS: u64 = 10_000;
    /// How long past its deadline a hold is left to its request before the
    /// sweeper settles it: covers the clock skew between two Redis nodes.
    pub const COUPON_HOLD_MARGIN_MS: u64 = 2_000;
    /// How long a campaign's keys outlive a hold's deadline at least.
    pub const COUPON_HOLD_KEEP_MS: u64 = 60_000;
    /// Stock moves (`sales::moves`): how long after a move was taken its
    /// home may still be given it.
    pub const STOCK_MOVE_GIVE_WINDOW_MS: u64 = 30_000;
    /// How long a move is left to its request before the sweeper finishes
    /// it (covers the clock skew between two Redis nodes and the process).
    pub const STOCK_MOVE_MARGIN_MS: u64 = 2_000;
    /// Wallet payments (`wallet::pay`): a hold lasts FLASHSALE_WALLET_HOLD_MS
    /// (a setting); a void (a refused or abandoned attempt) is kept its hold
    /// plus this, or plus the longest a request that sent the attempt's debit
    /// can still be at work when that is longer (see `http::longest_request`).
    pub const WALLET_VOID_MARGIN_MS: u64 = 60_000;
}

/// The sweeper's beat: no job runs more often.
const TICK: Duration = Duration::from_millis(200);
/// How long a taken turn stays taken: a little less than a tick, so the
/// taker's own next tick finds it free.
const TURN: Duration = Duration::from_millis(TICK.as_millis() as u64 * 9 / 10);
/// How often the live sales are listed again.
const LIST_SALES_EVERY: Duration = Duration::from_secs(1);
/// Orders released (and idempotency answers forgotten) per script call.
const EXPIRE_BATCH: u64 = 200;
/// Released orders forgotten per sale and bucket per pass.
const FORGET_BATCH: u64 = 500;
/// Interrupted wallet payments settled per sale per pass.
const WALLET_BATCH: u64 = 100;

/// What the sweeper runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// Reservations past their payment deadline are released (and
    /// idempotency answers past their TTL forgotten).
    ExpireReservations,
    /// Coupon holds whose request died between the steps are settled.
    SettleCouponHolds,
    /// Stock moves between buckets whose request died between the steps are finished.
    FinishStockMoves,
    /// Released orders MySQL holds leave Redis.
    ForgetReleasedOrders,
    /// Ended campaigns and sales leave Redis once MySQL has them (`retirement`).
    Retire,
    /// Wallet payments cut off between hold, debit and settle are settled
    /// once their hold's deadline passed.
    RecoverWalletPayments,
}

/// Who runs a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// The instance that took the tick's turn (a Redis key): once per tick
    /// across instances, and an instance that dies simply stops taking turns.
    Turn,
    /// Every instance (the job is safe to run concurrently).
    Everyone,
}

pub struct Entry {
    pub job: Job,
    pub every: Duration,
    pub by: By,
    /// Runs only after a pass in which every job before it succeeded.
    pub after_clean_pass: bool,
}

/// The registry, in the order a pass runs it. A campaign's keys go (Retire)
/// only after a whole pass released the reservations holding its coupons.
pub const JOBS: [Entry; 6] = [
    Entry { job: Job::ExpireReservations, every: TICK, by: By::Turn, after_clean_pass: false },
    Entry { job: Job::SettleCouponHolds, every: Duration::from_secs(1), by: By::Turn, after_clean_pass: false },
    Entry { job: Job::FinishStockMoves, every: Duration::from_secs(1), by: By::Turn, after_clean_pass: false },
    Entry { job: Job::ForgetReleasedOrders, every: Duration::from_secs(1), by: By::Turn, after_clean_pass: false },
    Entry { job: Job::Retire, every: Duration::from_secs(1), by: By::Turn, after_clean_pass: true },
    Entry { job: Job::RecoverWalletPayments, every: TICK, by: By::Everyone, after_clean_pass: false },
];

/// Where released orders are checked before Redis forgets them, and after how long.
pub struct Forget {
    pub mysql: mysql_async::Pool,
    pub after: Duration,
}

/// What the jobs work on.
pub struct Sweeper {
    pub sales: Sales,
    pub payments: Payments,
    pub retirer: Retirer,
    pub forget: Forget,
    /// Names this process in the turn key.
    pub instance: String,
}

impl Sweeper {
    /// Runs the registry until shutdown.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let mut last_run: [Option<Instant>; JOBS.len()] = [None; JOBS.len()];
        let mut ids = Vec::new();
        let mut listed: Option<Instant> = None;
        let mut failures = 0;
        while !shutdown.is_started() {
            if listed.is_none_or(|at| at.elapsed() >= LIST_SALES_EVERY) {
                match self.sales.ids().await {
                    Ok(fresh) => ids = fresh,
                    Err(e) => tracing::warn!(error = %e, "sweeper: cannot list sales"),
                }
                listed = Some(Instant::now());
            }
            let mut turn = None;
            let mut failed = false;
            for (i, entry) in JOBS.iter().enumerate() {
                let due = last_run[i].is_none_or(|at| at.elapsed() >= entry.every);
                if !due || (entry.after_clean_pass && failed) {
                    continue;
                }
                if entry.by == By::Turn {
                    // One SET NX per pass: the turn is asked for once, by the first job that needs it.
                    let taken = match turn {
                        Some(taken) => taken,
                        None => *turn.insert(self.take_turn(&mut failed).await),
                    };
                    if !taken {
                        continue;
                    }
                }
                last_run[i] = Some(Instant::now());
                if let Err(e) = self.run_job(entry.job, &ids).await {
                    tracing::warn!(error = %e, job = ?entry.job, "sweeper: a job failed");
                    failed = true;
                }
            }
            failures = if failed { failures + 1 } else { 0 };
            shutdown.sleep(if failed { backoff(failures) } else { TICK }).await;
        }
        tracing::info!("sweeper stopped");
    }

    /// Takes the tick's turn for this instance unless another took it.
    async fn take_turn(&self, failed: &mut bool) -> bool {
        match self.sales.take_expiry_turn(&self.instance, TURN).await {
            Ok(taken) => taken,
            Err(e) => {
                tracing::warn!(error = %e, "sweeper: cannot take a turn");
                *failed = true;
                false
            }
        }
    }

    async fn run_job(&mut self, job: Job, ids: &[u64]) -> anyhow::Result<()> {
        match job {
            Job::ExpireReservations => {
                let mut failed = None;
                for &sale_id in ids {
                    if let Err(e) = self.expire(sale_id).await {
                        tracing::warn!(error = %e, sale_id, "expiry failed");
                        failed = Some(e);
                    }
                }
                failed.map_or(Ok(()), Err)
            }
            Job::SettleCouponHolds => {
                let settled = self.sales.settle_overdue_holds().await?;
                if settled > 0 {
                    tracing::info!(settled, "settled overdue coupon holds");
                }
                Ok(())
            }
            Job::FinishStockMoves => {
                let finished = self.sales.finish_overdue_moves().await?;
                if finished > 0 {
                    tracing::info!(finished, "finished overdue stock moves");
                }
                Ok(())
            }
            Job::ForgetReleasedOrders => {
                let after = self.forget.after.as_millis() as u64;
                let mut failed = None;
                for &sale_id in ids {
                    match self.sales.forget_released(sale_id, &self.forget.mysql, after, FORGET_BATCH).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(sale_id, forgotten = n, "forgot released orders"),
                        Err(e) => {
                            tracing::warn!(error = %e, sale_id, "cannot forget released orders");
                            failed = Some(e);
                        }
                    }
                }
                failed.map_or(Ok(()), Err)
            }
            Job::Retire => self.retirer.tick().await.map(drop).map_err(Into::into),
            Job::RecoverWalletPayments => {
                let mut failed = None;
                for &sale_id in ids {
                    if let Err(e) = crate::wallet::recovery::pass(&self.payments, sale_id, WALLET_BATCH).await {
                        tracing::warn!(error = %e, sale_id, "wallet recovery failed");
                        failed = Some(e);
                    }
                }
                failed.map_or(Ok(()), Err)
            }
        }
    }

    /// Releases one sale's overdue reservations, a batch at a time.
    async fn expire(&self, sale_id: u64) -> anyhow::Result<()> {
        loop {
            let done = self.sales.expire_due(sale_id, EXPIRE_BATCH).await?;
            METRICS.orders_expired.fetch_add(done.released, Relaxed);
            if done.released > 0 {
                tracing::debug!(sale_id, released = done.released, "expired reservations");
            }
            if done.released < EXPIRE_BATCH && done.forgotten < EXPIRE_BATCH {
                return Ok(());
            }
        }
    }
}
