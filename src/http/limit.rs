//! In-process admission control: token buckets per client IP and per user
//! (429 + Retry-After), and a cap on reservations in flight per sale.
//! Buckets live in sharded maps so concurrent requests rarely share a lock.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

const SHARDS: usize = 64;
/// A shard this full drops buckets idle for a while before growing further.
const PRUNE_AT: usize = 4096;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    rate: f64,
    shards: Vec<Mutex<HashMap<u64, Bucket>>>,
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
        let bucket = shard.entry(key).or_insert(Bucket { tokens: self.rate, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.rate).min(self.rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// At most `cap` connections open at once per client (IPv4 address or IPv6 /64).
pub struct ConnectionCap {
    cap: usize,
    open: Mutex<HashMap<std::net::IpAddr, usize>>,
}

/// Held while a connection is open; gives its place back when dropped.
pub struct Connection {
    cap: Arc<ConnectionCap>,
    key: std::net::IpAddr,
}

impl ConnectionCap {
    pub fn new(cap: usize) -> Arc<ConnectionCap> {
        Arc::new(ConnectionCap { cap, open: Mutex::new(HashMap::new()) })
    }

    /// A place for a connection from `key`, or None when it has `cap` open.
    pub fn enter(self: &Arc<Self>, key: std::net::IpAddr) -> Option<Connection> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Connection { cap: self.clone(), key })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut open = self.cap.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                // Only clients with a connection open are remembered.
                open.remove(&self.key);
            }
        }
    }
}

/// At most `cap` reservations in flight per sale.
pub struct Admission {
    cap: usize,
    in_flight: Mutex<HashMap<u64, usize>>,
}

/// Held while a reservation runs; gives its place back when dropped.
pub struct Ticket {
    admission: Arc<Admission>,
    sale_id: u64,
}

impl Admission {
    pub fn new(cap: usize) -> Arc<Admission> {
        Arc::new(Admission { cap, in_flight: Mutex::new(HashMap::new()) })
    }

    pub fn enter(self: &Arc<Self>, sale_id: u64) -> Option<Ticket> {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(sale_id).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Ticket { admission: self.clone(), sale_id })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut map = self.admission.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.sale_id) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.sale_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_asks_to_wait() {
        let limiter = RateLimiter::new(3);
        for _ in 0..3 {
            assert!(limiter.check(7u64).is_ok());
        }
        let wait = limiter.check(7u64).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(334));
        assert!(limiter.check(8u64).is_ok(), "another key has its own bucket");
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
