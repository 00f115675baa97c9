//! Orders that redeem a coupon held apart (`placement::CouponPlace::Held`): on
//! Redis Cluster the coupon's keys and the sale's live in different slots and
//! no one script may touch both (one node: a campaign's holders in buckets).
//!
//! All or nothing, in three steps and two clean-ups:
//! 1. `hold_coupon.lua`, in the coupon's slot: each request's coupon is marked
//!    held (`hold:<sale>:<token>`, a deadline `HOLD_MS` away, in `holds`).
//! 2. `reserve_order.lua`, in the sale's slot: reserves as on one node, refuses
//!    a hold past its deadline, and records which order took which hold
//!    (`coupon_holds`: token -> order).
//! 3. `settle_coupon.lua`, in the coupon's slot: a hold that became an order
//!    is the order's mark (`<sale>:<order>`), any other is freed.
//!
//! When the process dies between the steps, the expiry task settles every
//! hold overdue by more than `MARGIN_MS`: the reservation can no longer take
//! it (step 2 refuses late), so `coupon_holds` tells for good whether an
//! order did, and whether that order still holds the coupon.
//! A release (cancel, expiry) cannot free the coupon from the sale's slot:
//! it queues the coupon in `coupon_returns`, and [`give_back`] frees it and
//! then takes it off the queue; a crash in between repeats the (idempotent)
//! freeing. No coupon is used twice (a mark is set only where there is none)
//! and none is lost (every hold ends in an order's mark or is freed).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::LazyLock;

use fred::prelude::*;

use crate::{
    buckets::Of,
    keys::{Keys, SaleKeys},
    order::OrderStatus,
    placement::{BucketRouter, CouponPlace},
    scripts::{CouponUse, Held, HoldState, InBucket, Reservation, ReserveOutcome, ReserveRules, Scripts, Settlement},
};

// The hold's timing (see `recovery::timing`).
pub use crate::recovery::timing::{
    COUPON_HOLD_KEEP_MS as KEEP_MS, COUPON_HOLD_MARGIN_MS as MARGIN_MS, COUPON_HOLD_MS as HOLD_MS,
};
/// Holds, or returns, settled per call.
const BATCH: u64 = 100;

/// A token no other hold of this or any process has: a random process part
/// and a counter; for a sale with buckets (see `moves`) led by `bB.`, the
/// bucket whose coupon_holds records it.
fn token(bucket: u32) -> String {
    static PROCESS: LazyLock<u64> =
        LazyLock::new(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let lead = if bucket > 0 { format!("b{bucket}.") } else { String::new() };
    format!("{lead}{:x}.{:x}", *PROCESS, NEXT.fetch_add(1, Relaxed))
}

/// The sale bucket a token's hold was recorded in.
fn bucket_of(token: &str) -> u32 {
    token.strip_prefix('b').and_then(|t| t.split_once('.')).and_then(|(b, _)| b.parse().ok()).unwrap_or(0)
}

impl super::Sales {
    /// Where released orders' coupons are queued (see `placement`): gives
    /// them back. A failure leaves them queued for the expiry task's next tick.
    pub(super) async fn give_back_coupons(&self, sale_id: u64, sale: &SaleKeys) {
        loop {
            match give_back(&self.scripts, self.redis.next(), &self.keys, sale_id, sale).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, sale_id, "coupons of released orders not given back yet");
                    break;
                }
            }
        }
    }

    /// Settles every live campaign's coupon holds overdue (their request
    /// died between the steps): wherever the placement holds them apart;
    /// returns how many.
    pub async fn settle_overdue_holds(&self) -> Result<u64, Error> {
        let campaigns: Vec<u64> = self.redis.next().smembers(self.keys.coupons()).await?;
        let mut settled = 0;
        for coupon_id in campaigns {
            if self.placement.coupon(self.redis.next(), &self.keys, coupon_id).await? == CouponPlace::InOrder {
                continue;
            }
            settled += settle_overdue(&self.scripts, self.redis.next(), &self.keys, coupon_id).await?;
        }
        Ok(settled)
    }
}

