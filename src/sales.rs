//! Sales, orders and product rankings in Redis, through the typed scripts:
//! the only door the HTTP handlers, the expiry task and the CLI use.

mod forget;
pub mod holds;
pub mod moves;
mod restore;
mod summary;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use fred::prelude::*;

use crate::{
    batch::Batcher,
    buckets::{self, Of},
    caller::{self, WriteError},
    keys::{Keys, SaleKeys},
    metrics::METRICS,
    order::{Order, OrderStatus},
    placement::{CouponPlace, CouponReturn, Placement},
    scripts::{
        ConfirmOutcome, CouponUse, Expired, InBucket, Reservation, ReserveOutcome, ReserveRules, SaleInfo, SaleSpec,
        Scripts, SeedMode, SeedOutcome, StockChange,
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

/// Longest ranking window served; hourly tallies live this long.
pub const MAX_RANKING_HOURS: u64 = 30 * 24;
const HOUR_MS: u64 = 3_600_000;

#[derive(Clone)]
pub struct Sales {
    redis: Pool,
    keys: Keys,
    scripts: Arc<Scripts>,
    /// Where the keys live, and the bucket counts learnt (see `placement`).
    placement: Placement,
    /// SKUs known to be sold out a moment ago (see `soldout`).
    sold_out: Arc<SoldOut>,
    /// Concurrent reservations of one sale (and coupon campaign, and bucket)
    /// share a script call (see `batch`).
    reservations: Batcher<(u64, Option<u64>, InBucket), Reservation, ReserveOutcome>,
    /// One refill of a bucket at a time per process (see `moves`): the
    /// requests that found it short meanwhile wait and ask again.
    refills: Arc<Mutex<RefillLocks>>,
    /// Bucketed sales' summaries, shared for a moment (see `summary`).
    summaries: Arc<summary::Summaries>,
}

/// One async lock per (sale, bucket) being refilled.
type RefillLocks = HashMap<(u64, u32), Arc<tokio::sync::Mutex<()>>>;

/// Refill locks remembered at most (forgotten all at once past it).
const MAX_REFILL_LOCKS: usize = 10_000;
/// Routes of one reservation at most: a count learnt again, a refill.
const MAX_ROUTES: usize = 3;

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
    /// The caller showed a valid admission of the sale's waiting room (see
    /// `domain::queue`); a sale with one refuses everyone else.
    pub admitted: bool,
}

impl Sales {
    /// An Idempotency-Key's first answer is replayed for `idempotency_ttl`; a
    /// user may make at most `max_orders_per_user` orders per sale (0: no cap).
    pub fn new(
        redis: Pool,
        keys: Keys,
        scripts: Arc<Scripts>,
        placement: Placement,
        idempotency_ttl: std::time::Duration,
        max_orders_per_user: u64,
    ) -> Self {
        // At most ~100 years: `now + ttl` stays exact in Lua's doubles.
        let idempotency_ttl_ms = idempotency_ttl.as_millis().min(MAX_IDEMPOTENCY_TTL_MS as u128) as u64;
        let rules = ReserveRules { idempotency_ttl_ms, max_orders_per_user };
        let reservations = {
            let (redis, keys, scripts, placement) = (redis.clone(), keys.clone(), scripts.clone(), placement.clone());
            Batcher::spawn(
                redis.size(),
                MAX_BATCH,
                &METRICS.reserve_batch_size,
                move |(sale_id, coupon_id, at): (u64, Option<u64>, InBucket), requests: Vec<Reservation>| {
                    let client = crate::redis::connected(&redis).cloned();
                    let (keys, scripts, placement) = (keys.clone(), scripts.clone(), placement.clone());
                    async move {
                        let client = client?;
                        let sale = keys.sale_bucket(sale_id, at.bucket);
                        let place = match coupon_id {
                            Some(id) => Some(placement.coupon(&client, &keys, id).await?),
                            None => None,
                        };
                        Ok(match coupon_id {
                            // The coupon lives in another slot (or its holders in
                            // several, with buckets): held first (see `holds`).
                            Some(id) if place == Some(CouponPlace::Held) => {
                                let router = placement.buckets();
                                holds::reserve(&scripts, router, &client, &keys, sale_id, at, id, rules, &requests)
                                    .await?
                            }
                            Some(id) => {
                                let coupon = CouponUse::Here(id, &keys.coupon(id));
                                let r = &scripts.reserve_order;
                                r.call(&client, &sale, sale_id, at, coupon, rules, &requests).await?
                            }
                            None => {
                                let none = CouponUse::None;
                                let r = &scripts.reserve_order;
                                r.call(&client, &sale, sale_id, at, none, rules, &requests).await?
                            }
                        })
                    }
                },
            )
        };
        let (sold_out, refills, summaries) = Default::default();
        Sales { redis, keys, scripts, placement, sold_out, reservations, refills, summaries }
    }

    /// The placement this service was built with (see `placement`).
    pub fn placement(&self) -> &Placement {
        &self.placement
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
        let reservation =
            Reservation { user_id: new.user_id, lines: new.lines.to_vec(), idempotency, admitted: new.admitted };
        // With buckets (see `moves`): in the user's home bucket, refilled
        // from the others when short, routed again when the count was stale.
        let router = self.placement.buckets();
        let mut n = router.believed(&self.keys, Of::Sale, new.sale_id);
        let mut outcome;
        let mut route = 0;
        loop {
            route += 1;
            let at = InBucket { believed: n, bucket: buckets::home(new.user_id, n) };
            outcome = self.reservations.call((new.sale_id, new.coupon_id, at), reservation.clone()).await?;
            match &outcome {
                ReserveOutcome::Buckets(actual) if route < MAX_ROUTES => {
                    router.learn(&self.keys, Of::Sale, new.sale_id, *actual);
                    n = *actual;
                }
                // Believed to have buckets, and the home bucket is missing:
                // the id may have been created again with fewer.
                ReserveOutcome::UnknownSale if n > 1 && route < MAX_ROUTES => {
                    match Box::pin(router.read(self.redis.next(), &self.keys, Of::Sale, new.sale_id)).await {
                        Ok(actual) if actual != n => n = actual,
                        _ => break,
                    }
                }
                // No refill for a SKU every bucket lacked a moment ago (a
                // retry with an Idempotency-Key passes the flag to the script).
                ReserveOutcome::SoldOut(_)
                    if n > 1
                        && route < MAX_ROUTES
                        && new.lines.len() == 1
                        && !self.sold_out.is_set(sku_key(new.sale_id, new.lines[0].0), now) =>
                {
                    let (sku, quantity) = new.lines[0];
                    match Box::pin(self.refill(new.sale_id, n, at.bucket, sku, quantity)).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, sale_id = new.sale_id, "a bucket not refilled");
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
        if let ReserveOutcome::Reserved(_) = &outcome {
            self.summaries.forget(new.sale_id);
        }
        if let ReserveOutcome::SoldOut(skus) = &outcome {
            // Only a SKU with nothing left: a large order that did not fit
            // says nothing about a small one.
            if let Ok(Some(info)) = Box::pin(self.summary(new.sale_id)).await {
                for sku in skus {
                    if info.skus.iter().any(|s| s.sku == *sku && s.remaining == 0) {
                        self.sold_out.set(sku_key(new.sale_id, *sku), now);
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// Makes bucket `home` hold `quantity` units of `sku` if the sale's other
    /// buckets have them (see `moves`): one refill per bucket at a time in
    /// this process. False when none could come.
    async fn refill(&self, sale_id: u64, n: u32, home: u32, sku: u64, quantity: u64) -> Result<bool, Error> {
        let lock = {
            let mut locks = self.refills.lock().unwrap();
            if locks.len() >= MAX_REFILL_LOCKS {
                locks.clear();
            }
            locks.entry((sale_id, home)).or_default().clone()
        };
        let _turn = lock.lock().await;
        let client = self.redis.next_connected();
        // A refill that ran while this one waited may have brought enough.
        let here: Option<u64> = client.hget(self.keys.sale_bucket(sale_id, home).stock, sku).await?;
        let here = here.unwrap_or(0);
        if here >= quantity {
            return Ok(true);
        }
        let given = moves::refill(&self.scripts, client, &self.keys, sale_id, n, home, sku, quantity - here).await?;
        Ok(given > 0)
    }

    /// The sale's bucket count (see `moves`): learnt once per process.
    pub async fn buckets(&self, sale_id: u64) -> Result<u32, Error> {
        self.placement.buckets().count(self.redis.next(), &self.keys, Of::Sale, sale_id).await
    }

    /// The keys of the bucket that holds `order_id` (the sale's own without buckets).
    pub(crate) async fn order_keys(&self, sale_id: u64, order_id: u64) -> Result<(u32, SaleKeys), Error> {
        let bucket = buckets::of_order(order_id, self.buckets(sale_id).await?);
        Ok((bucket, self.keys.sale_bucket(sale_id, bucket)))
    }

    /// Whether Redis holds the sale, or any bucket of it (of `n`, as MySQL says).
    pub async fn any_bucket(&self, sale_id: u64, n: u32) -> Result<bool, Error> {
        for keys in buckets::all_of_sale(&self.keys, sale_id, n) {
            if self.redis.next().exists::<u64, _>(&keys.meta).await? == 1 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every bucket's keys of the sale, bucket 0 first.
    pub(crate) async fn all_keys(&self, sale_id: u64) -> Result<Vec<SaleKeys>, Error> {
        let n = self.placement.buckets().read(self.redis.next(), &self.keys, Of::Sale, sale_id).await?;
        Ok(buckets::all_of_sale(&self.keys, sale_id, n))
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
        let (_, keys) = self.order_keys(sale_id, order_id).await?;
        let hour = self.keys.ranking_hour(now_ms() / HOUR_MS);
        let ranking = self.placement.ranking(&hour);
        let ttl = (MAX_RANKING_HOURS + 1) * 3600;
        let client = crate::redis::connected(&self.redis)?;
        caller::claim()?;
        match self.scripts.confirm_order.call(client, &keys, ranking, ttl, order_id, amount, payment_key).await? {
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
        let back = self.placement.coupon_return(&self.keys);
        let (_, keys) = self.order_keys(sale_id, order_id).await?;
        let client = crate::redis::connected(&self.redis)?;
        caller::claim()?;
        let order = self.scripts.release_orders.cancel(client, &keys, back.script_prefix(), order_id).await?;
        self.summaries.forget(sale_id);
        let queued = back == CouponReturn::Queued;
        if let Some(order) = order.as_ref().filter(|o| o.coupon_id.is_some() && queued) {
            if matches!(order.status, OrderStatus::Cancelled | OrderStatus::Expired) {
                self.give_back_coupons(sale_id, &keys).await;
            }
        }
        Ok(order)
    }

    /// Expires up to `limit` overdue reservations of one sale, and forgets up
    /// to `limit` of its idempotency answers past their expiry.
    /// With buckets: up to `limit` in each, the tallies summed.
    pub async fn expire_due(&self, sale_id: u64, limit: u64) -> Result<Expired, Error> {
        let back = self.placement.coupon_return(&self.keys);
        let n = self.buckets(sale_id).await?;
        let mut all = Expired::default();
        for keys in buckets::all_of_sale(&self.keys, sale_id, n) {
            let release = &self.scripts.release_orders;
            let expired = release.expire(self.redis.next(), &keys, back.script_prefix(), limit).await?;
            if expired.coupons_to_return > 0 {
                self.give_back_coupons(sale_id, &keys).await;
            }
            if expired.released > 0 {
                self.summaries.forget(sale_id);
            }
            all.released += expired.released;
            all.forgotten += expired.forgotten;
            all.coupons_to_return += expired.coupons_to_return;
        }
        Ok(all)
    }

    /// Finishes every live sale's stock moves overdue (their request died
    /// between the steps, see `moves`); returns how many.
    pub async fn finish_overdue_moves(&self) -> Result<u64, Error> {
        let mut finished = 0;
        for sale_id in self.ids().await? {
            let n = self.buckets(sale_id).await?;
            if n > 1 {
                finished += moves::finish_overdue(&self.scripts, self.redis.next(), &self.keys, sale_id, n).await?;
            }
        }
        Ok(finished)
    }

    pub async fn order(&self, sale_id: u64, order_id: u64) -> Result<Option<Order>, Error> {
        let (_, keys) = self.order_keys(sale_id, order_id).await?;
        let json: Option<String> = self.redis.next().hget(keys.orders, order_id).await?;
        json.map(|j| {
            Order::decode(&j)
                .map_err(|e| Error::new(ErrorKind::Parse, format!("stored order {sale_id}/{order_id}: {e}")))
        })
        .transpose()
    }

    /// Every order Redis holds for a sale (for reconcile and status).
    pub async fn orders(&self, sale_id: u64) -> Result<Vec<Order>, Error> {
        let mut all: Vec<String> = Vec::new();
        for keys in self.all_keys(sale_id).await? {
            let bucket: HashMap<u64, String> = self.redis.next().hgetall(keys.orders).await?;
            all.extend(bucket.into_values());
        }
        let mut orders = all
            .into_iter()
            .map(|j| Order::decode(&j).map_err(|e| Error::new(ErrorKind::Parse, format!("stored order: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        orders.sort_by_key(|o| o.order_id);
        Ok(orders)
    }

    /// With buckets: every bucket's summed, units in moves under way counted
    /// as remaining (see `moves`).
    pub async fn info(&self, sale_id: u64) -> Result<Option<SaleInfo>, Error> {
        let client = self.redis.next();
        let Some(mut info) = self.scripts.sale_info.call(client, &self.keys.sale(sale_id)).await? else {
            return Ok(None);
        };
        if info.buckets > 1 {
            self.placement.buckets().learn(&self.keys, Of::Sale, sale_id, info.buckets);
            for bucket in 1..info.buckets {
                let keys = self.keys.sale_bucket(sale_id, bucket);
                let Some(part) = self.scripts.sale_info.call(client, &keys).await? else { continue };
                info.outbox_len += part.outbox_len;
                for (sku, p) in info.skus.iter_mut().zip(&part.skus) {
                    sku.remaining += p.remaining;
                    sku.stock += p.stock;
                }
            }
            let moving = moves::under_way(client, &self.keys, sale_id, info.buckets).await?;
            for sku in &mut info.skus {
                let units = moving.get(&sku.sku).copied().unwrap_or(0);
                sku.remaining += units;
                sku.stock += units;
            }
        }
        Ok(Some(info))
    }

    /// Seeds the sale, and lists it so the relay and the expiry task find it:
    /// before and after, as `Coupons::seed` does.
    /// With buckets (see `moves`): each SKU's stock split evenly, the other
    /// buckets seeded before the sale's own, whose meta says the sale exists.
    pub async fn seed(&self, sale_id: u64, spec: &SaleSpec, mode: SeedMode) -> Result<SeedOutcome, Error> {
        let n = spec.buckets.clamp(1, buckets::MAX_BUCKETS);
        let shares: Vec<Vec<u64>> = spec.skus.iter().map(|s| buckets::shares(s.stock, n)).collect();
        let stock_of = |bucket: usize| -> Vec<u64> { shares.iter().map(|s| s[bucket]).collect() };
        self.seed_buckets(sale_id, spec, mode, &stock_of).await
    }

    async fn seed_buckets(
        &self,
        sale_id: u64,
        spec: &SaleSpec,
        mode: SeedMode,
        stock_of: &dyn Fn(usize) -> Vec<u64>,
    ) -> Result<SeedOutcome, Error> {
        let n = spec.buckets.clamp(1, buckets::MAX_BUCKETS);
        let client = self.redis.next();
        // Names this seeding: a stock move taken before it is refused after.
        let epoch = now_ms();
        let _: () = client.sadd(self.keys.sales(), sale_id).await?;
        if mode == SeedMode::Create && client.exists::<u64, _>(self.keys.sale(sale_id).meta).await? == 1 {
            return Ok(SeedOutcome::Exists);
        }
        for (bucket, keys) in buckets::all_of_sale(&self.keys, sale_id, n).iter().enumerate().skip(1) {
            let seed = &self.scripts.seed_sale;
            seed.call(client, keys, sale_id, spec, &stock_of(bucket), epoch, SeedMode::Replace).await?;
        }
        let own = self.keys.sale(sale_id);
        let seeded = self.scripts.seed_sale.call(client, &own, sale_id, spec, &stock_of(0), epoch, mode).await?;
        if seeded != SeedOutcome::Exists {
            self.placement.buckets().learn(&self.keys, Of::Sale, sale_id, n);
        }
        let _: () = client.sadd(self.keys.sales(), sale_id).await?;
        Ok(seeded)
    }

    /// (remaining, supplied in all) after the change; None for an unknown SKU.
    /// With buckets (see `moves`): units are added to bucket 0, where moves
    /// take them from; a set applies to the whole and is refused.
    pub async fn adjust_stock(&self, sale_id: u64, sku: u64, change: StockChange) -> Result<Option<(u64, u64)>, Error> {
        let n = self.placement.buckets().read(self.redis.next(), &self.keys, Of::Sale, sale_id).await?;
        if n > 1 && matches!(change, StockChange::Set(_)) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("sale {sale_id} has {n} buckets: its stock can be added to (stock add), not set"),
            ));
        }
        let Some(_) = self.scripts.adjust_stock.call(self.redis.next(), &self.keys.sale(sale_id), sku, change).await?
        else {
            return Ok(None);
        };
        // The whole sale's figures.
        let info = self.info(sale_id).await?;
        Ok(info.and_then(|i| i.skus.iter().find(|s| s.sku == sku).map(|s| (s.remaining, s.stock))))
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

    /// Most-paid products over the last `hours` (hourly tallies, the current
    /// one included): (sku, paid orders), best first.
    pub async fn top_products(&self, hours: u64, limit: usize) -> Result<Vec<(u64, u64)>, Error> {
        let now_hour = now_ms() / HOUR_MS;
        let hours = hours.clamp(1, MAX_RANKING_HOURS);
        let keys: Vec<String> = (0..hours).map(|h| self.keys.ranking_hour(now_hour - h)).collect();
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
