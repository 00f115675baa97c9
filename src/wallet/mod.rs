//! Wallets in Redis: charges, debits and voids through `wallet_apply.lua`,
//! the only door the HTTP handlers, the payment steps, the recovery pass and
//! the CLI use. Concurrent requests of one wallet shard share a script call
//! (`batch`), so every wallet change is claimed, sent and answered as the
//! other hot-path scripts are (`caller`).
//!
//! - [`pay`]: paying an order from its owner's wallet, in three steps across
//!   the sale's and the wallet's Redis slots, both or neither.
//! - [`recovery`]: settles payments interrupted between their steps.

pub mod pay;
pub mod recovery;

use std::{collections::HashMap, sync::Arc};

use fred::prelude::*;

use crate::{
    batch::Batcher,
    caller::WriteError,
    config::WalletSettings,
    keys::{Keys, WALLET_SHARDS},
    metrics::METRICS,
    scripts::{Scripts, WalletOp, WalletOutcome},
};

/// Requests served by one `wallet_apply.lua` call at most.
const MAX_BATCH: usize = 128;
// A void's timing (see `recovery::timing`).
pub use crate::recovery::timing::WALLET_VOID_MARGIN_MS as VOID_MARGIN_MS;

/// A wallet as Redis holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalletState {
    pub balance: u64,
    /// 0 for a wallet never changed; +1 per change.
    pub version: u64,
    /// Milliseconds since the epoch of the last change (0: never).
    pub updated_at: u64,
}

impl WalletState {
    /// `balance:version:updated_at`, as `wallet_apply.lua` writes it.
    fn parse(raw: &str) -> Option<WalletState> {
        let mut parts = raw.split(':').map(str::parse::<u64>);
        let state =
            WalletState { balance: parts.next()?.ok()?, version: parts.next()?.ok()?, updated_at: parts.next()?.ok()? };
        parts.next().is_none().then_some(state)
    }
}

#[derive(Clone)]
pub struct Wallets {
    redis: Pool,
    keys: Keys,
    settings: WalletSettings,
    ops: Batcher<u64, WalletOp, WalletOutcome>,
}

impl Wallets {
    /// `longest_request`: the longest a request can still be at work (a void
    /// outlives any debit such a request may still send).
    pub fn new(
        redis: Pool,
        keys: Keys,
        scripts: Arc<Scripts>,
        settings: WalletSettings,
        longest_request: std::time::Duration,
    ) -> Self {
        let ops = {
            let (redis, keys) = (redis.clone(), keys.clone());
            let (max_balance, keep_ms) = (settings.wallet_max_balance, settings.wallet_keep_secs.saturating_mul(1000));
            let margin = VOID_MARGIN_MS.max(longest_request.as_millis() as u64);
            let void_keep_ms = settings.wallet_hold_ms.saturating_add(margin);
            Batcher::spawn(
                redis.size(),
                MAX_BATCH,
                &METRICS.wallet_batch_size,
                move |shard: u64, ops: Vec<WalletOp>| {
                    let client = crate::redis::connected(&redis).cloned();
                    let (keys, scripts) = (keys.wallets(shard), scripts.clone());
                    async move {
                        Ok(scripts.wallet_apply.call(&client?, &keys, max_balance, keep_ms, void_keep_ms, &ops).await?)
                    }
                },
            )
        };
        Wallets { redis, keys, settings, ops }
    }

    pub fn settings(&self) -> &WalletSettings {
        &self.settings
    }

    /// Adds `amount` once per Idempotency-Key (`key`): the same key, amount and
    /// payment again answers the first charge (another payment under the key is
    /// a mismatch, never a replay it did not make). Not sent when the caller gave up first.
    pub async fn charge(
        &self,
        user_id: u64,
        amount: u64,
        payment_key: &str,
        key: &str,
    ) -> Result<WalletOutcome, WriteError> {
        let op =
            WalletOp::Charge { user_id, key: key.to_string(), fingerprint: fingerprint(amount, payment_key), amount };
        self.ops.call(Keys::wallet_shard(user_id), op).await
    }

    /// Takes `amount` for one payment attempt, once: `Debited`, `Insufficient`,
    /// or `Voided` when the recovery pass gave the attempt up first.
    pub async fn debit(
        &self,
        user_id: u64,
        pay_ref: &str,
        amount: u64,
        sale_id: u64,
        order_id: u64,
    ) -> Result<WalletOutcome, WriteError> {
        let op = WalletOp::Debit { user_id, pay_ref: pay_ref.to_string(), amount, sale_id, order_id };
        self.ops.call(Keys::wallet_shard(user_id), op).await
    }

    /// Makes sure an attempt is never debited: `Voided`, or `Debited` when it was.
    pub async fn void(&self, user_id: u64, pay_ref: &str) -> Result<WalletOutcome, WriteError> {
        let op = WalletOp::Void { user_id, pay_ref: pay_ref.to_string() };
        self.ops.call(Keys::wallet_shard(user_id), op).await
    }

    /// The wallet; a user who never had one has an empty one.
    pub async fn get(&self, user_id: u64) -> Result<WalletState, Error> {
        let keys = self.keys.wallets(Keys::wallet_shard(user_id));
        let raw: Option<String> = self.redis.next().hget(keys.balances, user_id).await?;
        Ok(raw.as_deref().and_then(WalletState::parse).unwrap_or_default())
    }

    /// Every wallet Redis holds (for reconcile), by user.
    pub async fn all(&self) -> Result<Vec<(u64, WalletState)>, Error> {
        let mut wallets = Vec::new();
        for shard in 0..WALLET_SHARDS {
            let raw: HashMap<u64, String> = self.redis.next().hgetall(self.keys.wallets(shard).balances).await?;
            for (user, value) in raw {
                let state = WalletState::parse(&value)
                    .ok_or_else(|| Error::new(ErrorKind::Parse, format!("stored wallet of user {user}: `{value}`")))?;
                wallets.push((user, state));
            }
        }
        wallets.sort_unstable_by_key(|(user, _)| *user);
        Ok(wallets)
    }

    /// (entries, entries a relay read but Kafka has not acknowledged) in
    /// every shard's outbox (for status).
    pub async fn outbox(&self) -> Result<(u64, u64), Error> {
        let (mut len, mut pending) = (0, 0);
        for shard in 0..WALLET_SHARDS {
            let outbox = self.keys.wallets(shard).outbox;
            len += self.redis.next().xlen::<u64, _>(&outbox).await?;
            let summary: Value = self
                .redis
                .next()
                .xpending(&outbox, crate::keys::OUTBOX_GROUP, ())
                .await
                .or_else(|e| if e.details().starts_with("NOGROUP") { Ok(Value::Null) } else { Err(e) })?;
            if let Value::Array(parts) = summary {
                pending += parts.first().and_then(|v| v.as_u64()).unwrap_or(0);
            }
        }
        Ok((len, pending))
    }
}

/// A charge's request fingerprint: its amount and (hashed: any bytes, fixed
/// length, no newline for the script's record) the payment funding it.
fn fingerprint(amount: u64, payment_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(payment_key.as_bytes());
    format!("{amount}:{}", crate::signature::hex(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::WalletState;

    #[test]
    fn a_stored_wallet_parses_only_whole() {
        assert_eq!(
            WalletState::parse("900:3:1700000000123"),
            Some(WalletState { balance: 900, version: 3, updated_at: 1_700_000_000_123 })
        );
        assert_eq!(WalletState::parse("900:3"), None);
        assert_eq!(WalletState::parse("900:3:1:4"), None);
        assert_eq!(WalletState::parse("-1:3:1"), None);
    }
}