/// Reserves `requests` (one sale, one coupon campaign) held apart: hold,
/// reserve, settle. One outcome per request, as `reserve_order` answers.
#[allow(clippy::too_many_arguments)]
pub async fn reserve(
    scripts: &Scripts,
    router: &BucketRouter,
    client: &Client,
    keys: &Keys,
    sale_id: u64,
    at: InBucket,
    coupon_id: u64,
    rules: ReserveRules,
    requests: &[Reservation],
) -> Result<Vec<ReserveOutcome>, Error> {
    let (coupon, sale) = (keys.coupon(coupon_id), keys.sale_bucket(sale_id, at.bucket));
    // A campaign with buckets keeps its holders in several slots: looked up here.
    let n = router.count(client, keys, Of::Coupon, coupon_id).await?;
    let users: Vec<u64> = requests.iter().map(|r| r.user_id).collect();
    let issued = match n {
        1 => vec![false; users.len()],
        n => crate::placement::holders(client, keys, coupon_id, n, &users).await?,
    };
    let asked: Vec<(u64, String, bool)> =
        users.iter().zip(issued).map(|(&user, issued)| (user, token(at.bucket), issued)).collect();
    let held = scripts.hold_coupon.call(client, &coupon, sale_id, HOLD_MS, KEEP_MS, &asked).await?;
    let (discount, deadline, holds): (u64, u64, Vec<HoldState>) = match held {
        Held::Expired => (0, 0, vec![HoldState::Expired; requests.len()]),
        Held::Holds { deadline, discount, seqs } => {
            let holds = seqs
                .into_iter()
                .zip(&asked)
                .map(|(seq, (_, token, _))| match seq {
                    Some(seq) => HoldState::Held { token: token.clone(), seq },
                    None => HoldState::Unavailable,
                })
                .collect();
            (discount, deadline, holds)
        }
    };
    let apart = CouponUse::Held { coupon_id, discount, deadline, holds: &holds };
    // An error leaves the holds to the expiry task, which settles them by
    // what coupon_holds says once they are overdue.
    let outcomes = scripts.reserve_order.call(client, &sale, sale_id, at, apart, rules, requests).await?;
    let settlements: Vec<Settlement> = holds
        .iter()
        .zip(requests)
        .zip(&outcomes)
        .filter_map(|((hold, request), outcome)| {
            let HoldState::Held { token, .. } = hold else { return None };
            let taken = match outcome {
                ReserveOutcome::Reserved(order) => Some(order),
                _ => None,
            };
            Some(Settlement {
                user_id: request.user_id,
                sale_id,
                token: Some(token.clone()),
                order_id: taken.map(|o| o.order_id),
                taken_until: taken.map(|o| o.expires_at),
            })
        })
        .collect();
    if !settlements.is_empty() {
        if let Err(e) = scripts.settle_coupon.settle(client, &coupon, &settlements).await {
            tracing::warn!(error = %e, coupon_id, sale_id, "coupon holds left for the expiry task to settle");
        }
    }
    Ok(outcomes)
}

/// Gives back the coupons of `sale_id`'s released orders (up to a batch) in
/// the bucket `sale` (the sale's own keys without buckets), then takes them
/// off its queue; returns how many were taken off.
pub async fn give_back(
    scripts: &Scripts,
    client: &Client,
    keys: &Keys,
    sale_id: u64,
    sale: &SaleKeys,
) -> Result<u64, Error> {
    let queued: Vec<String> =
        client.zrange(&sale.coupon_returns, 0, BATCH as i64 - 1, None, false, None, false).await?;
    if queued.is_empty() {
        return Ok(0);
    }
    let mut by_coupon: BTreeMap<u64, Vec<(String, u64, u64)>> = BTreeMap::new();
    let mut malformed = Vec::new();
    for member in queued {
        let mut parts = member.splitn(3, ':').map(str::parse::<u64>);
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(coupon)), Some(Ok(user)), Some(Ok(order))) => {
                by_coupon.entry(coupon).or_default().push((member, user, order))
            }
            _ => malformed.push(member),
        }
    }
    let mut done = 0;
    if !malformed.is_empty() {
        tracing::error!(?malformed, sale_id, "coupon returns not understood: dropped");
        let _: () = client.zrem(&sale.coupon_returns, malformed.clone()).await?;
        done += malformed.len() as u64;
    }
    for (coupon_id, returns) in by_coupon {
        let fields: Vec<String> = returns.iter().map(|(_, _, order)| format!("o:{order}")).collect();
        let tokens: Vec<Option<String>> = client.hmget(&sale.coupon_holds, fields).await?;
        let settlements: Vec<Settlement> = returns
            .iter()
            .zip(tokens)
            .map(|((_, user, order), token)| Settlement {
                user_id: *user,
                sale_id,
                token,
                order_id: Some(*order),
                taken_until: None,
            })
            .collect();
        scripts.settle_coupon.settle(client, &keys.coupon(coupon_id), &settlements).await?;
        let members: Vec<String> = returns.into_iter().map(|(member, _, _)| member).collect();
        done += members.len() as u64;
        let _: () = client.zrem(&sale.coupon_returns, members).await?;
    }
    Ok(done)
}

/// Settles `coupon_id`'s holds overdue by more than [`MARGIN_MS`] (up to a
/// batch) by what their sales recorded; returns how many.
pub async fn settle_overdue(scripts: &Scripts, client: &Client, keys: &Keys, coupon_id: u64) -> Result<u64, Error> {
    let coupon = keys.coupon(coupon_id);
    let due = scripts.settle_coupon.due(client, &coupon, MARGIN_MS, BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut settlements = Vec::with_capacity(due.len());
    for (user_id, sale_id, token) in due {
        let sale = keys.sale_bucket(sale_id, bucket_of(&token));
        let order_id: Option<u64> = client.hget(&sale.coupon_holds, &token).await?;
        // The order took the hold; it still holds the coupon unless released.
        let mut taken_until = None;
        if let Some(order_id) = order_id {
            let json: Option<String> = client.hget(&sale.orders, order_id).await?;
            if let Some(order) = json.as_deref().and_then(|j| crate::order::Order::decode(j).ok()) {
                if matches!(order.status, OrderStatus::Reserved | OrderStatus::Paid) {
                    taken_until = Some(order.expires_at);
                }
            }
        }
        tracing::info!(
            coupon_id,
            user_id,
            sale_id,
            order_id,
            taken = taken_until.is_some(),
            "overdue coupon hold settled"
        );
        settlements.push(Settlement { user_id, sale_id, token: Some(token), order_id, taken_until });
    }
    scripts.settle_coupon.settle(client, &coupon, &settlements).await?;
    Ok(settlements.len() as u64)
}
