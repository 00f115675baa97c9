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
//! The counts a process has learnt are kept by the bucket router that
//! `placement` hands down; this module holds the arithmetic.

use crate::keys::{CouponKeys, Keys, SaleKeys};

/// The most buckets a campaign may have.
pub const MAX_BUCKETS: u32 = 64;

/// What a bucket count belongs to: a campaign or a sale (ids are separate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Of {
    Coupon,
    Sale,
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
