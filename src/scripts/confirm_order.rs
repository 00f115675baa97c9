//! `lua/confirm_order.lua`: payment confirmation, reserved -> paid.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::{order_of, text, unexpected, Ranking};
use crate::{keys::SaleKeys, order::Order};

pub struct ConfirmOrder(pub(super) Script, pub(super) Ack);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// Paid now, or already paid before by this same payment (key and amount): idempotent.
    Paid(Order),
    /// Paid before by another payment (another key, or another amount).
    AlreadyPaid(Order),
    /// Cancelled or expired: cannot be paid.
    Closed(Order),
    /// Still reserved but past its deadline: to be released as expired.
    Late,
    /// A wallet payment holds the order right now.
    Paying,
    AmountMismatch {
        to_pay: u64,
    },
    UnknownOrder,
}

impl ConfirmOutcome {
    /// The outcome's name in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ConfirmOutcome::Paid(_) => "paid",
            ConfirmOutcome::AlreadyPaid(_) => "already_paid",
            ConfirmOutcome::Closed(_) | ConfirmOutcome::Late => "closed",
            ConfirmOutcome::Paying => "paying",
            ConfirmOutcome::AmountMismatch { .. } => "amount_mismatch",
            ConfirmOutcome::UnknownOrder => "unknown_order",
        }
    }
}

impl ConfirmOrder {
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        client: &Client,
        keys: &SaleKeys,
        ranking: Ranking<'_>,
        hour_ttl_secs: u64,
        order_id: u64,
        amount: u64,
        payment_key: &str,
    ) -> Result<ConfirmOutcome, Error> {
        let answer: Vec<Value> = self
            .1
            .evalsha(
                &self.0,
                client,
                // The layout of pay_settle.lua (lua/lib/order.lua's mark_paid).
                ranking.keys(keys),
                vec![order_id.to_string(), amount.to_string(), payment_key.to_string(), hour_ttl_secs.to_string()],
            )
            .await?;
        let outcome = match text(answer.first()).as_deref() {
            Some("paid") => {
                let order = order_of("confirm_order", answer.get(1))?;
                if let (Ranking::Apart(hour), Some("fresh")) = (ranking, text(answer.get(2)).as_deref()) {
                    super::rank_apart(client, hour, hour_ttl_secs, &order).await;
                }
                ConfirmOutcome::Paid(order)
            }
            Some("already_paid") => ConfirmOutcome::AlreadyPaid(order_of("confirm_order", answer.get(1))?),
            Some("cancelled" | "expired") => ConfirmOutcome::Closed(order_of("confirm_order", answer.get(1))?),
            Some("late") => ConfirmOutcome::Late,
            Some("paying") => ConfirmOutcome::Paying,
            Some("amount_mismatch") => {
                ConfirmOutcome::AmountMismatch { to_pay: text(answer.get(1)).and_then(|s| s.parse().ok()).unwrap_or(0) }
            }
            Some("unknown_order") => ConfirmOutcome::UnknownOrder,
            _ => return Err(unexpected("confirm_order", &Value::Array(answer))),
        };
        Ok(outcome)
    }
}
