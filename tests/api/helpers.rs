//! `TestApp`: the real service on 127.0.0.1:0 against the real Redis, Kafka
//! broker and MySQL of the local stack (`scripts/stack up`), with a fresh key
//! prefix, topic and database per test; start, stop, crash, the CLI and
//! MySQL. The HTTP methods are in `requests.rs`.

use std::{
    collections::HashSet,
    net::SocketAddr,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use flashsale::{
    app,
    config::ServeConfig,
    config::*,
    shutdown::{self, Trigger},
};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use mysql_async::prelude::*;
use tokio::{net::TcpListener, task::JoinHandle};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The payment gateway's secret every test service has (confirm calls are signed with it).
pub const PAYMENT_SECRET: &str = "test-payment-secret-0123";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A name no other test (nor an earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000_000;
    format!("{prefix}{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos)
}

/// The dev stack's MySQL server URL, without a database.
pub fn mysql_server_url() -> String {
    let base = env_or("FLASHSALE_MYSQL_URL", "mysql://flashsale:flashsale@127.0.0.1:23306/flashsale");
    base[..base.rfind('/').expect("mysql url has a database")].to_string()
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub config: ServeConfig,
    trigger: Option<Trigger>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    pub(crate) client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    pub mysql: mysql_async::Pool,
}

impl TestApp {
    /// A fresh prefix, topic and database; migrated; service started.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let name = unique("fs_t");
        let server = mysql_server_url();
        // Every setting at its default (from the clap attributes: the one place they are
        // written), then what a test service needs differently.
        let mut config = ServeConfig {
            http: HttpSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                // The tests read /metrics and the live view on the one port.
                ops_on_main: true,
                header_read_timeout_ms: 5_000,
                payment_secret: Some(PAYMENT_SECRET.parse().unwrap()),
                // Every test client joins from 127.0.0.1 (tests/api/queue.rs tests the limit).
                queue_joins_per_ip: 0,
                ..defaults()
            },
            redis: RedisSettings {
                redis_url: env_or("FLASHSALE_REDIS_URL", "redis://127.0.0.1:26379"),
                key_prefix: format!("{name}:"),
                redis_timeout_ms: 5_000,
                ..defaults()
            },
            mysql: MysqlSettings { mysql_url: format!("{server}/{name}"), mysql_pool_size: 8 },
            kafka: KafkaSettings {
                kafka_brokers: env_or("FLASHSALE_KAFKA_BROKERS", "127.0.0.1:29092")
                    .split(',')
                    .map(String::from)
                    .collect(),
                coupon_topic: format!("{name}-coupon-issued"),
                order_topic: format!("{name}-order-events"),
                wallet_topic: format!("{name}-wallet-events"),
                kafka_partitions: 2,
                ..defaults()
            },
            relay: RelaySettings { relay_batch: 500, relay_consumer: Some("relay-1".into()), ..defaults() },
            sink: SinkSettings { sink_fetch_bytes: 1024 * 1024, sink_max_wait_ms: 100, ..defaults() },
            retention: defaults(),
            wallet: defaults(),
            run_sink: true,
        };
        adjust(&mut config);
        let mut app = TestApp::unstarted(config);
        app.cli(&["migrate"]).success();
        app.start().await;
        app
    }

    /// The app of `config`, its service not started.
    fn unstarted(config: ServeConfig) -> TestApp {
        TestApp {
            addr: "127.0.0.1:0".parse().unwrap(),
            mysql: mysql_async::Pool::new(config.mysql.mysql_url.as_str()),
            config,
            trigger: None,
            handle: None,
            client: Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build_http(),
        }
    }

    /// Another service instance on this app's servers, prefix, database and
    /// topics, as a second pod runs: no migration, its own listener and tasks.
    pub async fn another_instance(&self, adjust: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let mut config = self.config.clone();
        adjust(&mut config);
        let mut app = TestApp::unstarted(config);
        app.start().await;
        app
    }

    /// Like `spawn_with`, but the service is not started in this process:
    /// for tests that run `flashsale serve` as a child process to kill it.
    pub async fn prepare_with(adjust: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let mut app = Self::spawn_with(adjust).await;
        app.stop().await;
        app
    }

    /// The environment `flashsale` needs to act on this app's servers, names and settings.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let c = &self.config;
        let secret = c.http.payment_secret.as_ref().map(|s| s.0.clone()).unwrap_or_default();
        vec![
            ("FLASHSALE_PAYMENT_SECRET", secret),
            ("FLASHSALE_REDIS_URL", c.redis.redis_url.clone()),
            ("FLASHSALE_KEY_PREFIX", c.redis.key_prefix.clone()),
            ("FLASHSALE_REDIS_TIMEOUT_MS", c.redis.redis_timeout_ms.to_string()),
            ("FLASHSALE_ACK_REPLICAS", c.redis.ack_replicas.to_string()),
            ("FLASHSALE_ACK_TIMEOUT_MS", c.redis.ack_timeout_ms.to_string()),
            ("FLASHSALE_ACK_FSYNC", c.redis.ack_fsync.to_string()),
            ("FLASHSALE_MYSQL_URL", c.mysql.mysql_url.clone()),
            ("FLASHSALE_KAFKA_BROKERS", c.kafka.kafka_brokers.join(",")),
            ("FLASHSALE_COUPON_TOPIC", c.kafka.coupon_topic.clone()),
            ("FLASHSALE_ORDER_TOPIC", c.kafka.order_topic.clone()),
            ("FLASHSALE_WALLET_TOPIC", c.kafka.wallet_topic.clone()),
            ("FLASHSALE_KAFKA_PARTITIONS", c.kafka.kafka_partitions.to_string()),
            ("FLASHSALE_OPS_ON_MAIN", c.http.ops_on_main.to_string()),
        ]
    }

    /// Starts the service (again) with the same prefix, topic and database.
    pub async fn start(&mut self) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.addr = listener.local_addr().unwrap();
        let (trigger, shutdown) = shutdown::channel();
        let config = self.config.clone();
        self.handle = Some(tokio::spawn(app::serve(listener, config, shutdown)));
        self.trigger = Some(trigger);
        self.wait_until_ready().await;
    }

    /// Stops the service: HTTP, relay and sink, wherever they are.
    pub async fn stop(&mut self) {
        if let Some(trigger) = self.trigger.take() {
            trigger.fire();
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(20), handle)
                .await
                .expect("service stops within 20 s")
                .expect("service task did not panic")
                .expect("service ran without error");
        }
    }

    /// Aborts the service task: no drain, no acknowledgement, like `kill -9`.
    pub fn crash(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
        self.trigger = None;
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // A one-off connection: the pooled client would keep a connection
            // open and skew tests that count connections.
            if healthz_once(self.addr).await {
                return;
            }
            if let Some(h) = &self.handle {
                assert!(!h.is_finished(), "service exited during start-up");
            }
            assert!(Instant::now() < deadline, "service not up within 20 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `/readyz` until it answers 503: the service saw a server go.
    pub async fn wait_until_unready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.request(hyper::Method::GET, "/readyz", None).await.status != hyper::StatusCode::SERVICE_UNAVAILABLE {
            assert!(Instant::now() < deadline, "still ready 20 s after a server went away");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs the `flashsale` binary with this app's settings in its environment.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        let c = &self.config;
        let out = Command::new(env!("CARGO_BIN_EXE_flashsale"))
            .args(args)
            .env("FLASHSALE_REDIS_URL", &c.redis.redis_url)
            .env("FLASHSALE_KEY_PREFIX", &c.redis.key_prefix)
            .env("FLASHSALE_MYSQL_URL", &c.mysql.mysql_url)
            .env("FLASHSALE_KAFKA_BROKERS", c.kafka.kafka_brokers.join(","))
            .env("FLASHSALE_COUPON_TOPIC", &c.kafka.coupon_topic)
            .env("FLASHSALE_ORDER_TOPIC", &c.kafka.order_topic)
            .env("FLASHSALE_WALLET_TOPIC", &c.kafka.wallet_topic)
            .env("FLASHSALE_KAFKA_PARTITIONS", c.kafka.kafka_partitions.to_string())
            .output()
            .expect("flashsale binary runs");
        CliOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `flashsale coupon create --id ID --quantity N` plus `extra` flags.
    pub fn create_coupon(&self, id: u64, quantity: u64, extra: &[&str]) {
        let (id, quantity) = (id.to_string(), quantity.to_string());
        let mut args = vec!["coupon", "create", "--id", &id, "--quantity", &quantity];
        args.extend_from_slice(extra);
        self.cli(&args).success();
    }

    /// `flashsale sale create --id ID --sku ... ` plus `extra` flags.
    pub fn create_sale(&self, id: u64, skus: &[&str], extra: &[&str]) {
        let id = id.to_string();
        let mut args = vec!["sale", "create", "--id", &id];
        for sku in skus {
            args.extend(["--sku", sku]);
        }
        args.extend_from_slice(extra);
        self.cli(&args).success();
    }

    /// Runs a MySQL query returning rows of `T`.
    pub async fn sql<T: FromRow + Send + 'static>(&self, query: &str) -> Vec<T> {
        self.mysql.get_conn().await.unwrap().query(query).await.unwrap()
    }

    /// Polls `query` (one number) until it equals `expected` or the deadline passes; returns the last value.
    pub async fn wait_for_sql(&self, query: &str, expected: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n: Vec<Option<u64>> = self.sql(query).await;
            let n = n.first().copied().flatten().unwrap_or(0);
            if n == expected || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// User ids MySQL holds for the campaign.
    pub async fn mysql_users(&self, coupon_id: u64) -> Vec<u64> {
        let mut conn = self.mysql.get_conn().await.unwrap();
        conn.exec("SELECT user_id FROM coupon_issues WHERE coupon_id = ? AND event_id <> ''", (coupon_id,))
            .await
            .unwrap()
    }

    /// Polls MySQL until it holds `expected` rows for the campaign (or the deadline passes).
    pub async fn wait_for_rows(&self, coupon_id: u64, expected: usize) -> Vec<u64> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let users = self.mysql_users(coupon_id).await;
            if users.len() >= expected || Instant::now() > deadline {
                return users;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A port the kernel just had free, for a child process to bind.
/// A port nothing listens on now, for a server a test starts by address. Taken
/// below the kernel's ephemeral range (and above the stack's fixed ports), so
/// no client socket of a parallel test is handed it meanwhile: a port from
/// `bind(:0)` is an ephemeral one, and an outgoing connection could take it
/// before the server binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FROM: u32 = 30_000;
    let below: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .filter(|low| *low > FROM + 100)
        .unwrap_or(32_768);
    // Each test process starts elsewhere in the range, and hands out each port once.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..(below - FROM) {
        let port = (FROM + start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % (below - FROM)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FROM}..{below}");
}

/// Blocks until something accepts on `port`, failing the test with `what`
/// after `limit`.
pub fn wait_for_port(port: u16, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

/// The distinct values of `users`, failing on any duplicate.
pub fn distinct(users: &[u64]) -> HashSet<u64> {
    let set: HashSet<u64> = users.iter().copied().collect();
    assert_eq!(set.len(), users.len(), "duplicate user rows");
    set
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(trigger) = self.trigger.take() {
            trigger.fire();
        }
        if !std::thread::panicking() {
            crate::forget::forget(&self.config);
        }
    }
}

async fn healthz_once(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else { return false };
    if stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    answer.starts_with(b"HTTP/1.1 200")
}

pub use crate::{own_redis::OwnRedis, requests::Response};

/// A child process killed (SIGKILL) and reaped when dropped, also when an
/// assertion fails first.
pub struct KilledOnDrop(pub std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
