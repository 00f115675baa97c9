//! `lua/reserve_order.lua`: reserve a multi-SKU order atomically.

use fred::{prelude::*, types::scripts::Script};

use super::{order_of, text, unexpected};
use crate::{
    keys::{CouponKeys, SaleKeys},
    order::Order,
};

pub struct ReserveOrder(pub(super) Script);

/// One reservation request, validated.
pub struct Reservation<'a> {
    pub sale_id: u64,
    pub user_id: u64,
    /// Distinct SKUs with quantities > 0.
    pub lines: &'a [(u64, u64)],
    pub coupon: Option<(u64, &'a CouponKeys)>,
    /// `user:key` and the request's fingerprint, when the client sent an Idempotency-Key.
    pub idempotency: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved(Order),
    /// The same Idempotency-Key with the same request: the first answer again.
    Replay(Order),
    /// The same Idempotency-Key with a different request.
    IdempotencyMismatch,
    UnknownSale,
    NotStarted,
    Ended,
    UnknownSkus(Vec<u64>),
    SoldOut(Vec<u64>),
    /// `left` more units would still have been allowed.
    LimitExceeded {
        left: u64,
    },
    CouponUnavailable,
}

impl ReserveOutcome {
    /// The outcome's name in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ReserveOutcome::Reserved(_) => "reserved",
            ReserveOutcome::Replay(_) => "replay",
            ReserveOutcome::IdempotencyMismatch => "idempotency_mismatch",
            ReserveOutcome::UnknownSale => "unknown_sale",
            ReserveOutcome::NotStarted => "not_started",
            ReserveOutcome::Ended => "ended",
            ReserveOutcome::UnknownSkus(_) => "unknown_sku",
            ReserveOutcome::SoldOut(_) => "sold_out",
            ReserveOutcome::LimitExceeded { .. } => "limit_exceeded",
            ReserveOutcome::CouponUnavailable => "coupon_unavailable",
        }
    }
}

impl ReserveOrder {
    pub async fn call(&self, client: &Client, keys: &SaleKeys, r: &Reservation<'_>) -> Result<ReserveOutcome, Error> {
        let mut k: Vec<&str> = vec![
            &keys.meta,
            &keys.prices,
            &keys.stock,
            &keys.bought,
            &keys.orders,
            &keys.deadlines,
            &keys.idem,
            &keys.seq,
            &keys.outbox,
        ];
        if let Some((_, coupon)) = r.coupon {
            k.extend([coupon.meta.as_str(), coupon.users.as_str(), coupon.used.as_str()]);
        }
        let (idem_key, fingerprint) = r.idempotency.clone().unwrap_or_default();
        let mut args = Vec::with_capacity(6 + 2 * r.lines.len());
        args.extend([
            r.sale_id.to_string(),
            r.user_id.to_string(),
            idem_key,
            fingerprint,
            r.coupon.map(|(id, _)| id.to_string()).unwrap_or_default(),
            r.lines.len().to_string(),
        ]);
        for (sku, quantity) in r.lines {
            args.extend([sku.to_string(), quantity.to_string()]);
        }
        let answer: Vec<Value> = self.0.evalsha_with_reload(client, k, args).await?;
        let skus = |v: Option<&Value>| -> Vec<u64> {
            text(v).map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect()).unwrap_or_default()
        };
        let outcome = match text(answer.first()).as_deref() {
            Some("reserved") => ReserveOutcome::Reserved(order_of("reserve_order", answer.get(1))?),
            Some("replay") => ReserveOutcome::Replay(order_of("reserve_order", answer.get(1))?),
            Some("idem_mismatch") => ReserveOutcome::IdempotencyMismatch,
            Some("unknown_sale") => ReserveOutcome::UnknownSale,
            Some("not_started") => ReserveOutcome::NotStarted,
            Some("ended") => ReserveOutcome::Ended,
            Some("unknown_sku") => ReserveOutcome::UnknownSkus(skus(answer.get(1))),
            Some("sold_out") => ReserveOutcome::SoldOut(skus(answer.get(1))),
            Some("limit_exceeded") => ReserveOutcome::LimitExceeded {
                left: text(answer.get(1)).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0).max(0) as u64,
            },
            Some("coupon_unavailable") => ReserveOutcome::CouponUnavailable,
            _ => return Err(unexpected("reserve_order", &Value::Array(answer))),
        };
        Ok(outcome)
    }
}
