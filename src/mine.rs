//! What one user holds, for the "mine" views: MySQL (the record) merged with
//! the live state in Redis of every campaign and sale Redis still holds, so a
//! coupon or order the user just got is never missing while the pipe carries
//! it to MySQL.
//!
//! Coupons: Redis says per live campaign whether the user holds it (one
//! SISMEMBER and one HGET each, pipelined) and which order uses it.
//! Orders: Redis keeps no per-user list, but it does keep the units each user
//! holds per sale (`bought`). When MySQL's orders of a live sale, with their
//! status as Redis has it now, add up to fewer units than that, MySQL lacks
//! an order: the view waits for the pipe (up to [`CATCH_UP`]) and otherwise
//! says it cannot answer rather than answer without it.

use std::{collections::HashMap, time::Duration};

use fred::prelude::*;
use mysql_async::Pool as Mysql;

use crate::{db::mine as rows, keys::Keys, order::Order};

/// Longest a view waits for MySQL to receive an order Redis shows.
pub const CATCH_UP: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(50);

/// One coupon the user holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub coupon_id: u64,
    /// None: issued moments ago, its issue not yet recorded in MySQL.
    pub issued_at: Option<u64>,
    pub used: Option<(u64, u64)>,
}

#[derive(Clone)]
pub struct Mine {
    redis: Pool,
    keys: Keys,
    mysql: Mysql,
    /// The bucket counts learnt (see `placement`).
    buckets: crate::placement::BucketRouter,
}

impl Mine {
    pub fn new(redis: Pool, keys: Keys, mysql: Mysql, placement: &crate::placement::Placement) -> Self {
        Mine { redis, keys, mysql, buckets: placement.buckets().clone() }
    }

    /// The user's coupons; `live` are the campaigns Redis holds.
    pub async fn coupons(&self, user_id: u64, live: &[u64]) -> Result<Vec<Held>, crate::error::Error> {
        let mut held: HashMap<u64, Held> = rows::coupons(&self.mysql, user_id)
            .await?
            .into_iter()
            .map(|r| (r.coupon_id, Held { coupon_id: r.coupon_id, issued_at: r.issued_at, used: r.used }))
            .collect();
        if !live.is_empty() {
            let client = self.redis.next();
            // Holders of a campaign with buckets are in one of them (see `buckets`).
            let mut buckets = Vec::with_capacity(live.len());
            for &id in live {
                buckets.push(self.buckets.count(client, &self.keys, crate::buckets::Of::Coupon, id).await?);
            }
            let pipeline = client.pipeline();
            for (&id, &n) in live.iter().zip(&buckets) {
                let () = pipeline.hget(&self.keys.coupon(id).used, user_id).await?;
                for bucket in 0..n {
                    let () = pipeline.sismember(self.keys.coupon_bucket(id, bucket).users, user_id.to_string()).await?;
                }
            }
            let answers: Vec<Value> = pipeline.all().await?;
            let mut answers = answers.into_iter();
            for (&id, &n) in live.iter().zip(&buckets) {
                let used = answers.next();
                let holds = (0..n).filter_map(|_| answers.next()).any(|m| m.as_u64() == Some(1));
                if !holds {
                    continue;
                }
                let used = used.as_ref().and_then(Value::as_string).and_then(|s| {
                    let (sale, order) = s.split_once(':')?;
                    Some((sale.parse().ok()?, order.parse().ok()?))
                });
                // Redis is the truth for a live campaign's use.
                held.entry(id).or_insert(Held { coupon_id: id, issued_at: None, used: None }).used = used;
            }
        }
        let mut held: Vec<Held> = held.into_values().collect();
        held.sort_by(|a, b| {
            let key = |h: &Held| (h.issued_at.is_none(), h.issued_at, h.coupon_id);
            key(b).cmp(&key(a))
        });
        Ok(held)
    }

    /// Up to `limit` of the user's orders before `before`, newest first;
    /// orders of `live` sales as Redis has them now.
    pub async fn orders(
        &self,
        user_id: u64,
        live: &[u64],
        limit: u64,
        before: Option<(u64, u64)>,
    ) -> Result<Vec<Order>, crate::error::Error> {
        let started = tokio::time::Instant::now();
        let fresh = loop {
            match self.complete(user_id, live).await? {
                Some(fresh) => break fresh,
                None if started.elapsed() < CATCH_UP => tokio::time::sleep(POLL).await,
                None => {
                    tracing::warn!("mine: MySQL still lacks an order Redis shows");
                    return Err(crate::error::Error::Unavailable("the order history is catching up".into()));
                }
            }
        };
        let page = rows::orders(&self.mysql, user_id, limit, before).await?;
        Ok(page.into_iter().map(|o| fresh.get(&(o.sale_id, o.order_id)).cloned().unwrap_or(o)).collect())
    }

    /// The user's orders of live sales as Redis has them, when MySQL knows
    /// every one of them that holds units; None when it lacks one.
    async fn complete(
        &self,
        user_id: u64,
        live: &[u64],
    ) -> Result<Option<HashMap<(u64, u64), Order>>, crate::error::Error> {
        if live.is_empty() {
            return Ok(Some(HashMap::new()));
        }
        let client = self.redis.next();
        // With buckets a user's orders are in the user's home (see `sales::moves`).
        let mut counts = HashMap::new();
        for &sale in live {
            counts.insert(sale, self.buckets.count(client, &self.keys, crate::buckets::Of::Sale, sale).await?);
        }
        let pipeline = client.pipeline();
        for &sale in live {
            let home = crate::buckets::home(user_id, counts[&sale]);
            let () = pipeline.hget(self.keys.sale_bucket(sale, home).bought, user_id).await?;
        }
        let bought: Vec<Option<u64>> = pipeline.all().await?;
        let known = rows::order_units(&self.mysql, user_id, live).await?;
        let mut by_sale: HashMap<u64, Vec<u64>> = HashMap::new();
        for &(sale, order, _) in &known {
            by_sale.entry(sale).or_default().push(order);
        }
        let mut fresh = HashMap::new();
        for (sale, ids) in by_sale {
            let n = counts.get(&sale).copied().unwrap_or(1);
            let home = self.keys.sale_bucket(sale, crate::buckets::of_order(ids[0], n));
            let json: Vec<Option<String>> = client.hmget(home.orders, ids.clone()).await?;
            for (id, json) in ids.into_iter().zip(json) {
                if let Some(order) = json.and_then(|j| Order::decode(&j).ok()) {
                    fresh.insert((sale, id), order);
                }
            }
        }
        for (&sale, held) in live.iter().zip(bought) {
            let known_units: u64 = fresh
                .values()
                .filter(|o| o.sale_id == sale && o.status.holds_stock())
                .flat_map(|o| o.items.iter().map(|i| i.quantity))
                .sum();
            if held.unwrap_or(0) > known_units {
                return Ok(None);
            }
        }
        Ok(Some(fresh))
    }
}
