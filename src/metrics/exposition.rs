//! `GET /metrics`: the metrics' values in Prometheus text format 0.0.4, written by
//! `prometheus-client`'s encoder. The values stay in `Metrics`' own atomics, which the
//! dashboard reads back (docs/benchmarks.md, "Crates on the hot path").

use std::{fmt, sync::OnceLock};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet},
    metrics::MetricType,
    registry::Registry,
};

use super::{Histogram, Metrics, Route, METRICS, OUTCOMES, STATUSES};

/// Everything, in Prometheus text format 0.0.4.
pub fn render() -> String {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Exposition(&METRICS)));
        registry
    });
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry).expect("writing to a String");
    out
}

#[derive(Debug)]
struct Exposition(&'static Metrics);

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Collector for Exposition {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let m = self.0;
        let mut requests = e.encode_descriptor(
            "flashsale_http_requests",
            "HTTP requests by route and status",
            None,
            MetricType::Counter,
        )?;
        for route in Route::ALL {
            for (slot, status) in STATUSES.iter().enumerate() {
                let n = m.requests_of(route, slot);
                if n > 0 {
                    let status = if *status == 0 { "other".to_string() } else { status.to_string() };
                    counter_of(&mut requests, &[("route", route.name()), ("status", &status)], n)?;
                }
            }
        }
        let mut latency = e.encode_descriptor(
            "flashsale_http_request_duration_seconds",
            "HTTP request latency by route",
            None,
            MetricType::Histogram,
        )?;
        for route in Route::ALL {
            histogram_of(&mut latency, &[("route", route.name())], &m.latency_of(route), 1e-6)?;
        }
        let mut outcomes =
            e.encode_descriptor("flashsale_script_outcomes", "Lua script outcomes", None, MetricType::Counter)?;
        for (s, (script, names)) in OUTCOMES.iter().enumerate() {
            for (o, outcome) in names.iter().enumerate() {
                let n = m.outcomes[s][o].load(std::sync::atomic::Ordering::Relaxed);
                counter_of(&mut outcomes, &[("script", *script), ("outcome", *outcome)], n)?;
            }
        }
        let mut batches = e.encode_descriptor(
            "flashsale_script_batch_size",
            "Requests carried per hot-path script call",
            None,
            MetricType::Histogram,
        )?;
        histogram_of(&mut batches, &[("script", "issue_coupon")], &m.issue_batch_size, 1.0)?;
        histogram_of(&mut batches, &[("script", "reserve_order")], &m.reserve_batch_size, 1.0)?;
        histogram_of(&mut batches, &[("script", "wallet_apply")], &m.wallet_batch_size, 1.0)?;
        histogram_of(&mut batches, &[("script", "queue_join")], &m.join_batch_size, 1.0)?;
        counter(&mut e, "flashsale_relay_events", "Events produced to Kafka", &m.relay_events)?;
        counter(&mut e, "flashsale_relay_batches", "Relay batches delivered", &m.relay_batches)?;
        histogram(&mut e, "flashsale_relay_batch_size", "Events per relay batch", &m.relay_batch_size, 1.0)?;
        histogram(
            &mut e,
            "flashsale_kafka_produce_duration_seconds",
            "Kafka produce latency per request",
            &m.kafka_produce,
            1e-6,
        )?;
        counter(&mut e, "flashsale_kafka_produce_errors", "Failed Kafka produce attempts", &m.kafka_produce_errors)?;
        gauge(&mut e, "flashsale_outbox_entries", "Outbox entries not yet relayed, all streams", &m.outbox_entries)?;
        gauge(
            &mut e,
            "flashsale_outbox_pending",
            "Outbox entries read by the relay, not yet acknowledged",
            &m.outbox_pending,
        )?;
        counter(
            &mut e,
            "flashsale_queue_admitted",
            "Waiting rooms: people admitted by this instance",
            &m.queue_admitted,
        )?;
        counter(
            &mut e,
            "flashsale_queue_skipped",
            "Waiting rooms: places skipped by this instance (not polled within the poll grace)",
            &m.queue_skipped,
        )?;
        gauge(
            &mut e,
            "flashsale_queue_waiting",
            "Waiting rooms: people in line in all rooms, as this instance last saw them (every instance reports the same \
             rooms: take the max)",
            &m.queue_waiting,
        )?;
        counter(&mut e, "flashsale_sink_events", "Events written to MySQL by the sink", &m.sink_events)?;
        let mut lag = e.encode_descriptor(
            "flashsale_sink_lag",
            "Kafka records not yet in MySQL, per partition",
            None,
            MetricType::Gauge,
        )?;
        for ((topic, partition), n) in m.sink_lag.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let partition = partition.to_string();
            lag.encode_family(&[("topic", topic.as_str()), ("partition", &partition)])?.encode_gauge(n)?;
        }
        let mut stalled = e.encode_descriptor(
            "flashsale_sink_stalled",
            "1 while a sink partition is stalled: its stored offset is past the broker's end, or its batch \
             failed FLASHSALE_SINK_STALL_AFTER times in a row (see flashsale status)",
            None,
            MetricType::Gauge,
        )?;
        for ((topic, partition), s) in m.sink_stalled.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let partition = partition.to_string();
            stalled
                .encode_family(&[("topic", topic.as_str()), ("partition", &partition)])?
                .encode_gauge(&(*s as u64))?;
        }
        histogram(&mut e, "flashsale_mysql_write_duration_seconds", "Sink transaction latency", &m.mysql_write, 1e-6)?;
        counter(&mut e, "flashsale_mysql_errors", "Failed MySQL operations in the sink", &m.mysql_errors)?;
        counter(
            &mut e,
            "flashsale_mysql_deadlocks",
            "Sink batches rolled back as a MySQL deadlock's victim (1213) and retried",
            &m.mysql_deadlocks,
        )?;
        counter(
            &mut e,
            "flashsale_sink_order_conflicts",
            "Order events refused because their id names another order's row (see order_conflicts)",
            &m.order_conflicts,
        )?;
        counter(
            &mut e,
            "flashsale_orders_expired",
            "Reservations released by the sweeper (past their payment deadline)",
            &m.orders_expired,
        )?;
        counter(
            &mut e,
            "flashsale_wallet_recovered",
            "Wallet payments interrupted between their steps and settled by the recovery pass",
            &m.wallet_recovered,
        )?;
        counter(
            &mut e,
            "flashsale_panics",
            "Panics in this process; each is a bug, logged with its backtrace",
            &m.panics,
        )?;
        counter(
            &mut e,
            "flashsale_script_errors",
            "Write scripts that failed after they started (a Lua error): each is a bug; answered outcome_unknown",
            &m.script_errors,
        )
    }
}

