//! Hot-item buckets: a campaign created with `--buckets N` keeps its stock
//! and its issued users in N parts, each under its own hash tag, so on a
//! Redis Cluster one hot campaign spreads over several primaries.
//!
//! A user's issue tries the bucket the user hashes to first, then the next
//! ones in turn (wrapping), and stops at the first that issues or already
//! issued to them; only when all N are sold out is the campaign. Per-user
//! dedup stays exact without a shared set: a bucket's stock only goes down,
//! so every request of one user walks the same buckets in the same order, and
//! the buckets before the one that issued were empty then and stay empty:
//! a second request meets the first one's bucket, which answers "already".
//! Each bucket's meta keeps `buckets` = N, and the issue script refuses a
//! caller that believes another N, so a stale cache cannot skip a bucket.
//! (`coupon load` puts each holder back in the first bucket of its walk, where
//! any later walk looks first.)
//!
//! Orders that redeem a bucketed coupon check the holders across buckets
//! first (a holder stays one for the campaign's life) and hold the coupon in
//! the campaign's own slot (see `sales::holds`).
//!
//! Single-SKU sales take buckets too, with the same counts, cache and homes;
//! there a user's orders all live in the user's home bucket and stock moves
//! between buckets instead (see `sales::moves`).

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
};

use fred::prelude::*;

use crate::keys::{CouponKeys, Keys, SaleKeys};

/// The most buckets a campaign may have.
pub const MAX_BUCKETS: u32 = 64;

/// What a bucket count belongs to: a campaign or a sale (ids are separate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Of {
    Coupon,
    Sale,
}

/// Each campaign's and sale's bucket count as this process last learnt it,
/// by key prefix, kind and id. One keeps its count for life; an id created
/// again may have another, and the scripts that depend on it (issue, reserve)
/// answer the true one to a caller that believed another.
type Counts = HashMap<String, HashMap<(Of, u64), u32>>;
static KNOWN: LazyLock<Mutex<Counts>> = LazyLock::new(Mutex::default);

/// What this process believes `coupon_id` has: learnt, else 1 (most
/// campaigns). On the issue path: no allocation.
pub fn believed(keys: &Keys, coupon_id: u64) -> u32 {
    believed_of(keys, Of::Coupon, coupon_id)
}

/// What this process believes the campaign or sale has: learnt, else 1.
pub fn believed_of(keys: &Keys, of: Of, id: u64) -> u32 {
    known(keys, of, id).unwrap_or(1)
}

fn known(keys: &Keys, of: Of, id: u64) -> Option<u32> {
    KNOWN.lock().unwrap().get(keys.prefix()).and_then(|ids| ids.get(&(of, id))).copied()
}

/// Campaigns and sales remembered at most (a cache: forgotten all at once past it).
const MAX_KNOWN: usize = 10_000;

pub fn learn(keys: &Keys, coupon_id: u64, n: u32) {
    learn_of(keys, Of::Coupon, coupon_id, n)
}

pub fn learn_of(keys: &Keys, of: Of, id: u64, n: u32) {
    let mut known = KNOWN.lock().unwrap();
    if known.values().map(HashMap::len).sum::<usize>() >= MAX_KNOWN {
        known.clear();
    }
    known.entry(keys.prefix().to_string()).or_default().insert((of, id), n.clamp(1, MAX_BUCKETS));
}

/// The campaign's bucket count as its meta says now (1 when none or unknown),
/// remembered when the campaign exists.
pub async fn read(client: &Client, keys: &Keys, coupon_id: u64) -> Result<u32, Error> {
    read_of(client, keys, Of::Coupon, coupon_id).await
}

