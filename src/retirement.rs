//! Retirement: campaigns and sales that ended leave the loops, then Redis.
//!
//! Once a second, riding the expiry task ([`Retirer::tick`]):
//! 1. Every live campaign and sale (the registry sets, see `keys`) is looked
//!    at. One that has ended, whose outbox is empty (Kafka acknowledged every
//!    event), that holds no reservation, and whose every event the sink has
//!    written (MySQL holds as many issue rows / orders as Redis, none of them
//!    reserved) retires: `retire.lua` checks Redis again, atomically, and
//!    moves it from the registry to `retiring`, due at its end +
//!    FLASHSALE_RETAIN_AFTER_END; then MySQL marks it (`retired_at`). The relay
//!    and the expiry task list only the registry: it leaves their loops at once.
//! 2. Every member of `retiring` whose time has come loses all its keys in
//!    one script (`drop_retired.lua`), MySQL's mark made sure of first. From
//!    then on the API answers for it from MySQL (see `retired_records`).
//!
//! An ended one not ready yet is looked at again later (1 s, 2 s, ... at most
//! 30 s apart). A tick costs one meta read per live campaign and sale, plus
//! Redis and MySQL reads for the ended ones: nothing grows with the retired.

use std::{collections::HashMap, sync::Arc, time::Duration};

use fred::prelude::*;
use tokio::time::Instant;

use crate::{
    db::{
        archive::{self, Kind},
        queries,
    },
    keys::Keys,
    placement::{BucketRouter, Placement},
    scripts::{Dropped, Keep, Owner, Retired, Scripts, Seen},
    time::now_ms,
};

/// Least time between retiring and deleting the keys: every relay has listed
/// the registry again by then (each does every second), so none still reads
/// the deleted outbox. Also how long after the last reservation holding a
/// campaign's coupon its keys stay, so the expiry task released it first.
pub const GRACE: Duration = Duration::from_secs(5);
/// Retired members whose keys go per tick at most (more go the next tick).
const DROP_BATCH: i64 = 500;
/// Longest wait before an ended campaign or sale is looked at again.
const MAX_WAIT: u32 = 30;
/// Looks after which one still not retired is logged as a warning (about 5 minutes).
const LOUD_AFTER: u32 = 25;

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Campaigns and sales that left the registry.
    pub retired: u64,
    /// Campaigns and sales whose keys were deleted.
    pub dropped: u64,
}

pub struct Retirer {
    redis: Pool,
    keys: Keys,
    scripts: Arc<Scripts>,
    /// The bucket counts learnt (see `placement`).
    buckets: BucketRouter,
    mysql: mysql_async::Pool,
    keep: Keep,
    /// Ended ones not ready yet: when to look again, how often looked.
    waiting: HashMap<(Kind, u64), (Instant, u32)>,
    /// Listed ids without a campaign or sale, since when seen so: a seed
    /// lists its id first, so one is listed a moment before it exists (and
    /// forever, should the seeding process die in between).
    orphans: HashMap<(Kind, u64), Instant>,
}

impl Retirer {
    /// Keys of a retired campaign or sale go `retain` after its end.
    pub fn new(
        redis: Pool,
        keys: Keys,
        scripts: Arc<Scripts>,
        placement: &Placement,
        mysql: mysql_async::Pool,
        retain: Duration,
    ) -> Self {
        let keep = Keep {
            retain_ms: retain.as_millis().min(u64::MAX as u128 / 2) as u64,
            at_least_ms: GRACE.as_millis() as u64,
        };
        let buckets = placement.buckets().clone();
        Retirer { redis, keys, scripts, buckets, mysql, keep, waiting: HashMap::new(), orphans: HashMap::new() }
    }

    /// Retires what is ready, then deletes the keys of what is due.
    pub async fn tick(&mut self) -> Result<Tally, Error> {
        let client = self.redis.next().clone();
        let coupons: Vec<u64> = client.smembers(self.keys.coupons()).await?;
        let sales: Vec<u64> = client.smembers(self.keys.sales()).await?;
        self.waiting.retain(|(kind, id), _| match kind {
            Kind::Coupon => coupons.contains(id),
            Kind::Sale => sales.contains(id),
        });
        let mut tally = Tally::default();
        let now = now_ms();
        let mut orphans = HashMap::new();
        for (kind, ids) in [(Kind::Coupon, coupons), (Kind::Sale, sales)] {
            let ends = self.ends_at(&client, kind, &ids).await?;
            for (id, ends_at) in ids.into_iter().zip(ends) {
                let Some(ends_at) = ends_at else {
                    let since = self.orphans.get(&(kind, id)).copied().unwrap_or_else(Instant::now);
                    if since.elapsed() >= GRACE {
                        // Its seed never ran (the seeding process died): forget it.
                        let registry = match kind {
                            Kind::Coupon => self.keys.coupons(),
                            Kind::Sale => self.keys.sales(),
                        };
                        let _: i64 = client.srem(registry, id).await?;
                        tracing::info!(?kind, id, "retire: listed, never created; unlisted");
                    } else {
                        orphans.insert((kind, id), since);
                    }
                    continue;
                };
                if ends_at == 0 || now < ends_at || !self.due(kind, id) {
                    continue;
                }
                match self.try_retire(&client, kind, id, ends_at).await {
                    Ok(None) => {
                        self.waiting.remove(&(kind, id));
                        tally.retired += 1;
                    }
                    Ok(Some(why)) => {
                        if self.wait_longer(kind, id) == LOUD_AFTER {
                            tracing::warn!(?kind, id, %why, "retire: ended minutes ago and still not retired");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, ?kind, id, "retire: cannot check an ended one");
                        self.wait_longer(kind, id);
                    }
                }
            }
        }
        self.orphans = orphans;
        tally.dropped = self.drop_due(&client).await?;
        Ok(tally)
    }

