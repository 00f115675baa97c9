//! Sales, orders and product rankings in Redis, through the typed scripts:
//! the only door the HTTP handlers, the expiry task and the CLI use.

pub mod holds;
mod restore;

use std::sync::Arc;

use fred::prelude::*;

use crate::{
    batch::Batcher,
    caller::{self, WriteError},
    keys::{Keys, OUTBOX_GROUP},
    metrics::METRICS,
    order::{Order, OrderStatus},
    scripts::{
        ConfirmOutcome, CouponUse, Expired, Reservation, ReserveOutcome, SaleInfo, SaleSpec, Scripts, SeedMode,
        SeedOutcome, StockChange,
    },
    soldout::{sku_key, SoldOut},
    time::now_ms,
};

/// Where a sale being restored opens until its orders are back, so no
/// reservation takes a unit or an order id halfway through: 2^53 ms, far in
/// the future and still exact in a Lua double.
pub(crate) const CLOSED_UNTIL_RESTORED: u64 = 1 << 53;
/// Orders written per HSET while restoring.
const RESTORE_CHUNK: usize = 500;

/// Longest ranking window served; hourly buckets live this long.
pub const MAX_RANKING_HOURS: u64 = 30 * 24;
const HOUR_MS: u64 = 3_600_000;

#[derive(Clone)]
pub struct Sales {
    redis: Pool,
    keys: Keys,
    scripts: Arc<Scripts>,
    /// SKUs known to be sold out a moment ago (see `soldout`).
    sold_out: Arc<SoldOut>,
    /// Concurrent reservations of one sale (and coupon campaign) share a
    /// script call (see `batch`).
    reservations: Batcher<(u64, Option<u64>), Reservation, ReserveOutcome>,
}

/// Longest an Idempotency-Key's answer is kept (a longer setting is cut to it).
const MAX_IDEMPOTENCY_TTL_MS: u64 = 100 * 365 * 24 * 3_600_000;

/// Reservations served by one `reserve_order.lua` call at most.
const MAX_BATCH: usize = 128;

/// A reservation request as the API takes it.
pub struct NewOrder<'a> {
    pub sale_id: u64,
    pub user_id: u64,
    pub lines: &'a [(u64, u64)],
    pub coupon_id: Option<u64>,
    pub idempotency_key: Option<&'a str>,
}

impl Sales {
    /// An Idempotency-Key's first answer is replayed for `idempotency_ttl`.
    pub fn new(redis: Pool, keys: Keys, scripts: Arc<Scripts>, idempotency_ttl: std::time::Duration) -> Self {
        // At most ~100 years: `now + ttl` stays exact in Lua's doubles.
        let ttl_ms = idempotency_ttl.as_millis().min(MAX_IDEMPOTENCY_TTL_MS as u128) as u64;
        let reservations = {
            let (redis, keys, scripts) = (redis.clone(), keys.clone(), scripts.clone());
            Batcher::spawn(
                redis.size(),
                MAX_BATCH,
                &METRICS.reserve_batch_size,
                move |(sale_id, coupon_id): (u64, Option<u64>), requests: Vec<Reservation>| {
                    let client = crate::redis::connected(&redis).cloned();
                    let (keys, scripts) = (keys.clone(), scripts.clone());
                    async move {
                        let client = client?;
                        let sale = keys.sale(sale_id);
                        let apart = match coupon_id {
                            Some(id) => scripts.ack.cluster || crate::buckets::of(&client, &keys, id).await? > 1,
                            None => false,
                        };
                        Ok(match coupon_id {
                            // The coupon lives in another slot (or its holders in
                            // several, with buckets): held first (see `holds`).
                            Some(id) if apart => {
                                holds::reserve(&scripts, &client, &keys, sale_id, id, ttl_ms, &requests).await?
                            }
                            Some(id) => {
                                let coupon = CouponUse::Here(id, &keys.coupon(id));
                                scripts.reserve_order.call(&client, &sale, sale_id, coupon, ttl_ms, &requests).await?
                            }
                            None => {
                                let none = CouponUse::None;
                                scripts.reserve_order.call(&client, &sale, sale_id, none, ttl_ms, &requests).await?
                            }
                        })
                    }
                },
            )
        };
        Sales { redis, keys, scripts, sold_out: Arc::default(), reservations }
    }

