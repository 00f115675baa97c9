//! The in-process sold-out flag: once a script answers "sold out", the same
//! answer is given from memory for a short while, so the tail of a spike does
//! not touch Redis. The flag expires by itself (`TTL`), which is how a top-up
//! (`flashsale stock add`, `coupon create --replace`) is noticed — at most
//! `TTL` late. A lock-free table of atomics: one load pair per request.
//!
//! Only "sold out" is cached, and only where every check before it in the
//! script would pass for everyone alike, except one: a user who already holds
//! the coupon gets 410 instead of 409 while the flag is up.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How long a sold-out answer is reused.
pub const TTL_MS: u64 = 250;
const SLOTS: usize = 4096;

pub struct SoldOut {
    /// (key + 1, valid until ms); a collision simply overwrites: it is a cache.
    slots: Box<[(AtomicU64, AtomicU64)]>,
}

impl Default for SoldOut {
    fn default() -> Self {
        SoldOut { slots: (0..SLOTS).map(|_| (AtomicU64::new(0), AtomicU64::new(0))).collect() }
    }
}

impl SoldOut {
    fn slot(&self, key: u64) -> &(AtomicU64, AtomicU64) {
        &self.slots[(crate::events::partition_for(key, SLOTS as i32)) as usize]
    }

    pub fn is_set(&self, key: u64, now_ms: u64) -> bool {
        let (id, until) = self.slot(key);
        id.load(Relaxed) == key.wrapping_add(1) && until.load(Relaxed) > now_ms
    }

    pub fn set(&self, key: u64, now_ms: u64) {
        let (id, until) = self.slot(key);
        // Expire first so a reader never pairs the new key with an old deadline.
        until.store(0, Relaxed);
        id.store(key.wrapping_add(1), Relaxed);
        until.store(now_ms + TTL_MS, Relaxed);
    }
}

/// The cache key of one SKU of one sale.
pub fn sku_key(sale_id: u64, sku: u64) -> u64 {
    sale_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ sku.rotate_left(32) ^ 0x5ca1_ab1e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_holds_for_its_ttl_only_and_only_for_its_key() {
        let flags = SoldOut::default();
        flags.set(42, 1_000);
        assert!(flags.is_set(42, 1_000 + TTL_MS - 1));
        assert!(!flags.is_set(42, 1_000 + TTL_MS));
        assert!(!flags.is_set(43, 1_000));
        assert_ne!(sku_key(1, 2), sku_key(2, 1));
    }
}
