//! Paying an order from its owner's wallet: both or neither, even across a
//! crash between the steps and with the wallet and the sale in different
//! Redis slots (so no script may touch both):
//!
//! 1. hold (`pay_hold.lua`, the sale's slot): the reserved order is held for
//!    this attempt (named by the hold's deadline); confirm, cancel and the
//!    expiry leave a held order alone.
//! 2. debit (`wallet_apply.lua`, the wallet's slot): `to_pay` is taken once
//!    per attempt and recorded under `sale:order:attempt`, with its event.
//! 3. settle (`pay_settle.lua`, the sale's slot): paid (with its event), or,
//!    when the wallet refused (which voids the attempt), the hold released.
//!
//! A hold is released only once its attempt is void in the wallet: a retry
//! of the same attempt (a client retrying, or a concurrent request) may be
//! on its way to the debit at any time.
//!
//! A payment cut off between the steps keeps its hold; once the hold's
//! deadline passes, the recovery pass (`recovery`) voids the attempt in the
//! wallet — which answers the debit instead if there was one — and settles
//! the order by that answer. A debit and a void of one attempt exclude each
//! other in the wallet's script, so an order is paid exactly when its
//! wallet was debited.

use std::sync::Arc;

use fred::prelude::*;

use super::Wallets;
use crate::{
    caller::{self, WriteError},
    keys::Keys,
    order::Order,
    sales::{Sales, MAX_RANKING_HOURS},
    scripts::{HoldOutcome, Scripts, SettleOutcome, WalletOutcome},
    time::now_ms,
};

const HOUR_MS: u64 = 3_600_000;

/// What a wallet payment came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayOutcome {
    /// Paid by this payment, or by an earlier one of the same attempt.
    Paid(Order),
    /// Paid before (by a wallet or the gateway), cancelled or expired: nothing taken.
    Closed(Order),
    /// The wallet holds less than `to_pay`: nothing taken, the order still reserved.
    Insufficient {
        balance: u64,
        to_pay: u64,
    },
    /// The attempt outlived its hold and the recovery pass gave it up:
    /// nothing taken, the order goes back to reserved.
    GivenUp,
    UnknownOrder,
}

#[derive(Clone)]
pub struct Payments {
    redis: Pool,
    keys: Keys,
    scripts: Arc<Scripts>,
    sales: Sales,
    wallets: Wallets,
}

impl Payments {
    pub fn new(redis: Pool, keys: Keys, scripts: Arc<Scripts>, sales: Sales, wallets: Wallets) -> Self {
        Payments { redis, keys, scripts, sales, wallets }
    }

    pub fn sales(&self) -> &Sales {
        &self.sales
    }

    /// Pays the order from its owner's wallet. Claims the request's caller
    /// before the first step (see `caller`): from then on every step's real
    /// answer is awaited. An error after the debit is always an unknown
    /// outcome: the money may be taken, and the recovery pass then pays the order.
    pub async fn pay(&self, sale_id: u64, order_id: u64) -> Result<PayOutcome, WriteError> {
        let (_, keys) = self.sales.order_keys(sale_id, order_id).await?;
        let client = crate::redis::connected(&self.redis)?;
        caller::claim()?;
        let hold_ms = self.wallets.settings().wallet_hold_ms;
        let (order, attempt) = match self.scripts.pay_hold.call(client, &keys, order_id, hold_ms).await? {
            HoldOutcome::Held { order, attempt } => (order, attempt),
            HoldOutcome::PaidByWallet(order) | HoldOutcome::Closed(order) => return Ok(PayOutcome::Closed(order)),
            HoldOutcome::Late => {
                return Ok(match self.sales.cancel(sale_id, order_id).await? {
                    Some(order) => PayOutcome::Closed(order),
                    None => PayOutcome::UnknownOrder,
                })
            }
            HoldOutcome::UnknownOrder => return Ok(PayOutcome::UnknownOrder),
        };
        let pay_ref = pay_ref(sale_id, order_id, attempt);
        let debit = self.wallets.debit(order.user_id, &pay_ref, order.to_pay, sale_id, order_id).await;
        match debit {
            Ok(WalletOutcome::Debited(_)) => {}
            Ok(WalletOutcome::Insufficient { balance }) => {
                // The wallet voided the attempt with its refusal, so the hold
                // may go. Best effort: if this fails the recovery pass releases it.
                let _ = self.settle(sale_id, order_id, attempt, false).await;
                return Ok(PayOutcome::Insufficient { balance, to_pay: order.to_pay });
            }
            Ok(WalletOutcome::Voided) => {
                let _ = self.settle(sale_id, order_id, attempt, false).await;
                return Ok(PayOutcome::GivenUp);
            }
            Ok(other) => {
                return Err(WriteError::Failed(Error::new(ErrorKind::Parse, format!("a debit answered {other:?}"))))
            }
            // Not debited; the hold stays until the recovery pass voids the
            // attempt and releases it (never before: a retry of this attempt
            // could still debit it).
            Err(e) => return Err(e),
        }
        match self.settle(sale_id, order_id, attempt, true).await.map_err(unknown)? {
            SettleOutcome::Paid(order) => Ok(PayOutcome::Paid(order)),
            SettleOutcome::NotHeld(order) if order.status == crate::order::OrderStatus::Paid => {
                Ok(PayOutcome::Paid(order))
            }
            other => {
                tracing::error!(sale_id, order_id, ?other, "wallet payment: debited, and the order cannot be paid");
                Err(WriteError::Failed(Error::new(ErrorKind::Unknown, "debited, and the order cannot be paid")))
            }
        }
    }