/// The campaign's or sale's bucket count as its meta says now (1 when none
/// or unknown), remembered when it exists.
pub async fn read_of(client: &Client, keys: &Keys, of: Of, id: u64) -> Result<u32, Error> {
    let meta = match of {
        Of::Coupon => keys.coupon(id).meta,
        Of::Sale => keys.sale(id).meta,
    };
    let (exists, n): (bool, Option<u32>) = {
        let pipe = client.pipeline();
        let _: () = pipe.exists(&meta).await?;
        let _: () = pipe.hget(&meta, "buckets").await?;
        pipe.all().await?
    };
    let n = n.unwrap_or(1).clamp(1, MAX_BUCKETS);
    if exists {
        learn_of(keys, of, id, n);
    }
    Ok(n)
}

/// The count this process learnt, else [`read`]: one read per campaign and
/// process (a campaign keeps its count for life).
pub async fn of(client: &Client, keys: &Keys, coupon_id: u64) -> Result<u32, Error> {
    of_kind(client, keys, Of::Coupon, coupon_id).await
}

/// The count this process learnt, else [`read_of`].
pub async fn of_kind(client: &Client, keys: &Keys, of: Of, id: u64) -> Result<u32, Error> {
    match known(keys, of, id) {
        Some(n) => Ok(n),
        None => read_of(client, keys, of, id).await,
    }
}

/// For each user, whether some bucket of a campaign of `n` buckets issued
/// the coupon to them (a holder stays one for the campaign's life).
pub async fn holders(client: &Client, keys: &Keys, coupon_id: u64, n: u32, users: &[u64]) -> Result<Vec<bool>, Error> {
    let pipe = client.pipeline();
    for &user in users {
        for bucket in walk(user, n) {
            let _: () = pipe.sismember(keys.coupon_bucket(coupon_id, bucket).users, user).await?;
        }
    }
    let answers: Vec<bool> = pipe.all().await?;
    Ok(answers.chunks(n.max(1) as usize).map(|c| c.iter().any(|&m| m)).collect())
}

/// Every bucket's keys of a campaign of `n` buckets, bucket 0 first.
pub fn all(keys: &Keys, coupon_id: u64, n: u32) -> Vec<CouponKeys> {
    (0..n.max(1)).map(|b| keys.coupon_bucket(coupon_id, b)).collect()
}

/// Every bucket's keys of a sale of `n` buckets, bucket 0 first.
pub fn all_of_sale(keys: &Keys, sale_id: u64, n: u32) -> Vec<SaleKeys> {
    (0..n.max(1)).map(|b| keys.sale_bucket(sale_id, b)).collect()
}

/// The bucket holding `order_id` of a sale of `n` buckets: order ids of a
/// sale with buckets name their bucket, id % n (see `reserve_order.lua`).
pub fn of_order(order_id: u64, n: u32) -> u32 {
    (order_id % u64::from(n.max(1))) as u32
}

/// The bucket `user` tries first: its id mixed (so sequential ids spread).
pub fn home(user: u64, n: u32) -> u32 {
    let mixed = user.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mixed >> 32) % u64::from(n.max(1))) as u32
}

/// The order `user` tries the buckets in: home, then the next ones, wrapping.
pub fn walk(user: u64, n: u32) -> impl Iterator<Item = u32> {
    let n = n.max(1);
    let start = home(user, n);
    (0..n).map(move |i| (start + i) % n)
}

/// `total` split into `n` parts as even as can be, the larger first.
pub fn shares(total: u64, n: u32) -> Vec<u64> {
    let n = u64::from(n.max(1));
    (0..n).map(|b| total / n + u64::from(b < total % n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for (total, n) in [(10_000, 3), (7, 4), (0, 5), (1, 1), (65, 64)] {
            let s = shares(total, n);
            assert_eq!(s.len(), n as usize);
            assert_eq!(s.iter().sum::<u64>(), total);
            assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn a_walk_visits_every_bucket_once_from_home() {
        for user in [0u64, 1, 2, 99, u64::MAX] {
            let w: Vec<u32> = walk(user, 5).collect();
            assert_eq!(w[0], home(user, 5));
            let mut sorted = w.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
        }
        let spread: std::collections::BTreeSet<u32> = (1..=30).map(|u| home(u, 3)).collect();
        assert_eq!(spread.len(), 3, "sequential users reach every bucket");
    }
}
