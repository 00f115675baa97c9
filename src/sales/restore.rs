//! Rebuilding a sale Redis lost from MySQL (`stock load`): what it holds in
//! Redis, derived from its spec and orders — and checked — before
//! [`Sales::restore`] writes any of it, bucket by bucket.

use std::collections::{BTreeMap, HashMap};

use fred::prelude::*;

use super::{Sales, CLOSED_UNTIL_RESTORED, RESTORE_CHUNK};
use crate::{
    buckets,
    keys::{SaleKeys, OUTBOX_GROUP},
    order::Order,
    scripts::{SaleSpec, SeedMode},
};

/// SKU -> units the reserved and paid ones of `orders` hold.
pub(super) fn held(orders: &[Order]) -> std::collections::HashMap<u64, u64> {
    let mut held = std::collections::HashMap::new();
    for o in orders.iter().filter(|o| o.status.holds_stock()) {
        for item in &o.items {
            *held.entry(item.sku).or_default() += item.quantity;
        }
    }
    held
}

#[derive(Debug, PartialEq)]
pub(super) struct Restored {
    /// SKU -> remaining: supplied minus what reserved and paid orders hold.
    pub remaining: Vec<(u64, u64)>,
    /// User -> units held by reserved and paid orders.
    pub bought: Vec<(u64, u64)>,
    /// (coupon, user, `sale:order`): the coupon a reserved or paid order holds.
    pub coupon_marks: Vec<(u64, u64, String)>,
    /// (expires_at, order id) of every reserved order.
    pub deadlines: Vec<(f64, u64)>,
    /// (coupon, latest expires_at of a reserved order holding it).
    pub coupon_held_until: Vec<(u64, u64)>,
    /// The highest order id, where the sequence resumes.
    pub last_order_id: Option<u64>,
}

impl Restored {
    pub fn of(sale_id: u64, spec: &SaleSpec, orders: &[Order]) -> Result<Restored, String> {
        let mut held: BTreeMap<u64, u64> = spec.skus.iter().map(|s| (s.sku, 0)).collect();
        let mut bought: BTreeMap<u64, u64> = BTreeMap::new();
        let mut held_until: BTreeMap<u64, u64> = BTreeMap::new();
        let mut restored = Restored {
            remaining: Vec::new(),
            bought: Vec::new(),
            coupon_marks: Vec::new(),
            deadlines: Vec::new(),
            coupon_held_until: Vec::new(),
            last_order_id: orders.iter().map(|o| o.order_id).max(),
        };
        for o in orders {
            if o.sale_id != sale_id {
                return Err(format!("order {} belongs to sale {}, not {sale_id}", o.order_id, o.sale_id));
            }
            if !o.status.holds_stock() {
                continue;
            }
            for item in &o.items {
                // A line for a SKU the sale lacks would give Redis stock nobody supplied.
                let units = held.get_mut(&item.sku).ok_or_else(|| {
                    format!("order {} holds SKU {}, which sale {sale_id} does not have", o.order_id, item.sku)
                })?;
                *units += item.quantity;
                *bought.entry(o.user_id).or_default() += item.quantity;
            }
            if let Some(coupon) = o.coupon_id {
                restored.coupon_marks.push((coupon, o.user_id, format!("{sale_id}:{}", o.order_id)));
            }
            if o.status == crate::order::OrderStatus::Reserved {
                restored.deadlines.push((o.expires_at as f64, o.order_id));
                if let Some(coupon) = o.coupon_id {
                    let until = held_until.entry(coupon).or_default();
                    *until = (*until).max(o.expires_at);
                }
            }
        }
        for s in &spec.skus {
            let units = held[&s.sku];
            let remaining = s.stock.checked_sub(units).ok_or_else(|| {
                format!("SKU {}: orders hold {units} units, more than the {} supplied", s.sku, s.stock)
            })?;
            restored.remaining.push((s.sku, remaining));
        }
        restored.bought = bought.into_iter().collect();
        restored.coupon_held_until = held_until.into_iter().collect();
        Ok(restored)
    }
}

