//! Failover drills: a coupon + order spike against a primary, a replica and
//! three Sentinels of the test's own, while the replica stalls and the
//! primary dies (or Sentinel hands over gracefully). Afterwards every
//! client-seen 201 must be on the new primary and in MySQL exactly once.
//!
//! `#[ignore]`d with `chaos` in their names: they kill processes and take
//! half a minute each, so scripts/test runs them alone after the suite.

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use fred::prelude::*;
use hyper::StatusCode;

use crate::{ha_redis::HaRedis, helpers::TestApp, requests::Response};

/// Every answer of a spike, by kind.
#[derive(Default)]
struct Seen {
    issued: Mutex<BTreeSet<u64>>,
    orders: Mutex<BTreeSet<u64>>,
    requests: AtomicU64,
    created: AtomicU64,
    unavailable: AtomicU64,
    server_errors: AtomicU64,
    /// The first few 5xx answers other than 503/504, and transport errors, for the report.
    odd: Mutex<Vec<String>>,
}

impl Seen {
    fn record_odd(&self, what: String) {
        let mut odd = self.odd.lock().unwrap();
        if odd.len() < 5 {
            odd.push(what);
        }
    }

    /// Counts an answer (a transport error as a 502) and hands back a 201.
    fn answer(&self, what: &str, answer: Result<Response, String>) -> Option<Response> {
        match answer {
            Ok(res) if res.status == StatusCode::CREATED => {
                self.record(res.status);
                Some(res)
            }
            Ok(res) => {
                self.record(res.status);
                let outage = matches!(res.status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT);
                if res.status.is_server_error() && !outage {
                    self.record_odd(format!("{what} {}: {}", res.status, res.body));
                }
                None
            }
            Err(e) => {
                self.record(StatusCode::BAD_GATEWAY);
                self.record_odd(format!("{what}: {e}"));
                None
            }
        }
    }

    fn record(&self, status: StatusCode) {
        self.requests.fetch_add(1, Relaxed);
        match status {
            StatusCode::CREATED => self.created.fetch_add(1, Relaxed),
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => self.unavailable.fetch_add(1, Relaxed),
            s if s.is_server_error() => self.server_errors.fetch_add(1, Relaxed),
            _ => 0,
        };
    }
}

/// Clients issuing coupon 1 to fresh users and reserving one unit of SKU 1
/// in sale 1, until stopped.
fn spike(app: &Arc<TestApp>, clients: u64, stop: &Arc<AtomicBool>, seen: &Arc<Seen>) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (app, stop, seen) = (app.clone(), stop.clone(), seen.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                n += 1;
                let user = client * 1_000_000 + n;
                if seen.answer("issue", app.try_issue(1, user).await).is_some() {
                    seen.issued.lock().unwrap().insert(user);
                }
                if n.is_multiple_of(3) {
                    if let Some(res) = seen.answer("reserve", app.try_reserve(1, user, &[(1, 1)]).await) {
                        seen.orders.lock().unwrap().insert(res.body["order_id"].as_u64().unwrap());
                    }
                }
                if n.is_multiple_of(10) {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        });
    }
    tasks
}

/// What a drill found.
struct Outcome {
    requests: u64,
    created: u64,
    unavailable: u64,
    server_errors: u64,
    /// A sample of the 5xx answers other than 503/504, and of transport errors.
    odd: Vec<String>,
    failover: Duration,
    /// Client-seen 201s (issues and orders) the new primary does not hold.
    lost: usize,
    /// MySQL rows the new primary does not hold.
    mysql_only: usize,
    reconciled: bool,
}

impl Outcome {
    fn print(&self, label: &str) {
        eprintln!(
            "{label}: {} requests, {} x 201, {} x 503/504, {} other 5xx, failover {:.1} s, \
             {} client-seen 201s missing on the new primary, {} MySQL rows the new primary lacks, reconcile {}",
            self.requests,
            self.created,
            self.unavailable,
            self.server_errors,
            self.failover.as_secs_f64(),
            self.lost,
            self.mysql_only,
            if self.reconciled { "clean" } else { "NOT clean" }
        );
        for odd in &self.odd {
            eprintln!("  {label}: {odd}");
        }
    }
}

enum Drill {
    /// Replica stalled, primary killed -9, replica promoted, old primary back as a replica.
    Crash,
    /// `SENTINEL FAILOVER` while everything runs.
    Graceful,
}

