//! Wallets as the API sees them: a charge (a gateway payment, once per
//! payment_key and Idempotency-Key), the balance, and the history from MySQL.

use mysql_async::Pool as Mysql;

use super::{record, refuse, Error, Refusal};
use crate::{
    config::WalletSettings,
    db::wallet::Transaction,
    gateway::{self, PaidFor},
    scripts::WalletOutcome,
    wallet::{WalletState, Wallets},
};

#[derive(Clone)]
pub struct WalletService {
    wallets: Wallets,
    mysql: Mysql,
}

/// A charge made (or, `replayed`, made before under the same Idempotency-Key).
pub struct Charge {
    pub balance: u64,
    pub charged: u64,
    /// Redis's clock, ms.
    pub at: u64,
    pub replayed: bool,
}

impl WalletService {
    pub fn new(wallets: Wallets, mysql: Mysql) -> Self {
        WalletService { wallets, mysql }
    }

    pub fn settings(&self) -> &WalletSettings {
        self.wallets.settings()
    }

    /// Adds `amount` paid by the gateway payment `payment_key`, once per
    /// Idempotency-Key (`key`); a payment_key that paid anything else is refused.
    pub async fn charge(&self, user_id: u64, amount: u64, payment_key: &str, key: &str) -> Result<Charge, Error> {
        let result = self.try_charge(user_id, amount, payment_key, key).await;
        record("charge_wallet", &result, |c| if c.replayed { "replay" } else { "charged" });
        result
    }

    async fn try_charge(&self, user_id: u64, amount: u64, payment_key: &str, key: &str) -> Result<Charge, Error> {
        let paid_for = PaidFor::Charge { user_id, idempotency_key: key };
        if !gateway::claim(&self.mysql, payment_key, &paid_for).await? {
            return refuse(Refusal::PaymentKeyUsed);
        }
        let charge = |c: crate::scripts::Charged, replayed| Charge {
            balance: c.balance,
            charged: c.charged,
            at: c.at,
            replayed,
        };
        match self.wallets.charge(user_id, amount, payment_key, key).await? {
            WalletOutcome::Charged(c) => Ok(charge(c, false)),
            WalletOutcome::Replay(c) => Ok(charge(c, true)),
            WalletOutcome::IdempotencyMismatch => refuse(Refusal::IdempotencyKeyReused),
            WalletOutcome::OverLimit { left } => refuse(Refusal::BalanceLimitExceeded(left)),
            other => {
                tracing::error!(?other, "a charge answered a debit's outcome");
                Err(Error::Bug(format!("a charge answered {other:?}")))
            }
        }
    }

    /// The wallet; a user who never had one has an empty one.
    pub async fn get(&self, user_id: u64) -> Result<WalletState, Error> {
        Ok(self.wallets.get(user_id).await?)
    }

    /// Up to `limit` of the wallet's history from MySQL with a version below
    /// `before` (all when None), newest first.
    pub async fn transactions(&self, user_id: u64, limit: u64, before: Option<u64>) -> Result<Vec<Transaction>, Error> {
        Ok(crate::db::wallet::transactions(&self.mysql, user_id, limit, before).await?)
    }
}