impl Sales {
    /// Rebuilds a sale Redis lost from what MySQL recorded: `spec` with
    /// stock = supplied in all, and every order. Remaining stock, per-user
    /// holdings, coupon used-marks, deadlines and the order sequence follow
    /// from the orders; idempotency keys and rankings are not recorded in
    /// MySQL and stay lost.
    ///
    /// For a sale that is not live in Redis: it replaces whatever Redis holds
    /// for it. The sale is seeded closed and opened by the last write, so
    /// nobody reserves against a half-restored sale; confirm, cancel and the
    /// sweeper may act on the orders already written, which are whole.
    /// Checks everything before the first write.
    pub async fn restore(&self, sale_id: u64, spec: &SaleSpec, orders: &[Order]) -> Result<(), Error> {
        let invalid = |e: String| Error::new(ErrorKind::InvalidArgument, format!("sale {sale_id}: {e}"));
        // The whole first (every check), then with buckets each bucket's part:
        // its orders (an order id names its bucket) and what they hold, plus
        // an even share of what remains.
        let whole = Restored::of(sale_id, spec, orders).map_err(invalid)?;
        let n = spec.buckets.clamp(1, buckets::MAX_BUCKETS);
        let mut parts: Vec<Vec<Order>> = vec![Vec::new(); n as usize];
        for o in orders {
            parts[buckets::of_order(o.order_id, n) as usize].push(o.clone());
        }
        let remaining: HashMap<u64, u64> = whole.remaining.iter().copied().collect();
        let mut specs = Vec::with_capacity(n as usize);
        for (bucket, part) in parts.iter().enumerate() {
            let held = held(part);
            let mut spec = spec.clone();
            for s in &mut spec.skus {
                let share = buckets::shares(remaining.get(&s.sku).copied().unwrap_or(0), n)[bucket];
                s.stock = held.get(&s.sku).copied().unwrap_or(0) + share;
            }
            let plan = Restored::of(sale_id, &spec, part).map_err(invalid)?;
            specs.push((spec, plan));
        }

        let client = self.redis.next();
        let closed = SaleSpec { starts_at: CLOSED_UNTIL_RESTORED, ..spec.clone() };
        let stock_of = |bucket: usize| -> Vec<u64> { specs[bucket].0.skus.iter().map(|s| s.stock).collect() };
        self.seed_buckets(sale_id, &closed, SeedMode::Replace, &stock_of).await?;
        for (bucket, (_, plan)) in specs.iter().enumerate() {
            let keys = self.keys.sale_bucket(sale_id, bucket as u32);
            let part = &parts[bucket];
            self.restore_bucket(client, &keys, plan, part).await?;
        }
        // Bucket 0 last: its meta is the one whose window a reader checks first.
        for keys in buckets::all_of_sale(&self.keys, sale_id, n).iter().rev() {
            let _: () = client.hset(&keys.meta, ("starts_at", spec.starts_at)).await?;
        }
        Ok(())
    }

