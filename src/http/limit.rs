//! In-process admission control: token allowances per client IP and per user
//! (`governor`'s GCRA, 429 + Retry-After), and caps on reservations in flight per
//! sale and on connections open per client IP.

use std::{
    cell::Cell,
    collections::HashMap,
    hash::{BuildHasher, Hash},
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};

/// One check in this many (drawn at random, per thread: no shared counter) drops the
/// allowances back to full, i.e. of clients idle for a second.
const PRUNE_ONE_IN: u64 = 1 << 18;

pub struct RateLimiter<K: Hash + Eq + Clone> {
    allowances: DefaultKeyedRateLimiter<K>,
    /// `PRUNE_ONE_IN`; a test holds pruning off while it fills the map.
    prune_one_in: u64,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate` requests per second, bursts of up to one second's worth.
    pub fn new(rate: u32) -> RateLimiter<K> {
        let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
        RateLimiter { allowances: governor::RateLimiter::keyed(Quota::per_second(rate)), prune_one_in: PRUNE_ONE_IN }
    }

    /// `n` requests per minute, bursts of up to one minute's worth.
    pub fn per_minute(n: u32) -> RateLimiter<K> {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        RateLimiter { allowances: governor::RateLimiter::keyed(Quota::per_minute(n)), prune_one_in: PRUNE_ONE_IN }
    }

    /// Takes a token for `key`, or says how long until one is free.
    pub fn check(&self, key: K) -> Result<(), Duration> {
        if draw().is_multiple_of(self.prune_one_in) {
            self.allowances.retain_recent();
        }
        self.allowances
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(governor::clock::DefaultClock::default().now()))
    }

    /// Clients remembered (those not back to a full allowance at the last prune).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.allowances.len()
    }
}

/// A xorshift draw from this thread's own state.
fn draw() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(std::hash::RandomState::new().hash_one(std::thread::current().id()) | 1);
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    })
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
        let limiter = RateLimiter::<u64>::new(3);
        for _ in 0..3 {
            assert!(limiter.check(7u64).is_ok());
        }
        let wait = limiter.check(7u64).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(334));
        assert!(limiter.check(8u64).is_ok(), "another key has its own allowance");
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let mut limiter = RateLimiter::<u64>::new(1_000_000);
        // Filled with pruning off (a draw of 0 mod u64::MAX does not come), so
        // all 10,000 are there to forget.
        limiter.prune_one_in = u64::MAX;
        for key in 0..10_000 {
            limiter.check(key).unwrap();
        }
        assert!(limiter.remembered() >= 9_000, "{} remembered", limiter.remembered());
        limiter.prune_one_in = PRUNE_ONE_IN;
        // A million a second: everyone is back to a full allowance within a few ms.
        std::thread::sleep(Duration::from_millis(20));
        for key in 0..PRUNE_ONE_IN * 12 {
            limiter.check(u64::MAX - key % 100).unwrap();
        }
        assert!(limiter.remembered() <= 100, "{} remembered", limiter.remembered());
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