    /// Step 3: marks the attempt's order paid, or releases its hold.
    async fn settle(&self, sale_id: u64, order_id: u64, attempt: u64, paid: bool) -> Result<SettleOutcome, WriteError> {
        let (_, keys) = self.sales.order_keys(sale_id, order_id).await?;
        let hour = self.keys.ranking_hour(now_ms() / HOUR_MS);
        let ttl = (MAX_RANKING_HOURS + 1) * 3600;
        let client = crate::redis::connected(&self.redis)?;
        let ranking = self.sales.placement().ranking(&hour);
        Ok(self.scripts.pay_settle.call(client, &keys, ranking, ttl, order_id, attempt, paid).await?)
    }

    /// Orders of a sale held past their hold's deadline: (order id, attempt);
    /// with buckets up to `limit` of each.
    pub async fn overdue(&self, sale_id: u64, limit: u64) -> Result<Vec<(u64, u64)>, Error> {
        let mut overdue = Vec::new();
        for keys in self.sales.all_keys(sale_id).await? {
            let due: Vec<(String, f64)> = self
                .redis
                .next()
                .zrangebyscore(keys.paying, "-inf", now_ms() as f64, true, Some((0, limit as i64)))
                .await?;
            overdue.extend(due.into_iter().filter_map(|(id, deadline)| Some((id.parse().ok()?, deadline as u64))));
        }
        Ok(overdue)
    }

    /// Settles one overdue hold: paid when the wallet holds the attempt's
    /// debit, released otherwise (the void makes sure no debit comes later).
    pub async fn recover(&self, sale_id: u64, order_id: u64, attempt: u64) -> Result<SettleOutcome, WriteError> {
        let Some(order) = self.sales.order(sale_id, order_id).await? else {
            tracing::error!(sale_id, order_id, "wallet payment: a held order is gone (sale replaced?)");
            return self.settle(sale_id, order_id, attempt, false).await;
        };
        let paid = match self.wallets.void(order.user_id, &pay_ref(sale_id, order_id, attempt)).await? {
            WalletOutcome::Debited(_) => true,
            WalletOutcome::Voided => false,
            other => {
                return Err(WriteError::Failed(Error::new(ErrorKind::Parse, format!("a void answered {other:?}"))))
            }
        };
        self.settle(sale_id, order_id, attempt, paid).await
    }
}

/// What names one payment attempt in the wallet.
fn pay_ref(sale_id: u64, order_id: u64, attempt: u64) -> String {
    format!("{sale_id}:{order_id}:{attempt}")
}

/// After the debit nothing is "not done": a failure to settle leaves the
/// payment to the recovery pass.
fn unknown(e: WriteError) -> WriteError {
    match e {
        WriteError::NotSent(e) => WriteError::Failed(Error::new(ErrorKind::IO, e.details().to_string())),
        WriteError::Abandoned => WriteError::Failed(Error::new(ErrorKind::Canceled, "abandoned after the debit")),
        failed => failed,
    }
}