    /// Writes one bucket's (or a sale's own) restored state, seeded closed before.
    async fn restore_bucket(
        &self,
        client: &Client,
        keys: &SaleKeys,
        plan: &Restored,
        orders: &[Order],
    ) -> Result<(), Error> {
        if !plan.remaining.is_empty() {
            let _: () = client.hset(&keys.stock, plan.remaining.clone()).await?;
        }
        if !plan.bought.is_empty() {
            let _: () = client.hset(&keys.bought, plan.bought.clone()).await?;
        }
        // Before the orders: a release of a restored order gives its coupon
        // back. Not to a campaign Redis let go (it retired): that would bring
        // back a key of it.
        for (coupon, user, holder) in &plan.coupon_marks {
            let keys = self.keys.coupon(*coupon);
            if client.exists::<u64, _>(&keys.meta).await? == 1 {
                let _: () = client.hset(keys.used, (*user, holder.as_str())).await?;
            }
        }
        // A campaign's keys stay until the reservations holding its coupons are over.
        for &(coupon, until) in &plan.coupon_held_until {
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
            let _: () = client.zadd(&keys.deadlines, None, None, false, false, plan.deadlines.clone()).await?;
        }
        // Released orders come back whole, to be forgotten again (see `forget`).
        let released: Vec<(f64, u64)> = orders
            .iter()
            .filter(|o| matches!(o.status, crate::order::OrderStatus::Cancelled | crate::order::OrderStatus::Expired))
            .map(|o| (o.updated_at as f64, o.order_id))
            .collect();
        for chunk in released.chunks(RESTORE_CHUNK) {
            let _: () = client.zadd(&keys.released, None, None, false, false, chunk.to_vec()).await?;
        }
        if let Some(last) = plan.last_order_id {
            let _: () = client.set(&keys.seq, last, None, None, false).await?;
        }
        // A relay that knew the old stream still reads it with its group, and
        // a stream that vanished with the sale took the group along: every read
        // would fail with NOGROUP until it is back.
        let group: Result<(), Error> = client.xgroup_create(&keys.outbox, OUTBOX_GROUP, "0", true).await;
        match group {
            Err(e) if !e.details().starts_with("BUSYGROUP") => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Restored;
    use crate::{
        order::{Order, OrderItem, OrderStatus},
        scripts::{SaleSpec, SkuSpec},
    };

    fn order(order_id: u64, user_id: u64, status: OrderStatus, lines: &[(u64, u64)], coupon: Option<u64>) -> Order {
        Order {
            order_id,
            sale_id: 7,
            user_id,
            status,
            items: lines.iter().map(|&(sku, quantity)| OrderItem { sku, quantity, price: 100 }).collect(),
            total: 0,
            discount: 0,
            to_pay: 0,
            coupon_id: coupon,
            coupon_seq: None,
            payment_key: None,
            created_at: 1_000,
            expires_at: 1_000 + order_id,
            updated_at: 1_000,
            version: 1,
        }
    }

    fn spec() -> SaleSpec {
        let skus = vec![SkuSpec { sku: 1, price: 100, stock: 10 }, SkuSpec { sku: 2, price: 100, stock: 5 }];
        SaleSpec { starts_at: 0, ends_at: 0, per_user_limit: 0, hold_ms: 60_000, skus, buckets: 1 }
    }

    #[test]
    fn only_reserved_and_paid_orders_hold_stock_limits_coupons_and_only_reserved_ones_a_deadline() {
        let orders = [
            order(1, 50, OrderStatus::Paid, &[(1, 2), (2, 1)], None),
            order(2, 51, OrderStatus::Cancelled, &[(1, 4)], Some(9)),
            order(3, 50, OrderStatus::Reserved, &[(2, 3)], Some(9)),
            order(4, 52, OrderStatus::Expired, &[(2, 1)], None),
        ];
        let r = Restored::of(7, &spec(), &orders).unwrap();
        assert_eq!(r.remaining, vec![(1, 8), (2, 1)]);
        assert_eq!(r.bought, vec![(50, 6)]);
        assert_eq!(r.coupon_marks, vec![(9, 50, "7:3".to_string())]);
        assert_eq!(r.deadlines, vec![(1_003.0, 3)]);
        assert_eq!(r.coupon_held_until, vec![(9, 1_003)]);
        assert_eq!(r.last_order_id, Some(4));

        let empty = Restored::of(7, &spec(), &[]).unwrap();
        assert_eq!((empty.remaining, empty.last_order_id), (vec![(1, 10), (2, 5)], None));
    }

    #[test]
    fn orders_that_do_not_fit_the_sale_are_refused() {
        let over =
            [order(1, 1, OrderStatus::Paid, &[(2, 4)], None), order(2, 2, OrderStatus::Reserved, &[(2, 2)], None)];
        assert!(Restored::of(7, &spec(), &over).unwrap_err().contains("more than the 5 supplied"));
        let unknown = [order(1, 1, OrderStatus::Paid, &[(3, 1)], None)];
        assert!(Restored::of(7, &spec(), &unknown).unwrap_err().contains("SKU 3"));
        assert!(Restored::of(8, &spec(), &unknown).unwrap_err().contains("not 8"));
    }
}
