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

    /// Writes the histogram in Prometheus text format, bounds and sum in
    /// seconds (observations were microseconds).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        self.render_scaled(out, name, labels, 1e-6);
    }

    /// As `render`, bounds and sum multiplied by `scale` (1.0 for plain counts).
    pub fn render_scaled(&self, out: &mut String, name: &str, labels: &str, scale: f64) {
        // Divide by the inverse: 100 / 1e6 prints 0.0001, 100 * 1e-6 does not.
        let divisor = (1.0 / scale).round();
        use std::fmt::Write;
        let counts = self.cumulative();
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in self.bounds.iter().zip(&counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{}\"}} {count}", *bound as f64 / divisor);
        }
        let total = counts.last().copied().unwrap_or(0);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {total}");
        let braces = |s: &str| if s.is_empty() { String::new() } else { format!("{{{s}}}") };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum_us.load(Relaxed) as f64 / divisor);
        let _ = writeln!(out, "{name}_count{} {total}", braces(labels));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn observations_land_under_their_bound_and_render_cumulatively() {
        let h = super::Histogram::new();
        h.observe_us(80);
        h.observe_us(3_000);
        h.observe_us(20_000_000);
        let c = h.cumulative();
        assert_eq!((c[0], c[5], *c.last().unwrap()), (1, 2, 3));
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "route=\"a\"");
        assert!(out.contains("x_seconds_bucket{route=\"a\",le=\"0.0001\"} 1"));
        assert!(out.contains("x_seconds_bucket{route=\"a\",le=\"+Inf\"} 3"));
        assert!(out.contains("x_seconds_count{route=\"a\"} 3"));
    }

    #[test]
    fn size_histograms_have_bounds_for_counts() {
        let h = super::Histogram::sizes();
        for n in [1, 7, 7, 300, 10_000] {
            h.observe_size(n);
        }
        let mut out = String::new();
        h.render_scaled(&mut out, "x_size", "", 1.0);
        assert!(out.contains("x_size_bucket{le=\"1\"} 1"), "{out}");
        assert!(out.contains("x_size_bucket{le=\"10\"} 3"), "{out}");
        assert!(out.contains("x_size_bucket{le=\"500\"} 4"), "{out}");
        assert!(out.contains("x_size_sum 10315"), "{out}");
    }
}
