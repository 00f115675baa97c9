//! `lua/reserve_order.lua`: reserve a multi-SKU order atomically.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::{order_of, text, unexpected};
use crate::{
    keys::{CouponKeys, SaleKeys},
    order::Order,
};

pub struct ReserveOrder(pub(super) Script, pub(super) Ack);

/// The coupon every request of a call redeems, if any.
#[derive(Clone, Copy)]
pub enum CouponUse<'a> {
    None,
    /// On one node: the script checks and marks the coupon itself.
    Here(u64, &'a CouponKeys),
    /// Held in its own slot first (see `hold_coupon`); `holds[i]` is
    /// request i's, recorded in the sale's coupon_holds.
    Held {
        coupon_id: u64,
        discount: u64,
        deadline: u64,
        holds: &'a [HoldState],
    },
}

/// Where one request's coupon hold stands before its reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldState {
    Held { token: String, seq: u64 },
    Unavailable,
    Expired,
}

/// Where a call runs: the sale's bucket count as the caller believes it, and
/// the bucket (see `sales::moves`); `(1, 0)` for a sale without buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InBucket {
    pub believed: u32,
    pub bucket: u32,
}

impl InBucket {
    pub const NONE: InBucket = InBucket { believed: 1, bucket: 0 };
}

/// One reservation request of a call, validated. The sale and the coupon
/// campaign are the call's (every request of a call shares them).
#[derive(Clone)]
pub struct Reservation {
    pub user_id: u64,
    /// Distinct SKUs with quantities > 0.
    pub lines: Vec<(u64, u64)>,
    /// `user:key` and the request's fingerprint, when the client sent an Idempotency-Key.
    pub idempotency: Option<(String, String)>,
    /// The caller showed a valid admission (needed in a sale with a waiting room).
    pub admitted: bool,
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
    /// The coupon's campaign has ended: it no longer discounts an order.
    CouponExpired,
    /// On a cluster: the coupon's hold lapsed before the reservation ran;
    /// nothing was reserved (the service was too slow; try again).
    HoldLapsed,
    /// The sale has this many buckets, not the count the caller routed by:
    /// nothing was done (learn it and route again).
    Buckets(u32),
    /// The user made the most orders the sale allows one user (this many,
    /// released ones included).
    TooManyOrders(u64),
    /// The sale has a waiting room, and it has not admitted this user (or the
    /// admission lapsed, or was used by an earlier reservation).
    NotAdmitted,
}

/// What every reservation of a call is held to.
#[derive(Clone, Copy, Debug)]
pub struct ReserveRules {
    /// How long an Idempotency-Key's answer is replayed (ms).
    pub idempotency_ttl_ms: u64,
    /// Most orders one user may make in one sale; 0: no cap.
    pub max_orders_per_user: u64,
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
            ReserveOutcome::CouponExpired => "coupon_expired",
            ReserveOutcome::HoldLapsed => "hold_lapsed",
            ReserveOutcome::Buckets(_) => "buckets",
            ReserveOutcome::TooManyOrders(_) => "too_many_orders",
            ReserveOutcome::NotAdmitted => "not_admitted",
        }
    }
}

impl ReserveOrder {
    /// Serves `requests` in order in one call; one outcome per request, each
    /// held to `rules`.
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        client: &Client,
        keys: &SaleKeys,
        sale_id: u64,
        at: InBucket,
        coupon: CouponUse<'_>,
        rules: ReserveRules,
        requests: &[Reservation],
    ) -> Result<Vec<ReserveOutcome>, Error> {
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
            &keys.idem_expiry,
            &keys.coupon_holds,
            &keys.room.admitted,
        ];
        let idempotency_ttl_ms = rules.idempotency_ttl_ms;
        let lines: usize = requests.iter().map(|r| r.lines.len()).sum();
        let mut args = Vec::with_capacity(9 + 6 * requests.len() + 2 * lines);
        args.extend([sale_id.to_string()]);
        match coupon {
            CouponUse::None => {
                args.extend([String::new(), idempotency_ttl_ms.to_string(), "here".into(), "".into(), "".into()])
            }
            CouponUse::Here(id, coupon) => {
                k.extend([coupon.meta.as_str(), coupon.users.as_str(), coupon.used.as_str()]);
                args.extend([id.to_string(), idempotency_ttl_ms.to_string(), "here".into(), "".into(), "".into()]);
            }
            CouponUse::Held { coupon_id, discount, deadline, holds } => {
                if holds.len() != requests.len() {
                    return Err(Error::new(ErrorKind::InvalidArgument, "one coupon hold per reservation"));
                }
                args.extend([
                    coupon_id.to_string(),
                    idempotency_ttl_ms.to_string(),
                    "held".into(),
                    discount.to_string(),
                    deadline.to_string(),
                ]);
            }
        }
        args.extend([at.believed.to_string(), at.bucket.to_string(), requests.len().to_string()]);
        args.push(rules.max_orders_per_user.to_string());
        for (i, r) in requests.iter().enumerate() {
            let (idem_key, fingerprint) = r.idempotency.clone().unwrap_or_default();
            let admitted = if r.admitted { "1" } else { "0" };
            args.extend([r.user_id.to_string(), idem_key, fingerprint, admitted.into(), r.lines.len().to_string()]);
            for (sku, quantity) in &r.lines {
                args.extend([sku.to_string(), quantity.to_string()]);
            }
            if let CouponUse::Held { holds, .. } = coupon {
                args.extend(match &holds[i] {
                    HoldState::Held { token, seq } => [token.clone(), seq.to_string()],
                    HoldState::Unavailable => [String::new(), "coupon_unavailable".into()],
                    HoldState::Expired => [String::new(), "coupon_expired".into()],
                });
            }
        }
        let answers: Vec<Value> = self.1.evalsha(&self.0, client, k, args).await?;
        if answers.len() != requests.len() {
            return Err(unexpected("reserve_order", &Value::Array(answers)));
        }
        answers.into_iter().map(outcome).collect()
    }
}

fn outcome(answer: Value) -> Result<ReserveOutcome, Error> {
    let Value::Array(answer) = answer else { return Err(unexpected("reserve_order", &answer)) };
    let skus = |v: Option<&Value>| -> Vec<u64> {
        text(v).map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect()).unwrap_or_default()
    };
    Ok(match text(answer.first()).as_deref() {
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
        Some("coupon_expired") => ReserveOutcome::CouponExpired,
        Some("hold_lapsed") => ReserveOutcome::HoldLapsed,
        Some("not_admitted") => ReserveOutcome::NotAdmitted,
        Some("too_many_orders") => {
            ReserveOutcome::TooManyOrders(text(answer.get(1)).and_then(|s| s.parse().ok()).unwrap_or(0))
        }
        Some("buckets") => ReserveOutcome::Buckets(
            text(answer.get(1)).and_then(|s| s.parse::<u32>().ok()).unwrap_or(1).clamp(1, crate::buckets::MAX_BUCKETS),
        ),
        _ => return Err(unexpected("reserve_order", &Value::Array(answer))),
    })
}
