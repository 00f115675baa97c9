//! Prints the CPU cost per operation of the service's rate limiter (on `governor`) and of
//! its metrics (its own atomics) against `prometheus-client`'s metric types, with one
//! thread per core doing what a request does (the same source files, included).
//! Run: `scripts/bench-crates`; the figures are in docs/benchmarks.md.

#[allow(dead_code)]
#[path = "../../../src/http/limit.rs"]
mod limit;
#[allow(dead_code)]
#[path = "../../../src/metrics/mod.rs"]
mod metrics;
#[path = "../../../src/shard.rs"]
mod shard;

use std::{
    hint::black_box,
    num::NonZeroU32,
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

const OPS: u64 = 2_000_000;
/// Each case runs this many times, alternating with its rival; the median is printed.
const ROUNDS: usize = 5;

fn main() {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "{threads} threads x {OPS} operations each; CPU ns per operation (process CPU / operations), \
         median of {ROUNDS} rounds"
    );
    println!("{:<62} {:>8} {:>8}", "case", "service", "crate");

    // Rate limits: a fresh key per request (many clients), and one hot key.
    let limiter = limit::RateLimiter::<u64>::new(1_000);
    let alone = governor::RateLimiter::keyed(governor::Quota::per_second(NonZeroU32::new(1_000).unwrap()));
    row(
        "rate limit, 100k clients round-robin (service | bare governor)",
        threads,
        |t, i| {
            black_box(limiter.check(key(t, i)).is_ok());
        },
        |t, i| {
            black_box(alone.check_key(&key(t, i)).is_ok());
        },
    );
    let limiter = limit::RateLimiter::<u64>::new(u32::MAX);
    let alone = governor::RateLimiter::keyed(governor::Quota::per_second(NonZeroU32::MAX));
    row(
        "rate limit, one client on every thread (service | bare)",
        threads,
        |_, _| {
            black_box(limiter.check(7u64).is_ok());
        },
        |_, _| {
            black_box(alone.check_key(&7u64).is_ok());
        },
    );

    // A request's metrics: its route/status counter and its route's latency histogram.
    let families = Families::new();
    row(
        "request metrics, labels looked up per request (ours | p-c)",
        threads,
        |_, i| metrics::METRICS.request(metrics::Route::IssueCoupon, 201, Duration::from_micros(i % 900)),
        |_, i| families.request("issue_coupon", 201, Duration::from_micros(i % 900)),
    );
    let counter = families.requests.get_or_create(&Labels { route: "issue_coupon", status: 201 }).clone();
    let histogram = families.latency.get_or_create(&Route { route: "issue_coupon" }).clone();
    row(
        "request metrics, handles resolved once (ours | p-c)",
        threads,
        |_, i| metrics::METRICS.request(metrics::Route::IssueCoupon, 201, Duration::from_micros(i % 900)),
        |_, i| {
            counter.inc();
            histogram.observe(Duration::from_micros(i % 900).as_secs_f64());
        },
    );
    let started = Instant::now();
    let n = (0..100).map(|_| metrics::render().len()).sum::<usize>();
    let ours = started.elapsed() / 100;
    let started = Instant::now();
    let mut m = 0;
    for _ in 0..100 {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &families.registry).unwrap();
        m += out.len();
    }
    let theirs = started.elapsed() / 100;
    println!(
        "{:<62} {:>8} {:>8}",
        format!("render, µs: all series | 2 families ({} | {} bytes)", n / 100, m / 100),
        ours.as_micros(),
        theirs.as_micros()
    );
}

fn key(thread: usize, i: u64) -> u64 {
    (i * 2 + thread as u64) % 100_000
}

/// Runs `ours` then `theirs` on every thread, `ROUNDS` times, printing the median CPU ns per call of each.
fn row(name: &str, threads: usize, ours: impl Fn(usize, u64) + Sync, theirs: impl Fn(usize, u64) + Sync) {
    let (mut a, mut b): (Vec<f64>, Vec<f64>) =
        (0..ROUNDS).map(|_| (cpu_per_op(threads, &ours), cpu_per_op(threads, &theirs))).unzip();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("{name:<62} {:>8.1} {:>8.1}", median(&mut a), median(&mut b));
}

fn cpu_per_op(threads: usize, op: &(impl Fn(usize, u64) + Sync)) -> f64 {
    let before = process_cpu();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || (0..OPS).for_each(|i| op(t, i)));
        }
    });
    (process_cpu() - before).as_nanos() as f64 / (OPS * threads as u64) as f64
}

/// User + system CPU of this process, from /proc (clock ticks of 10 ms).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: &'static str,
}

/// The request metrics as prometheus-client families, the same bounds as ours.
struct Families {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Route, Histogram>,
}

impl Families {
    fn new() -> Families {
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Route, Histogram>::new_with_constructor(|| {
            Histogram::new(metrics::BOUNDS_US.iter().map(|us| *us as f64 / 1e6))
        });
        let mut registry = Registry::default();
        registry.register("flashsale_http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("flashsale_http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        Families { registry, requests, latency }
    }

    fn request(&self, route: &'static str, status: u16, elapsed: Duration) {
        self.requests.get_or_create(&Labels { route, status }).inc();
        self.latency.get_or_create(&Route { route }).observe(elapsed.as_secs_f64());
    }
}