    /// Each id's `ends_at` (0: never; None: no campaign or sale), read concurrently.
    async fn ends_at(&self, client: &Client, kind: Kind, ids: &[u64]) -> Result<Vec<Option<u64>>, Error> {
        let reads = ids.iter().map(|&id| {
            let meta = match kind {
                Kind::Coupon => self.keys.coupon(id).meta,
                Kind::Sale => self.keys.sale(id).meta,
            };
            async move { client.hget::<Option<u64>, _, _>(meta, "ends_at").await }
        });
        futures_util::future::try_join_all(reads).await
    }

    fn due(&self, kind: Kind, id: u64) -> bool {
        self.waiting.get(&(kind, id)).is_none_or(|(next, _)| Instant::now() >= *next)
    }

    /// Looks again later; returns how many times it was looked at.
    fn wait_longer(&mut self, kind: Kind, id: u64) -> u32 {
        let looked = self.waiting.get(&(kind, id)).map_or(0, |(_, n)| *n) + 1;
        let pause = Duration::from_secs(u64::from(looked.min(MAX_WAIT)));
        self.waiting.insert((kind, id), (Instant::now() + pause, looked));
        looked
    }

    /// None when it retired now; else why not yet (looked at again later).
    async fn try_retire(&self, client: &Client, kind: Kind, id: u64, ends_at: u64) -> anyhow::Result<Option<String>> {
        let (coupon, sale) = (self.keys.coupon(id), self.keys.sale(id));
        let (owner, registry, rows) = match kind {
            Kind::Coupon => {
                // Every bucket's (see `buckets`); the script checks the campaign's own again.
                let n = self.buckets.read(client, &self.keys, crate::buckets::Of::Coupon, id).await?;
                let (mut outbox, mut issued, mut own) = (0u64, 0u64, 0u64);
                for (bucket, keys) in crate::buckets::all(&self.keys, id, n).iter().enumerate() {
                    outbox += client.xlen::<u64, _>(&keys.outbox).await?;
                    let users: u64 = client.scard(&keys.users).await?;
                    issued += users;
                    if bucket == 0 {
                        own = users;
                    }
                }
                if outbox > 0 {
                    return Ok(Some(format!("{outbox} outbox entries not yet in Kafka")));
                }
                let rows = queries::issued_count(&self.mysql, id).await?;
                if rows != issued {
                    return Ok(Some(format!("MySQL holds {rows} issue rows, Redis {issued} (flashsale reconcile)")));
                }
                (Owner::Coupon(id, &coupon), self.keys.coupons(), own)
            }
            Kind::Sale => {
                // Every bucket's (see `sales::moves`); the script checks the sale's own again.
                let n = self.buckets.read(client, &self.keys, crate::buckets::Of::Sale, id).await?;
                let (mut outbox, mut reserved, mut moving, mut orders, mut own) = (0u64, 0u64, 0u64, 0u64, 0u64);
                for (bucket, keys) in crate::buckets::all_of_sale(&self.keys, id, n).iter().enumerate() {
                    outbox += client.xlen::<u64, _>(&keys.outbox).await?;
                    reserved += client.zcard::<u64, _>(&keys.deadlines).await?;
                    moving += client.hlen::<u64, _>(&keys.moves).await?;
                    // Released orders Redis forgot once MySQL had them count too.
                    let forgotten: Option<u64> = client.hget(&keys.meta, "forgotten").await?;
                    let held = client.hlen::<u64, _>(&keys.orders).await? + forgotten.unwrap_or(0);
                    orders += held;
                    if bucket == 0 {
                        own = held;
                    }
                }
                if outbox > 0 || reserved > 0 || moving > 0 {
                    return Ok(Some(format!(
                        "{outbox} outbox entries not yet in Kafka, {reserved} reservations, {moving} stock moves"
                    )));
                }
                let (rows, reserved_rows) = archive::order_tally(&self.mysql, id).await?;
                if (rows, reserved_rows) != (orders, 0) {
                    return Ok(Some(format!(
                        "MySQL holds {rows} orders ({reserved_rows} reserved), Redis {orders} (flashsale reconcile)"
                    )));
                }
                (Owner::Sale(id, &sale), self.keys.sales(), own)
            }
        };
        let seen = Seen { ends_at, rows };
        match self.scripts.retire.call(client, &owner, seen, &self.keep).await? {
            Retired::Retired { delete_at } => {
                // Due for deletion first, then out of the loops: dying between
                // the two leaves it listed, and the next tick does both again.
                let _: i64 = client
                    .zadd(
                        self.keys.retiring(),
                        Some(SetOptions::NX),
                        None,
                        false,
                        false,
                        (delete_at as f64, owner.member()),
                    )
                    .await?;
                let _: i64 = client.srem(&registry, id).await?;
                archive::mark_retired(&self.mysql, kind, id).await?;
                tracing::info!(?kind, id, keys_go_at = %crate::time::rfc3339_ms(delete_at), "retired");
                Ok(None)
            }
            Retired::Changed => Ok(Some("changed while checked".into())),
            Retired::Gone => Ok(Some("listed live, but its meta is gone".into())),
        }
    }

