//! `lua/release_orders.lua`: cancel one order, or expire the overdue ones;
//! either way stock, the user's limit and the coupon come back (on a cluster
//! the coupon through the sale's coupon_returns, see `sales::holds`).
//! `coupon_prefix` is the coupon keys' prefix on one node, "" on a cluster.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::{int, order_of, text, unexpected};
use crate::{keys::SaleKeys, order::Order};

pub struct ReleaseOrders(pub(super) Script, pub(super) Ack);

impl ReleaseOrders {
    fn keys(keys: &SaleKeys) -> Vec<&str> {
        vec![
            &keys.stock,
            &keys.bought,
            &keys.orders,
            &keys.deadlines,
            &keys.outbox,
            &keys.idem,
            &keys.idem_expiry,
            &keys.paying,
            &keys.coupon_returns,
            &keys.released,
        ]
    }

    /// The order after the call (its status says what happened: cancelled,
    /// or paid / expired when it already was; still reserved when a wallet
    /// payment holds it), or None when unknown.
    pub async fn cancel(
        &self,
        client: &Client,
        keys: &SaleKeys,
        coupon_prefix: &str,
        order_id: u64,
    ) -> Result<Option<Order>, Error> {
        let answer: Vec<Value> = self
            .1
            .evalsha(
                &self.0,
                client,
                Self::keys(keys),
                vec!["cancel".to_string(), coupon_prefix.to_string(), order_id.to_string()],
            )
            .await?;
        match text(answer.first()).as_deref() {
            Some("unknown_order") => Ok(None),
            Some(_) => Ok(Some(order_of("release_orders", answer.get(1))?)),
            None => Err(unexpected("release_orders", &Value::Array(answer))),
        }
    }

    /// Expires up to `limit` overdue reservations and forgets up to `limit`
    /// idempotency answers past their expiry; returns how many of each.
    pub async fn expire(
        &self,
        client: &Client,
        keys: &SaleKeys,
        coupon_prefix: &str,
        limit: u64,
    ) -> Result<Expired, Error> {
        let answer: Vec<Value> = self
            .1
            .evalsha(
                &self.0,
                client,
                Self::keys(keys),
                vec!["expire".to_string(), coupon_prefix.to_string(), limit.to_string()],
            )
            .await?;
        let count = |i: usize| answer.get(i).and_then(int).map(|n| n.max(0) as u64);
        match (count(0), count(1)) {
            (Some(released), Some(forgotten)) => {
                Ok(Expired { released, forgotten, coupons_to_return: count(2).unwrap_or(0) })
            }
            _ => Err(unexpected("release_orders", &Value::Array(answer))),
        }
    }
}

/// What one expiry call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Reservations released as expired.
    pub released: u64,
    /// Idempotency answers deleted past their expiry.
    pub forgotten: u64,
    /// On a cluster: released orders whose coupon is still to be given back.
    pub coupons_to_return: u64,
}