/// A counter without labels; the encoder appends `_total` to `name`.
fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, value: &std::sync::atomic::AtomicU64) -> fmt::Result {
    let n = value.load(std::sync::atomic::Ordering::Relaxed);
    e.encode_descriptor(name, help, None, MetricType::Counter)?.encode_counter::<NoLabelSet, _, u64>(&n, None)
}

fn counter_of(m: &mut MetricEncoder, labels: &impl EncodeLabelSet, n: u64) -> fmt::Result {
    m.encode_family(labels)?.encode_counter::<NoLabelSet, _, u64>(&n, None)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, value: &std::sync::atomic::AtomicI64) -> fmt::Result {
    let n = value.load(std::sync::atomic::Ordering::Relaxed);
    e.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&n)
}

fn histogram(e: &mut DescriptorEncoder, name: &str, help: &str, h: &Histogram, scale: f64) -> fmt::Result {
    let (sum, count, buckets) = h.snapshot(scale);
    e.encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
}

fn histogram_of(m: &mut MetricEncoder, labels: &impl EncodeLabelSet, h: &Histogram, scale: f64) -> fmt::Result {
    let (sum, count, buckets) = h.snapshot(scale);
    m.encode_family(labels)?.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_text_format_names_series_as_prometheus_expects() {
        super::METRICS.request(super::Route::Health, 200, std::time::Duration::from_micros(80));
        let out = super::render();
        assert!(out.contains("# TYPE flashsale_http_requests_total counter\n"), "{out}");
        assert!(out.contains("\nflashsale_http_requests_total{route=\"health\",status=\"200\"} "), "{out}");
        assert!(out.contains("\nflashsale_http_request_duration_seconds_bucket{route=\"health\",le=\"0.0001\"} "));
        assert!(out.contains("\nflashsale_http_request_duration_seconds_bucket{route=\"health\",le=\"+Inf\"} "));
        assert!(out.contains("\nflashsale_script_batch_size_bucket{script=\"reserve_order\",le=\"100000\"} "), "{out}");
        assert!(out.contains("\nflashsale_outbox_entries "), "{out}");
        assert!(out.contains("\nflashsale_panics_total "), "{out}");
    }
}
