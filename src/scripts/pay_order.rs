//! `lua/pay_hold.lua` and `lua/pay_settle.lua`: the sale's side of a wallet
//! payment — hold the order, then mark it paid or release the hold.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::{order_of, text, unexpected, Ranking};
use crate::{keys::SaleKeys, order::Order};

pub struct PayHold(pub(super) Script, pub(super) Ack);
pub struct PaySettle(pub(super) Script, pub(super) Ack);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Held for this payment attempt (named by the hold's deadline, ms), now
    /// or by an attempt still under way.
    Held {
        order: Order,
        attempt: u64,
    },
    /// Paid by a wallet payment before.
    PaidByWallet(Order),
    /// Paid through the gateway, cancelled or expired: nothing to pay.
    Closed(Order),
    /// Reserved but past its deadline: to be released as expired.
    Late,
    UnknownOrder,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    Paid(Order),
    Released(Order),
    /// This attempt no longer holds the order (settled before): the order as it is.
    NotHeld(Order),
    UnknownOrder,
}

impl PayHold {
    pub async fn call(
        &self,
        client: &Client,
        keys: &SaleKeys,
        order_id: u64,
        hold_ms: u64,
    ) -> Result<HoldOutcome, Error> {
        let answer: Vec<Value> = self
            .1
            .evalsha(
                &self.0,
                client,
                vec![keys.orders.as_str(), keys.deadlines.as_str(), keys.paying.as_str()],
                vec![order_id.to_string(), hold_ms.to_string()],
            )
            .await?;
        let order = || order_of("pay_hold", answer.get(1));
        Ok(match text(answer.first()).as_deref() {
            Some("held") => {
                let attempt = text(answer.get(2)).and_then(|s| s.parse().ok());
                let attempt = attempt.ok_or_else(|| unexpected("pay_hold", &Value::Array(answer.clone())))?;
                HoldOutcome::Held { order: order()?, attempt }
            }
            Some("paid") => HoldOutcome::PaidByWallet(order()?),
            Some("already_paid" | "cancelled" | "expired") => HoldOutcome::Closed(order()?),
            Some("late") => HoldOutcome::Late,
            Some("unknown_order") => HoldOutcome::UnknownOrder,
            _ => return Err(unexpected("pay_hold", &Value::Array(answer))),
        })
    }
}

impl PaySettle {
    /// `paid`: the wallet debited this attempt; otherwise its hold is released.
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        client: &Client,
        keys: &SaleKeys,
        ranking: Ranking<'_>,
        hour_ttl_secs: u64,
        order_id: u64,
        attempt: u64,
        paid: bool,
    ) -> Result<SettleOutcome, Error> {
        let answer: Vec<Value> = self
            .1
            .evalsha(
                &self.0,
                client,
                ranking.keys(keys),
                vec![
                    order_id.to_string(),
                    if paid { "paid" } else { "release" }.to_string(),
                    attempt.to_string(),
                    hour_ttl_secs.to_string(),
                ],
            )
            .await?;
        let order = || order_of("pay_settle", answer.get(1));
        Ok(match text(answer.first()).as_deref() {
            Some("paid") => {
                let order = order()?;
                if let Ranking::Apart(hour) = ranking {
                    super::rank_apart(client, hour, hour_ttl_secs, &order).await;
                }
                SettleOutcome::Paid(order)
            }
            Some("released") => SettleOutcome::Released(order()?),
            Some("not_held") => SettleOutcome::NotHeld(order()?),
            Some("unknown_order") => SettleOutcome::UnknownOrder,
            _ => return Err(unexpected("pay_settle", &Value::Array(answer))),
        })
    }
}
