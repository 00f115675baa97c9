//! In-process admission control: token allowances (the token-bucket rule) per client IP and per user
//! (429 + Retry-After), and caps on reservations in flight per sale and on
//! connections open per client IP.
//! Allowances live in sharded maps so concurrent requests rarely share a lock.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

const SHARDS: usize = 64;
/// A shard this full drops allowances idle for a while before growing further.
const PRUNE_AT: usize = 4096;

struct Allowance {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    rate: f64,
    shards: Vec<Mutex<HashMap<u64, Allowance>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl RateLimiter {
    /// `rate` requests per second, bursts of up to one second's worth.
    pub fn new(rate: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
        }
    }

    /// Takes a token for `key`, or says how long until one is free.
    pub fn check(&self, key: impl Hash) -> Result<(), Duration> {
        let key = self.hasher.hash_one(key);
        let now = Instant::now();
        let mut shard = self.shards[key as usize % SHARDS].lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= PRUNE_AT {
            let idle = Duration::from_secs(2);
            shard.retain(|_, b| now.duration_since(b.at) < idle);
        }
        let allowance = shard.entry(key).or_insert(Allowance { tokens: self.rate, at: now });
        allowance.tokens =
            (allowance.tokens + now.duration_since(allowance.at).as_secs_f64() * self.rate).min(self.rate);
        allowance.at = now;
        if allowance.tokens >= 1.0 {
            allowance.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - allowance.tokens) / self.rate))
        }
    }
}

/// At most `cap` holders at once per key: reservations in flight per sale
/// (admission), connections open per client IP. Only keys held are remembered.
pub struct Places<K: Hash + Eq + Copy> {
    cap: usize,
    held: Mutex<HashMap<K, usize>>,
}

/// Held while its holder runs; gives its place back when dropped.
pub struct Place<K: Hash + Eq + Copy> {
    places: Arc<Places<K>>,
    key: K,
}

impl<K: Hash + Eq + Copy> Places<K> {
    pub fn new(cap: usize) -> Arc<Places<K>> {
        Arc::new(Places { cap, held: Mutex::new(HashMap::new()) })
    }

    /// A place under `key`, or None when `cap` are held.
    pub fn enter(self: &Arc<Self>, key: K) -> Option<Place<K>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Place { places: self.clone(), key })
    }
}

impl<K: Hash + Eq + Copy> Drop for Place<K> {
    fn drop(&mut self) {
        let mut held = self.places.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// Reservations in flight per sale.
pub type Admission = Places<u64>;
/// A reservation's place among its sale's in flight.
pub type Ticket = Place<u64>;
/// Connections open per client (IPv4 address or IPv6 /64).
pub type ConnectionCap = Places<std::net::IpAddr>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allowance_allows_its_burst_then_asks_to_wait() {
        let limiter = RateLimiter::new(3);
        for _ in 0..3 {
            assert!(limiter.check(7u64).is_ok());
        }
        let wait = limiter.check(7u64).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(334));
        assert!(limiter.check(8u64).is_ok(), "another key has its own allowance");
    }

    #[test]
    fn admission_caps_in_flight_reservations_per_sale() {
        let admission = Admission::new(2);
        let a = admission.enter(1).unwrap();
        let _b = admission.enter(1).unwrap();
        assert!(admission.enter(1).is_none());
        assert!(admission.enter(2).is_some(), "other sales are not affected");
        drop(a);
        assert!(admission.enter(1).is_some());
    }
}
