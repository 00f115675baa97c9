//! A replicated Redis of a test's own: a primary, one replica and (optionally)
//! three Sentinels on private loopback ports, for the acknowledgement tests
//! and the failover drills. Every process is a child of the test, so it can
//! be stopped (SIGSTOP), killed (-9) and restarted; all die with the group.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::helpers::{unique, wait_for_port};

/// The Sentinels' name for the group.
pub const SERVICE: &str = "flashsale";

/// The server binary the stack runs (Redis or Valkey).
pub fn redis_server() -> String {
    std::env::var("FLASHSALE_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// A free port below the kernel's ephemeral range, so that a server killed
/// and restarted on it finds it still free.
pub fn low_free_port() -> u16 {
    loop {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let port = 20_000 + (nanos % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One server process of the group.
pub struct Node {
    pub port: u16,
    child: Option<Child>,
    args: Vec<String>,
}

impl Node {
    pub fn start(args: Vec<String>, port: u16) -> Node {
        let mut node = Node { port, child: None, args };
        node.restart();
        node
    }

    /// Starts the process again with the arguments it first had.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "node {} still runs", self.port);
        let child = Command::new(redis_server())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(20), "a Redis node did not start");
    }

    /// Starts the process again as a replica of `primary`, as an operator
    /// brings a dead primary back: it can never be taken for the primary.
    pub fn restart_as_replica_of(&mut self, primary: u16) {
        if let Some(at) = self.args.iter().position(|a| a == "--replicaof") {
            self.args.drain(at..at + 3);
        }
        self.args.extend(["--replicaof".into(), "127.0.0.1".into(), primary.to_string()]);
        self.restart();
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("node runs").id() as i32
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP (`stop = true`) or SIGCONT: a stalled process keeps its
    /// connections open and answers nothing.
    pub fn pause(&self, stop: bool) {
        let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0, "signal {sig} to node {}", self.port);
    }

    /// A command through redis-cli, answered as text.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped process cannot die of SIGKILL until it runs again.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        }
        self.kill9();
    }
}

pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub struct HaRedis {
    /// The first primary; after a failover, see [`HaRedis::primary_port`].
    pub primary: Node,
    pub replica: Node,
    pub sentinels: Vec<Node>,
    pub dir: PathBuf,
}

impl HaRedis {
    /// A primary and a replica of it; with `sentinels`, three Sentinels
    /// (quorum 2, primary down after 1 s). Both data nodes refuse writes
    /// while no replica is connected (`min-replicas-to-write 1`), as
    /// `scripts/stack up --ha` runs them.
    pub fn start(sentinels: bool) -> HaRedis {
        let dir = std::env::temp_dir().join(unique("fs-ha"));
        std::fs::create_dir_all(&dir).unwrap();
        let (p, r) = (low_free_port(), low_free_port());
        let data_node = |port: u16, replica_of: Option<u16>| {
            // Each its own: a replica writes the snapshot it syncs from.
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--min-replicas-to-write",
                "1",
                "--min-replicas-max-lag",
                "10",
                "--dir",
                node_dir.to_str().unwrap(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if let Some(primary) = replica_of {
                args.extend(["--replicaof".into(), "127.0.0.1".into(), primary.to_string()]);
            }
            Node::start(args, port)
        };
        let primary = data_node(p, None);
        let replica = data_node(r, Some(p));
        let mut ha = HaRedis { primary, replica, sentinels: Vec::new(), dir };
        ha.wait_for_replicas(p, 1);
        if sentinels {
            for _ in 0..3 {
                let port = low_free_port();
                let conf = ha.dir.join(format!("sentinel-{port}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {SERVICE} 127.0.0.1 {p} 2\n\
                         sentinel down-after-milliseconds {SERVICE} 1000\nsentinel failover-timeout {SERVICE} 4000\n",
                        ha.dir.display()
                    ),
                )
                .unwrap();
                ha.sentinels.push(Node::start(vec![conf.to_str().unwrap().into(), "--sentinel".into()], port));
            }
            // Every Sentinel knows the replica before anything is drilled.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !ha.sentinels.iter().all(|s| s.cli(&["sentinel", "replicas", SERVICE]).contains(&r.to_string())) {
                assert!(Instant::now() < deadline, "the Sentinels never saw the replica");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        ha
    }

    /// `redis://` of the first primary (no Sentinel).
    pub fn primary_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.primary.port)
    }

    /// fred's Sentinel form of the group.
    pub fn sentinel_url(&self) -> String {
        let mut url = format!("redis-sentinel://127.0.0.1:{}/0?sentinelServiceName={SERVICE}", self.sentinels[0].port);
        for s in &self.sentinels[1..] {
            url.push_str(&format!("&node=127.0.0.1:{}", s.port));
        }
        url
    }

    /// The primary's port, as the first Sentinel that answers says.
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            s.cli(&["sentinel", "get-master-addr-by-name", SERVICE]).lines().nth(1).and_then(|p| p.trim().parse().ok())
        })
    }

    /// Waits until the Sentinels name `port` the primary; returns how long that took.
    pub fn wait_for_primary(&self, port: u16, limit: Duration) -> Duration {
        let started = Instant::now();
        while self.primary_port() != Some(port) {
            assert!(started.elapsed() < limit, "no failover to {port} within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        started.elapsed()
    }

    /// Waits until every Sentinel has finished the failover to `port`: it
    /// names `port` the primary with no failover in progress (a Sentinel
    /// still failing over names the promoted replica before it switches)
    /// and lists the old primary among the replicas.
    pub fn wait_for_every_sentinel(&self, port: u16, limit: Duration) {
        let started = Instant::now();
        let old = self.primary.port.to_string();
        let done = |s: &Node| {
            let master = s.cli(&["sentinel", "master", SERVICE]);
            let field = |name: &str| {
                let mut lines = master.lines();
                lines.find(|l| l.trim() == name).and(lines.next()).map(|v| v.trim().to_string())
            };
            field("port") == Some(port.to_string())
                && field("flags").as_deref() == Some("master")
                && s.cli(&["sentinel", "replicas", SERVICE]).lines().any(|l| l.trim() == old)
        };
        while !self.sentinels.iter().all(done) {
            let told: Vec<String> = self.sentinels.iter().map(|s| s.cli(&["sentinel", "master", SERVICE])).collect();
            assert!(
                started.elapsed() < limit,
                "the Sentinels have not finished failing over to {port} within {limit:?}: {told:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// After a failover to `port`: the old primary, killed, comes back empty
    /// as its replica once every Sentinel has switched. Restarted as a
    /// primary while one had not, it could make the survivor replicate it
    /// and lose everything; an operator does the same.
    pub fn bring_back_old_primary(&mut self, port: u16) {
        self.wait_for_every_sentinel(port, Duration::from_secs(30));
        self.primary.restart_as_replica_of(port);
        self.wait_for_replicas(port, 1);
    }

    /// Waits until the server on `port` has `n` connected replicas.
    pub fn wait_for_replicas(&self, port: u16, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = redis_cli(port, &["info", "replication"]);
            let connected = info
                .lines()
                .find_map(|l| l.strip_prefix("connected_slaves:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            let online = info.lines().filter(|l| l.starts_with("slave") && l.contains("state=online")).count() as u64;
            if connected >= n && online >= n {
                return;
            }
            assert!(Instant::now() < deadline, "{port} never had {n} replicas online:\n{info}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl HaRedis {
    /// Waits until every replica of the server on `port` reports the
    /// primary's replication offset: it holds every write made so far.
    pub fn wait_for_replicas_caught_up(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = redis_cli(port, &["info", "replication"]);
            let field = |line: &str, name: &str| -> Option<u64> {
                line.split([',', ':']).find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.trim().parse().ok())
            };
            let primary = info
                .lines()
                .find_map(|l| l.strip_prefix("master_repl_offset:"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            let replicas: Vec<Option<u64>> =
                info.lines().filter(|l| l.starts_with("slave")).map(|l| field(l, "offset")).collect();
            if primary.is_some() && !replicas.is_empty() && replicas.iter().all(|r| *r == primary) {
                return;
            }
            assert!(Instant::now() < deadline, "{port}'s replicas never caught up:\n{info}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for HaRedis {
    fn drop(&mut self) {
        self.sentinels.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
