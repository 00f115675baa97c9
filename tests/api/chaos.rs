//! Fault injection against the real stack: each test runs a spike, injects a
//! fault, lets the system recover, then checks with `flashsale reconcile`
//! that every 2xx is in MySQL exactly once and Redis == MySQL.
//!
//! These stop or kill the shared servers, so they are `#[ignore]`d in the
//! parallel suite and run one at a time afterwards by `scripts/test`
//! (`cargo test --test api chaos -- --ignored --test-threads 1`).

use std::{
    collections::BTreeSet,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use hyper::StatusCode;

use crate::helpers::{free_port, wait_for_port, TestApp};

/// Outage length for the broker and MySQL tests (the issue asks for ~20 s).
fn outage() -> Duration {
    let secs = std::env::var("FLASHSALE_CHAOS_OUTAGE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    Duration::from_secs(secs)
}

/// The pid of a stack server: from its pid file under `.stack/`, else (a
/// server `scripts/stack up` found already running) whoever listens on `port`.
fn stack_pid(name: &str, port: u16) -> i32 {
    let path = format!("{}/.stack/{name}", env!("CARGO_MANIFEST_DIR"));
    let from_file = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<i32>().ok());
    if let Some(pid) =
        from_file.filter(|pid| Command::new("kill").args(["-0", &pid.to_string()]).status().is_ok_and(|s| s.success()))
    {
        return pid;
    }
    let out = Command::new("ss").args(["-ltnpH", &format!("sport = :{port}")]).output().expect("ss runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("pid=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid file {path} and nothing listens on {port}: {text}"))
}

/// The port of a server URL in this app's settings (`scheme://host:port/...` or `host:port`).
fn port_of(url: &str) -> u16 {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap().rsplit('@').next().unwrap();
    host_port.rsplit(':').next().unwrap().parse().unwrap()
}

fn signal(pid: i32, sig: &str) {
    assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success(), "kill {sig} {pid}");
}

/// Where a child process's stderr goes: a file named `name` in
/// `FLASHSALE_TEST_LOG_DIR` when that is set (to read a drill's logs), else nowhere.
pub fn log_to(name: &str) -> Stdio {
    match std::env::var_os("FLASHSALE_TEST_LOG_DIR") {
        Some(dir) => {
            let path = std::path::Path::new(&dir).join(format!("{name}.log"));
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("log file opens");
            Stdio::from(file)
        }
        None => Stdio::null(),
    }
}

/// `flashsale serve` as a child process on a fixed port.
pub struct Service {
    child: Option<Child>,
    port: u16,
    env: Vec<(&'static str, String)>,
}

impl Service {
    pub fn start(app: &TestApp, port: u16) -> Service {
        Service::start_with(app, port, &[])
    }

    /// Like `start`, with `extra` settings on top of the app's.
    pub fn start_with(app: &TestApp, port: u16, extra: &[(&'static str, &str)]) -> Service {
        let mut env = app.env();
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let mut s = Service { child: None, port, env };
        s.restart();
        s
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn restart(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_flashsale"))
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("FLASHSALE_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("FLASHSALE_KAFKA_TIMEOUT_MS", "5000")
            .stdout(Stdio::null())
            .stderr(log_to(&format!("serve-{}", self.port)))
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(60), "service did not come back");
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A spike in the background: many concurrent clients issuing coupon 1 to
/// fresh users and reserving orders in sale 1, recording every 2xx.
struct Spike {
    stop: Arc<AtomicBool>,
    issued: Arc<Mutex<BTreeSet<u64>>>,
    orders: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    tasks: tokio::task::JoinSet<()>,
}

impl Spike {
    fn start(app: &Arc<TestApp>, clients: u64) -> Spike {
        let mut spike = Spike {
            stop: Arc::new(AtomicBool::new(false)),
            issued: Arc::default(),
            orders: Arc::default(),
            requests: Arc::default(),
            tasks: tokio::task::JoinSet::new(),
        };
        for client in 0..clients {
            let (app, stop, issued, orders, requests) =
                (app.clone(), spike.stop.clone(), spike.issued.clone(), spike.orders.clone(), spike.requests.clone());
            spike.tasks.spawn(async move {
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    n += 1;
                    let user = client * 1_000_000 + n;
                    requests.fetch_add(2, Relaxed);
                    if let Ok(res) = app.try_issue(1, user).await {
                        if res.status == StatusCode::CREATED {
                            issued.lock().unwrap().insert(user);
                        }
                    }
                    if let Ok(res) = app.try_reserve(1, user, &[(1, 1), (2, 1)]).await {
                        if res.status == StatusCode::CREATED {
                            orders.fetch_add(1, Relaxed);
                        }
                    }
                    if n.is_multiple_of(20) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            });
        }
        spike
    }

    async fn finish(mut self) -> (BTreeSet<u64>, u64, u64) {
        self.stop.store(true, Relaxed);
        while self.tasks.join_next().await.is_some() {}
        let issued = std::mem::take(&mut *self.issued.lock().unwrap());
        (issued, self.orders.load(Relaxed), self.requests.load(Relaxed))
    }
}

/// Waits for the pipe to drain, then demands reconcile's verdict: Redis == MySQL,
/// and every 2xx coupon is in MySQL.
async fn settle_and_reconcile(app: &TestApp, issued: &BTreeSet<u64>, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = app.cli(&["reconcile"]);
        if out.code == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "{label}: Redis and MySQL never agreed:\n{}\n{}", out.stdout, out.stderr);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rows: BTreeSet<u64> = app.mysql_users(1).await.into_iter().collect();
    let lost: Vec<_> = issued.difference(&rows).collect();
    assert!(lost.is_empty(), "{label}: {} 201s missing in MySQL, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    let remaining = app.coupon(1).await.body["remaining"].as_i64().unwrap();
    assert!(remaining >= 0);
    for (sku, left) in app.remaining(1).await {
        assert!(left <= 1_000_000, "SKU {sku} never below zero ({left})");
    }
}

async fn chaos_app() -> (Arc<TestApp>, u16) {
    let port = free_port();
    let mut app = TestApp::prepare_with(|c| c.redis.redis_timeout_ms = 1_000).await;
    app.create_coupon(1, 1_000_000, &[]);
    app.create_sale(1, &["1:100:1000000", "2:200:1000000"], &[]);
    app.addr = ([127, 0, 0, 1], port).into();
    (Arc::new(app), port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills processes; run alone: scripts/test runs it after the suite"]
async fn chaos_kill_9_the_service_ten_times_during_a_spike() {
    let (app, port) = chaos_app().await;
    let mut service = Service::start(&app, port);
    let spike = Spike::start(&app, 16);
    for kill in 0..10 {
        tokio::time::sleep(Duration::from_millis(300 + 97 * (kill % 5))).await;
        service.kill9();
        tokio::time::sleep(Duration::from_millis(50)).await;
        service.restart();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (issued, orders, requests) = spike.finish().await;
    settle_and_reconcile(&app, &issued, "kill -9").await;
    println!("chaos kill -9: {requests} requests, {} coupons and {orders} orders 2xx, 10 kills, {} rows in MySQL, 0 differences", issued.len(), app.mysql_users(1).await.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "stops the shared broker; run alone: scripts/test runs it after the suite"]
async fn chaos_broker_outage_keeps_the_hot_path_up_and_drains_after() {
    let (app, port) = chaos_app().await;
    let _service = Service::start(&app, port);
    let spike = Spike::start(&app, 8);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let broker = stack_pid("kafka/tansu.pid", port_of(&app.config.kafka.kafka_brokers[0]));
    signal(broker, "-STOP");
    let before = spike.issued.lock().unwrap().len();
    tokio::time::sleep(outage()).await;
    let during = spike.issued.lock().unwrap().len() - before;
    let outbox = app.get("/v1/coupons/1").await;
    signal(broker, "-CONT");
    assert!(during > 0, "the hot path kept answering 201 while the broker was down");
    assert_eq!(outbox.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (issued, orders, requests) = spike.finish().await;
    settle_and_reconcile(&app, &issued, "broker outage").await;
    println!("chaos broker outage {:?}: {requests} requests, {} coupons ({during} during the outage) and {orders} orders 2xx, 0 differences", outage(), issued.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "stops the shared MySQL; run alone: scripts/test runs it after the suite"]
async fn chaos_mysql_outage_the_sink_resumes_from_its_offsets() {
    let (app, port) = chaos_app().await;
    let _service = Service::start(&app, port);
    let spike = Spike::start(&app, 8);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mysql = stack_pid("mysql/mysqld.pid", port_of(&app.config.mysql.mysql_url));
    signal(mysql, "-STOP");
    tokio::time::sleep(outage()).await;
    signal(mysql, "-CONT");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (issued, orders, requests) = spike.finish().await;
    settle_and_reconcile(&app, &issued, "MySQL outage").await;
    println!(
        "chaos MySQL outage {:?}: {requests} requests, {} coupons and {orders} orders 2xx, 0 differences",
        outage(),
        issued.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "restarts the shared Redis; run alone: scripts/test runs it after the suite"]
async fn chaos_redis_restart_with_aof_loses_at_most_the_fsync_window() {
    let (app, port) = chaos_app().await;
    let _service = Service::start(&app, port);
    let spike = Spike::start(&app, 8);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Users issued more than 2 s before the crash must survive (appendfsync everysec).
    let settled: BTreeSet<u64> = spike.issued.lock().unwrap().clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal(stack_pid("redis/redis.pid", port_of(&app.config.redis.redis_url)), "-KILL");
    let up = Command::new(format!("{}/scripts/stack", env!("CARGO_MANIFEST_DIR"))).arg("up").output().unwrap();
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (issued, _, requests) = spike.finish().await;

    let out = std::process::Command::new("redis-cli")
        .args([
            "-u",
            &app.config.redis.redis_url,
            "SMEMBERS",
            &format!("{}{{coupon:1}}:users", app.config.redis.key_prefix),
        ])
        .output()
        .unwrap();
    let in_redis: BTreeSet<u64> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
    let lost_settled: Vec<_> = settled.difference(&in_redis).collect();
    assert!(lost_settled.is_empty(), "issues older than the fsync window were lost: {lost_settled:?}");
    let lost = issued.difference(&in_redis).count();
    // After the restart the service answers again (scripts reloaded on NOSCRIPT).
    let after = app.try_issue(1, 999_999_999).await.expect("service answers after the Redis restart");
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.body);
    println!("chaos Redis kill -9 + restart (AOF everysec): {requests} requests, {} coupons 2xx, {lost} acknowledged issues lost in the fsync window", issued.len());
}
