//! A lock-free histogram with fixed bounds: one atomic add per
//! observation, read as cumulative counts for Prometheus and the dashboard.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of latency histograms, in microseconds: 100 µs .. 10 s.
pub const BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// Upper bounds of size histograms (requests per script call, entries per
/// relay batch): 1 .. 100,000.
pub const BOUNDS_SIZE: [u64; 16] =
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000];

pub struct Histogram {
    bounds: &'static [u64; 16],
    /// Observations per bound (not cumulative); the last slot is +Inf.
    counts: [AtomicU64; 17],
    /// Sum of the observations (µs for latencies).
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// Latencies: `BOUNDS_US`.
    pub const fn new() -> Self {
        Self::with_bounds(&BOUNDS_US)
    }

    /// Counts of things: `BOUNDS_SIZE`, rendered with `render_scaled(.., 1.0)`.
    pub const fn sizes() -> Self {
        Self::with_bounds(&BOUNDS_SIZE)
    }

    const fn with_bounds(bounds: &'static [u64; 16]) -> Self {
        Histogram { bounds, counts: [const { AtomicU64::new(0) }; 17], sum_us: AtomicU64::new(0) }
    }

    pub fn observe_us(&self, us: u64) {
        let slot = self.bounds.iter().position(|b| us <= *b).unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// A count, for a `sizes()` histogram.
    pub fn observe_size(&self, n: u64) {
        self.observe_us(n);
    }

    pub fn observe(&self, elapsed: std::time::Duration) {
        self.observe_us(elapsed.as_micros().min(u64::MAX as u128) as u64);
    }

    /// Adds `other`'s observations (same bounds) to these.
    pub fn add(&self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter().zip(&other.counts) {
            mine.fetch_add(theirs.load(Relaxed), Relaxed);
        }
        self.sum_us.fetch_add(other.sum_us.load(Relaxed), Relaxed);
    }

    /// Cumulative counts per bound, then +Inf (the total).
    pub fn cumulative(&self) -> Vec<u64> {
        let mut total = 0;
        self.counts
            .iter()
            .map(|b| {
                total += b.load(Relaxed);
                total
            })
            .collect()
    }

    /// Sum, count and per-bound counts (not cumulative, +Inf last), bounds and
    /// sum multiplied by `scale` (1e-6: seconds from µs; 1.0: plain counts).
    pub fn snapshot(&self, scale: f64) -> (f64, u64, Vec<(f64, u64)>) {
        // Divide by the inverse: 100 / 1e6 is 0.0001, 100 * 1e-6 is not.
        let divisor = (1.0 / scale).round();
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let bounds = self.bounds.iter().map(|b| *b as f64 / divisor).chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(counts.iter().copied()).collect();
        (self.sum_us.load(Relaxed) as f64 / divisor, counts.iter().sum(), buckets)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn observations_land_under_their_bound() {
        let h = super::Histogram::new();
        h.observe_us(80);
        h.observe_us(3_000);
        h.observe_us(20_000_000);
        let c = h.cumulative();
        assert_eq!((c[0], c[5], *c.last().unwrap()), (1, 2, 3));
        let (sum, count, buckets) = h.snapshot(1e-6);
        assert_eq!((sum, count), (20.00308, 3));
        assert_eq!((buckets[0], buckets[4], buckets[16]), ((0.0001, 1), (0.0025, 0), (f64::INFINITY, 1)));
    }

    #[test]
    fn size_histograms_have_bounds_for_counts() {
        let h = super::Histogram::sizes();
        for n in [1, 7, 7, 300, 10_000] {
            h.observe_size(n);
        }
        let (sum, count, buckets) = h.snapshot(1.0);
        assert_eq!((sum, count), (10315.0, 5));
        assert_eq!((buckets[0], buckets[3], buckets[8]), ((1.0, 1), (10.0, 2), (500.0, 1)));
    }
}