async fn run_drill(ack_replicas: u32, drill: Drill, label: &str) -> Outcome {
    let mut ha = HaRedis::start(true);
    let url = ha.sentinel_url();
    let app = Arc::new(
        TestApp::spawn_with(|c| {
            c.redis.redis_url = url;
            c.redis.redis_timeout_ms = 1_000;
            c.redis.ack_replicas = ack_replicas;
            c.redis.ack_timeout_ms = 500;
        })
        .await,
    );
    app.create_coupon(1, 10_000_000, &[]);
    app.create_sale(1, &["1:100:10000000"], &[]);
    let (first, second) = (ha.primary.port, ha.replica.port);

    let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Seen::default()));
    let mut tasks = spike(&app, 32, &stop, &seen);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let failover = match drill {
        Drill::Crash => {
            ha.replica.pause(true);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            ha.primary.kill9();
            let killed = Instant::now();
            tokio::time::sleep(Duration::from_millis(300)).await;
            ha.replica.pause(false);
            let sentinels = Duration::from_secs(30);
            tokio::task::block_in_place(|| ha.wait_for_primary(second, sentinels));
            let failover = killed.elapsed();
            // The old primary comes back empty, as a replica of the new one.
            tokio::task::block_in_place(|| ha.bring_back_old_primary(second));
            failover
        }
        Drill::Graceful => {
            let asked = Instant::now();
            ha.sentinels[0].cli(&["sentinel", "failover", crate::ha_redis::SERVICE]);
            tokio::task::block_in_place(|| ha.wait_for_primary(second, Duration::from_secs(30)));
            let failover = asked.elapsed();
            tokio::task::block_in_place(|| ha.wait_for_replicas(second, 1));
            failover
        }
    };
    // /readyz and `flashsale status` name the new primary.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = app.get("/readyz").await;
        let server = ready.body["redis_primary"]["server"].as_str().unwrap_or_default().to_string();
        if server.ends_with(&format!(":{second}")) && ready.body["redis"] == "ok" {
            break;
        }
        assert!(Instant::now() < deadline, "{label}: /readyz never named the new primary: {}", ready.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = app.cli(&["status", "--coupon", "1"]);
    assert!(status.stdout.contains(&format!("redis 127.0.0.1:{second} (primary")), "{label}: {}", status.stdout);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Relaxed);
    while tasks.join_next().await.is_some() {}
    assert_eq!(ha.primary_port(), Some(second));
    let _ = first;

    // What the new primary holds.
    let keys = flashsale::keys::Keys::new(app.config.redis.key_prefix.clone());
    let primary =
        Builder::from_config(Config::from_url(&format!("redis://127.0.0.1:{second}")).unwrap()).build().unwrap();
    primary.init().await.unwrap();
    let users: BTreeSet<u64> =
        primary.smembers::<Vec<u64>, _>(keys.coupon(1).users).await.unwrap().into_iter().collect();
    let orders: BTreeSet<u64> = primary.hkeys::<Vec<u64>, _>(keys.sale(1).orders).await.unwrap().into_iter().collect();
    let issued = seen.issued.lock().unwrap().clone();
    let ordered = seen.orders.lock().unwrap().clone();
    let lost = issued.difference(&users).count() + ordered.difference(&orders).count();

    // Let the pipe drain, then compare MySQL with the new primary.
    // Async mode may never reconcile (MySQL holds what Redis lost): a shorter wait.
    let deadline = Instant::now() + Duration::from_secs(if ack_replicas > 0 { 90 } else { 20 });
    let reconciled = loop {
        if app.cli(&["reconcile"]).code == Some(0) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let rows: Vec<u64> = app.mysql_users(1).await;
    let row_set: BTreeSet<u64> = rows.iter().copied().collect();
    assert_eq!(rows.len(), row_set.len(), "{label}: a user holds two coupon rows");
    let order_rows: BTreeSet<u64> =
        app.sql::<u64>("SELECT order_id FROM orders WHERE sale_id = 1").await.into_iter().collect();
    let mysql_only = row_set.difference(&users).count() + order_rows.difference(&orders).count();
    if ack_replicas > 0 {
        let missing: Vec<_> = issued.difference(&row_set).take(5).collect();
        assert!(missing.is_empty(), "{label}: client-seen 201s never reached MySQL, e.g. {missing:?}");
        let conflicts: Vec<u64> = app.sql("SELECT COUNT(*) FROM order_conflicts").await;
        assert_eq!(conflicts, vec![0], "{label}: an order id named two orders");
    }
    primary.quit().await.ok();
    let odd = seen.odd.lock().unwrap().clone();
    Outcome {
        requests: seen.requests.load(Relaxed),
        created: seen.created.load(Relaxed),
        unavailable: seen.unavailable.load(Relaxed),
        server_errors: seen.server_errors.load(Relaxed),
        odd,
        failover,
        lost,
        mysql_only,
        reconciled,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills Redis processes; run alone: scripts/test runs it after the suite"]
async fn chaos_failover_with_replica_acks_loses_no_answered_write() {
    let out = run_drill(1, Drill::Crash, "ack replicas=1, crash").await;
    out.print("ack replicas=1, crash");
    assert!(out.created > 0 && out.unavailable > 0, "the drill served 201s and saw the outage");
    assert_eq!(out.server_errors, 0, "no 500s: an outage is a 503");
    assert_eq!(out.lost, 0, "every client-seen 201 is on the new primary");
    assert_eq!(out.mysql_only, 0, "MySQL holds nothing the new primary lacks");
    assert!(out.reconciled, "reconcile is clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills Redis processes; run alone: scripts/test runs it after the suite"]
async fn chaos_failover_in_async_mode_loses_what_the_stalled_replica_missed() {
    let out = run_drill(0, Drill::Crash, "ack replicas=0, crash").await;
    out.print("ack replicas=0, crash");
    // docs/guarantees.md: with FLASHSALE_ACK_REPLICAS=0 a failover loses the 201s the
    // promoted replica had not received, and MySQL may hold what Redis lost.
    assert!(out.lost > 0, "async mode answered 201s that the failover took back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "fails Redis over; run alone: scripts/test runs it after the suite"]
async fn chaos_graceful_sentinel_failover_loses_nothing() {
    let out = run_drill(1, Drill::Graceful, "ack replicas=1, SENTINEL FAILOVER").await;
    out.print("ack replicas=1, SENTINEL FAILOVER");
    assert_eq!(out.server_errors, 0, "no 500s");
    assert_eq!(out.lost, 0, "every client-seen 201 is on the new primary");
    assert_eq!(out.mysql_only, 0, "MySQL holds nothing the new primary lacks");
    assert!(out.reconciled, "reconcile is clean");
    assert!(out.failover < Duration::from_secs(15), "handover within 15 s");
}