    /// Deletes the keys of the retired members whose time has come.
    async fn drop_due(&self, client: &Client) -> Result<u64, Error> {
        let retiring = self.keys.retiring();
        let due: Vec<String> =
            client.zrangebyscore(&retiring, "-inf", now_ms() as f64, false, Some((0, DROP_BATCH))).await?;
        let mut dropped = 0;
        for member in due {
            let Some((kind, id)) = parse_member(&member) else {
                tracing::error!(%member, "retire: not a campaign or sale; removed from the retiring set");
                let _: i64 = client.zrem(&retiring, member).await?;
                continue;
            };
            let (coupon, sale) = (self.keys.coupon(id), self.keys.sale(id));
            let owner = match kind {
                Kind::Coupon => Owner::Coupon(id, &coupon),
                Kind::Sale => Owner::Sale(id, &sale),
            };
            let meta = match kind {
                Kind::Coupon => &coupon.meta,
                Kind::Sale => &sale.meta,
            };
            // MySQL must say "retired" before Redis forgets it: the API answers from it then.
            let retired: bool = client.hexists(meta, "retired_at").await?;
            if retired {
                if let Err(e) = archive::mark_retired(&self.mysql, kind, id).await {
                    tracing::warn!(error = %e, ?kind, id, "retire: cannot mark it in MySQL; its keys stay for now");
                    continue;
                }
                // A campaign's other buckets first (each in its own slot): its
                // own meta, deleted last, still says how many there are.
                if kind == Kind::Coupon {
                    let n = self.buckets.read(client, &self.keys, crate::buckets::Of::Coupon, id).await?;
                    for keys in crate::buckets::all(&self.keys, id, n).iter().skip(1) {
                        let _: i64 =
                            client.del(vec![keys.meta.clone(), keys.users.clone(), keys.outbox.clone()]).await?;
                    }
                } else {
                    let n = self.buckets.read(client, &self.keys, crate::buckets::Of::Sale, id).await?;
                    for keys in crate::buckets::all_of_sale(&self.keys, id, n).iter().skip(1) {
                        let all: Vec<String> = keys.all().iter().map(|k| k.to_string()).collect();
                        let _: i64 = client.del(all).await?;
                    }
                }
            }
            match self.scripts.drop_retired.call(client, &owner, GRACE.as_millis() as u64).await? {
                Dropped::Dropped => {
                    let _: i64 = client.zrem(&retiring, &member).await?;
                    tracing::info!(?kind, id, "retired: keys deleted");
                    dropped += 1;
                }
                Dropped::Revived => {
                    let _: i64 = client.zrem(&retiring, &member).await?;
                    tracing::info!(?kind, id, "retire: created again since it retired; left live");
                }
                Dropped::Held { until, again } => {
                    let _: i64 = client
                        .zadd(&retiring, Some(SetOptions::XX), None, false, false, (again as f64, member.as_str()))
                        .await?;
                    tracing::debug!(?kind, id, until, "retire: a reservation still holds its coupon")
                }
            }
        }
        Ok(dropped)
    }
}

/// `coupon:ID` / `sale:ID`.
fn parse_member(member: &str) -> Option<(Kind, u64)> {
    let (kind, id) = member.split_once(':')?;
    let kind = match kind {
        "coupon" => Kind::Coupon,
        "sale" => Kind::Sale,
        _ => return None,
    };
    Some((kind, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retiring_members_name_a_campaign_or_a_sale() {
        assert_eq!(parse_member("coupon:42"), Some((Kind::Coupon, 42)));
        assert_eq!(parse_member("sale:7"), Some((Kind::Sale, 7)));
        assert_eq!(parse_member("sale:x"), None);
        assert_eq!(parse_member("order:7"), None);
        assert_eq!(parse_member("7"), None);
    }
}
