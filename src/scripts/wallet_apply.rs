//! `lua/wallet_apply.lua`: charges, debits and voids of one wallet shard.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::{text, unexpected};
use crate::keys::WalletKeys;

pub struct WalletApply(pub(super) Script, pub(super) Ack);

/// One request of a call; every request of a call is in one shard.
#[derive(Clone, Debug)]
pub enum WalletOp {
    /// Adds `amount`, remembered under the user's Idempotency-Key with its fingerprint.
    Charge { user_id: u64, key: String, fingerprint: String, amount: u64 },
    /// Takes `amount` for one payment attempt (`pay_ref`: `sale:order:attempt`).
    Debit { user_id: u64, pay_ref: String, amount: u64, sale_id: u64, order_id: u64 },
    /// Makes sure `pay_ref` is never debited, unless it already was.
    Void { user_id: u64, pay_ref: String },
}

/// A charge as it was answered the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charged {
    pub balance: u64,
    pub charged: u64,
    /// Milliseconds since the epoch, Redis clock.
    pub at: u64,
}

/// A debit made for one payment attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Debited {
    pub amount: u64,
    pub balance: u64,
    pub version: u64,
    pub at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletOutcome {
    Charged(Charged),
    /// The same Idempotency-Key and amount again: the first answer.
    Replay(Charged),
    /// The same Idempotency-Key with another amount.
    IdempotencyMismatch,
    /// The balance would pass the maximum; `left` more could still be charged.
    OverLimit {
        left: u64,
    },
    /// Debited now, or before for the same payment attempt.
    Debited(Debited),
    Insufficient {
        balance: u64,
    },
    /// The attempt was voided (by the recovery pass): never debited.
    Voided,
}

impl WalletOutcome {
    /// The outcome's name in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            WalletOutcome::Charged(_) => "charged",
            WalletOutcome::Replay(_) => "replay",
            WalletOutcome::IdempotencyMismatch => "idempotency_mismatch",
            WalletOutcome::OverLimit { .. } => "over_limit",
            WalletOutcome::Debited(_) => "debited",
            WalletOutcome::Insufficient { .. } => "insufficient",
            WalletOutcome::Voided => "voided",
        }
    }
}

impl WalletApply {
    /// Serves `ops` in order in one call; one outcome per op.
    pub async fn call(
        &self,
        client: &Client,
        keys: &WalletKeys,
        max_balance: u64,
        keep_ms: u64,
        void_keep_ms: u64,
        ops: &[WalletOp],
    ) -> Result<Vec<WalletOutcome>, Error> {
        let k = [&keys.balances, &keys.idem, &keys.pays, &keys.aged, &keys.outbox];
        let mut args = Vec::with_capacity(3 + 6 * ops.len());
        args.extend([max_balance.to_string(), keep_ms.to_string(), void_keep_ms.to_string()]);
        for op in ops {
            match op {
                WalletOp::Charge { user_id, key, fingerprint, amount } => args.extend([
                    "charge".into(),
                    user_id.to_string(),
                    key.clone(),
                    fingerprint.clone(),
                    amount.to_string(),
                ]),
                WalletOp::Debit { user_id, pay_ref, amount, sale_id, order_id } => args.extend([
                    "debit".into(),
                    user_id.to_string(),
                    pay_ref.clone(),
                    amount.to_string(),
                    sale_id.to_string(),
                    order_id.to_string(),
                ]),
                WalletOp::Void { user_id, pay_ref } => {
                    args.extend(["void".into(), user_id.to_string(), pay_ref.clone()])
                }
            }
        }
        let answers: Vec<Value> = self.1.evalsha(&self.0, client, k.iter().map(|k| k.as_str()).collect(), args).await?;
        if answers.len() != ops.len() {
            return Err(unexpected("wallet_apply", &Value::Array(answers)));
        }
        answers.into_iter().map(outcome).collect()
    }
}

/// `n:n:...` into exactly `N` numbers.
fn numbers<const N: usize>(value: Option<&Value>) -> Option<[u64; N]> {
    let text = text(value)?;
    let parts: Vec<u64> = text.split(':').map(str::parse).collect::<Result<_, _>>().ok()?;
    parts.try_into().ok()
}

fn outcome(answer: Value) -> Result<WalletOutcome, Error> {
    let Value::Array(answer) = answer else { return Err(unexpected("wallet_apply", &answer)) };
    let charged = |v: Option<&Value>| numbers::<3>(v).map(|[balance, charged, at]| Charged { balance, charged, at });
    let debited = |v: Option<&Value>| {
        numbers::<4>(v).map(|[amount, balance, version, at]| Debited { amount, balance, version, at })
    };
    let number = |v: Option<&Value>| text(v).and_then(|s| s.parse::<u64>().ok());
    let outcome = match text(answer.first()).as_deref() {
        Some("charged") => charged(answer.get(1)).map(WalletOutcome::Charged),
        Some("replay") => charged(answer.get(1)).map(WalletOutcome::Replay),
        Some("idem_mismatch") => Some(WalletOutcome::IdempotencyMismatch),
        Some("over_limit") => number(answer.get(1)).map(|left| WalletOutcome::OverLimit { left }),
        Some("debited") => debited(answer.get(1)).map(WalletOutcome::Debited),
        Some("insufficient") => number(answer.get(1)).map(|balance| WalletOutcome::Insufficient { balance }),
        Some("voided") => Some(WalletOutcome::Voided),
        _ => None,
    };
    outcome.ok_or_else(|| unexpected("wallet_apply", &Value::Array(answer)))
}