    /// Reserves the order, unless the request's caller gives up while it
    /// waits for a script call (see `batch`).
    pub async fn reserve(&self, new: &NewOrder<'_>) -> Result<ReserveOutcome, WriteError> {
        let now = now_ms();
        // A retry with an Idempotency-Key must replay its first answer, so it
        // always goes to the script.
        if new.idempotency_key.is_none() {
            let short: Vec<u64> = new
                .lines
                .iter()
                .map(|(sku, _)| *sku)
                .filter(|sku| self.sold_out.is_set(sku_key(new.sale_id, *sku), now))
                .collect();
            if !short.is_empty() {
                return Ok(ReserveOutcome::SoldOut(short));
            }
        }
        let idempotency = new.idempotency_key.map(|key| (format!("{}:{key}", new.user_id), fingerprint(new)));
        let reservation = Reservation { user_id: new.user_id, lines: new.lines.to_vec(), idempotency };
        let outcome = self.reservations.call((new.sale_id, new.coupon_id), reservation).await?;
        if let ReserveOutcome::SoldOut(skus) = &outcome {
            // Only a SKU with nothing left: a large order that did not fit
            // says nothing about a small one.
            if let Ok(Some(info)) = Box::pin(self.info(new.sale_id)).await {
                for sku in skus {
                    if info.skus.iter().any(|s| s.sku == *sku && s.remaining == 0) {
                        self.sold_out.set(sku_key(new.sale_id, *sku), now);
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// Pays a reserved order. A confirmation after the deadline releases the
    /// order as expired and answers `Closed` with it. Claims the request's
    /// caller first (see `caller`): once sent, its answer is awaited.
    pub async fn confirm(
        &self,
        sale_id: u64,
        order_id: u64,
        amount: u64,
        payment_key: &str,
    ) -> Result<ConfirmOutcome, WriteError> {
        let keys = self.keys.sale(sale_id);
        let bucket = self.keys.ranking_bucket(now_ms() / HOUR_MS);
        let ttl = (MAX_RANKING_HOURS + 1) * 3600;
        let client = crate::redis::connected(&self.redis)?;
        caller::claim()?;
        match self.scripts.confirm_order.call(client, &keys, &bucket, ttl, order_id, amount, payment_key).await? {
            ConfirmOutcome::Late => match self.cancel(sale_id, order_id).await? {
                Some(order) => Ok(ConfirmOutcome::Closed(order)),
                None => Ok(ConfirmOutcome::UnknownOrder),
            },
            other => Ok(other),
        }
    }

    /// Cancels a reserved order (a reserved order past its deadline becomes
    /// expired instead). The answer's status says what the order is now.
    /// Claims the request's caller first (see `caller`).
    pub async fn cancel(&self, sale_id: u64, order_id: u64) -> Result<Option<Order>, WriteError> {
        let prefix = self.coupon_prefix();
        let client = crate::redis::connected(&self.redis)?;
        caller::claim()?;
        let order = self.scripts.release_orders.cancel(client, &self.keys.sale(sale_id), &prefix, order_id).await?;
        if let Some(order) = order.as_ref().filter(|o| o.coupon_id.is_some() && self.scripts.ack.cluster) {
            if matches!(order.status, OrderStatus::Cancelled | OrderStatus::Expired) {
                self.give_back_coupons(sale_id).await;
            }
        }
        Ok(order)
    }

    /// Expires up to `limit` overdue reservations of one sale, and forgets up
    /// to `limit` of its idempotency answers past their expiry.
    pub async fn expire_due(&self, sale_id: u64, limit: u64) -> Result<Expired, Error> {
        let prefix = self.coupon_prefix();
        let expired =
            self.scripts.release_orders.expire(self.redis.next(), &self.keys.sale(sale_id), &prefix, limit).await?;
        if expired.coupons_to_return > 0 {
            self.give_back_coupons(sale_id).await;
        }
        Ok(expired)
    }

    /// The coupon keys' prefix release_orders.lua frees coupons with; "" on a
    /// cluster, where it queues them for [`holds::give_back`] instead.
    fn coupon_prefix(&self) -> String {
        if self.scripts.ack.cluster {
            String::new()
        } else {
            self.keys.coupon_key_prefix()
        }
    }

    /// On a cluster: gives back the coupons of the sale's released orders.
    /// A failure leaves them queued for the expiry task's next tick.
    async fn give_back_coupons(&self, sale_id: u64) {
        loop {
            match holds::give_back(&self.scripts, self.redis.next(), &self.keys, sale_id).await {
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
    /// died between the steps, see `holds`): on a cluster, or for campaigns
    /// with buckets; returns how many.
    pub async fn settle_overdue_holds(&self) -> Result<u64, Error> {
        let campaigns: Vec<u64> = self.redis.next().smembers(self.keys.coupons()).await?;
        let mut settled = 0;
        for coupon_id in campaigns {
            // One node holds only for campaigns with buckets.
            if !self.scripts.ack.cluster && crate::buckets::of(self.redis.next(), &self.keys, coupon_id).await? == 1 {
                continue;
            }
            settled += holds::settle_overdue(&self.scripts, self.redis.next(), &self.keys, coupon_id).await?;
        }
        Ok(settled)
    }

    pub async fn order(&self, sale_id: u64, order_id: u64) -> Result<Option<Order>, Error> {
        let json: Option<String> = self.redis.next().hget(self.keys.sale(sale_id).orders, order_id).await?;
        json.map(|j| {
            Order::from_json(&j)
                .map_err(|e| Error::new(ErrorKind::Parse, format!("stored order {sale_id}/{order_id}: {e}")))
        })
        .transpose()
    }

    /// Every order Redis holds for a sale (for reconcile and status).
    pub async fn orders(&self, sale_id: u64) -> Result<Vec<Order>, Error> {
        let all: std::collections::HashMap<u64, String> =
            self.redis.next().hgetall(self.keys.sale(sale_id).orders).await?;
        let mut orders = all
            .into_values()
            .map(|j| Order::from_json(&j).map_err(|e| Error::new(ErrorKind::Parse, format!("stored order: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        orders.sort_by_key(|o| o.order_id);
        Ok(orders)
    }

    pub async fn info(&self, sale_id: u64) -> Result<Option<SaleInfo>, Error> {
        self.scripts.sale_info.call(self.redis.next(), &self.keys.sale(sale_id)).await
    }

    /// Seeds the sale, and lists it so the relay and the expiry task find it:
    /// before and after, as `Coupons::seed` does.
    pub async fn seed(&self, sale_id: u64, spec: &SaleSpec, mode: SeedMode) -> Result<SeedOutcome, Error> {
        let keys = self.keys.sale(sale_id);
        let client = self.redis.next();
        let _: () = client.sadd(self.keys.sales(), sale_id).await?;
        let seeded = self.scripts.seed_sale.call(client, &keys, sale_id, spec, mode).await?;
        let _: () = client.sadd(self.keys.sales(), sale_id).await?;
        Ok(seeded)
    }

    /// Rebuilds a sale Redis lost from what MySQL recorded: `spec` with
    /// stock = supplied in all, and every order. Remaining stock, per-user
    /// holdings, coupon used-marks, deadlines and the order sequence follow
    /// from the orders; idempotency keys and rankings are not recorded in
    /// MySQL and stay lost.
    ///
    /// For a sale that is not live in Redis: it replaces whatever Redis holds
    /// for it. The sale is seeded closed and opened by the last write, so
    /// nobody reserves against a half-restored sale; confirm, cancel and the
    /// expiry task may act on the orders already written, which are whole.
    /// Checks everything before the first write.
    pub async fn restore(&self, sale_id: u64, spec: &SaleSpec, orders: &[Order]) -> Result<(), Error> {
        let plan = restore::Restored::of(sale_id, spec, orders)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("sale {sale_id}: {e}")))?;
        let keys = self.keys.sale(sale_id);
        let client = self.redis.next();

        let closed = SaleSpec { starts_at: CLOSED_UNTIL_RESTORED, ..spec.clone() };
        self.seed(sale_id, &closed, SeedMode::Replace).await?;
        if !plan.remaining.is_empty() {
            let _: () = client.hset(&keys.stock, plan.remaining).await?;
        }
        if !plan.bought.is_empty() {
            let _: () = client.hset(&keys.bought, plan.bought).await?;
        }
        // Before the orders: a release of a restored order gives its coupon
        // back. Not to a campaign Redis let go (it retired): that would bring
        // back a key of it.
        for (coupon, user, holder) in plan.coupon_marks {
            let keys = self.keys.coupon(coupon);
            if client.exists::<u64, _>(&keys.meta).await? == 1 {
                let _: () = client.hset(keys.used, (user, holder)).await?;
            }
        }
        // A campaign's keys stay until the reservations holding its coupons are over.
        for (coupon, until) in plan.coupon_held_until {
            let meta = self.keys.coupon(coupon).meta;
            let held: Option<u64> = client.hget(&meta, "held_until").await?;
            if client.exists::<u64, _>(&meta).await? == 1 && held.is_none_or(|h| h < until) {
                let _: () = client.hset(&meta, ("held_until", until)).await?;
            }
        }
        for chunk in orders.chunks(RESTORE_CHUNK) {
            let fields: Vec<(u64, String)> = chunk.iter().map(|o| (o.order_id, o.to_lua_json())).collect();
            let _: () = client.hset(&keys.orders, fields).await?;
        }
        if !plan.deadlines.is_empty() {
            let _: () = client.zadd(&keys.deadlines, None, None, false, false, plan.deadlines).await?;
        }
        if let Some(last) = plan.last_order_id {
            let _: () = client.set(&keys.seq, last, None, None, false).await?;
        }
        // A relay that knew the old stream still reads it with its group, and
        // a stream that vanished with the sale took the group along: every read
        // would fail with NOGROUP until it is back.
        let group: Result<(), Error> = client.xgroup_create(&keys.outbox, OUTBOX_GROUP, "0", true).await;
        match group {
            Err(e) if !e.details().starts_with("BUSYGROUP") => return Err(e),
            _ => {}
        }
        client.hset(&keys.meta, ("starts_at", spec.starts_at)).await
    }

    /// (remaining, supplied in all) after the change; None for an unknown SKU.
    pub async fn adjust_stock(&self, sale_id: u64, sku: u64, change: StockChange) -> Result<Option<(u64, u64)>, Error> {
        self.scripts.adjust_stock.call(self.redis.next(), &self.keys.sale(sale_id), sku, change).await
    }

    /// Takes the expiry task's current tick for `instance` unless another
    /// instance took it less than `tick` ago: true when this one runs it.
    pub async fn take_expiry_turn(&self, instance: &str, tick: std::time::Duration) -> Result<bool, Error> {
        let ttl = Expiration::PX(tick.as_millis().max(1) as i64);
        let taken: Option<String> =
            self.redis.next().set(self.keys.expiry_turn(), instance, Some(ttl), Some(SetOptions::NX), false).await?;
        Ok(taken.is_some())
    }

    pub async fn ids(&self) -> Result<Vec<u64>, Error> {
        let mut ids: Vec<u64> = self.redis.next().smembers(self.keys.sales()).await?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// Most-paid products over the last `hours` (hourly buckets, the current
    /// one included): (sku, paid orders), best first.
    pub async fn top_products(&self, hours: u64, limit: usize) -> Result<Vec<(u64, u64)>, Error> {
        let now_hour = now_ms() / HOUR_MS;
        let hours = hours.clamp(1, MAX_RANKING_HOURS);
        let keys: Vec<String> = (0..hours).map(|h| self.keys.ranking_bucket(now_hour - h)).collect();
        let scored: Vec<(String, f64)> = self.redis.next().zunion(keys, None, None, true).await?;
        let mut ranked: Vec<(u64, u64)> =
            scored.into_iter().filter_map(|(sku, n)| Some((sku.parse().ok()?, n.max(0.0) as u64))).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(limit);
        Ok(ranked)
    }
}

/// What makes two requests "the same" for an Idempotency-Key: user, lines
/// (in SKU order) and coupon.
fn fingerprint(new: &NewOrder<'_>) -> String {
    let mut lines = new.lines.to_vec();
    lines.sort_unstable();
    let lines: Vec<String> = lines.iter().map(|(sku, q)| format!("{sku}x{q}")).collect();
    format!("{}|{}|{}", new.user_id, lines.join(","), new.coupon_id.map(|c| c.to_string()).unwrap_or_default())
}
