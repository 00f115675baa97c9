//! A Redis Cluster of a test's own: 3 primaries + 3 replicas on private
//! loopback ports (bus ports 10000 below each), children of the test, so a
//! drill can fail one over and the stack's cluster stays as it was.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::{
    ha_redis::{low_free_port, redis_cli, Node},
    helpers::unique,
};

pub struct OwnCluster {
    pub nodes: Vec<Node>,
    pub dir: PathBuf,
}

/// A port whose bus port (10000 below) is free too.
fn node_port() -> u16 {
    loop {
        let port = low_free_port();
        if std::net::TcpListener::bind(("127.0.0.1", port - 10_000)).is_ok() {
            return port;
        }
    }
}

impl OwnCluster {
    pub fn start() -> OwnCluster {
        let dir = std::env::temp_dir().join(unique("fs-cluster"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nodes: Vec<Node> = Vec::new();
        while nodes.len() < 6 {
            let port = node_port();
            if nodes.iter().any(|n| n.port == port) {
                continue;
            }
            // A directory per node: a replica saves the RDB its primary
            // streams to `dump.rdb` in its directory and loads it from
            // there, so a shared one mixes the nodes' data.
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            let args = [
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--cluster-port",
                &(port - 10_000).to_string(),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--cluster-node-timeout",
                "2000",
                "--dir",
                node_dir.to_str().unwrap(),
                "--save",
                "",
                "--appendonly",
                "no",
            ];
            let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            if let Some(logs) = std::env::var_os("FLASHSALE_TEST_LOG_DIR") {
                let log = std::path::Path::new(&logs).join(format!("redis-{port}.log"));
                args.extend(["--logfile".to_string(), log.to_str().unwrap().to_string()]);
            }
            nodes.push(Node::start(args, port));
        }
        let mut create = std::process::Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        create.args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = create.output().expect("redis-cli runs");
        assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let cluster = OwnCluster { nodes, dir };
        for node in &cluster.nodes {
            cluster
                .wait("cluster state ok", || redis_cli(node.port, &["cluster", "info"]).contains("cluster_state:ok"));
            // Every node knows three replicas, each following a primary.
            cluster.wait("the replicas known to every node", || {
                let nodes = redis_cli(node.port, &["cluster", "nodes"]);
                let following = |l: &&str| l.contains("slave") && l.split_whitespace().nth(3).is_some_and(|m| m != "-");
                nodes.lines().filter(following).count() == 3
            });
        }
        cluster
    }

    /// fred's cluster URL naming three of the nodes.
    pub fn url(&self) -> String {
        let p: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        format!("redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}", p[0], p[1], p[2])
    }

    /// The primary now serving `key`'s slot.
    pub fn primary_of(&self, key: &str) -> u16 {
        let slot: u16 = redis_cli(self.nodes[0].port, &["cluster", "keyslot", key]).parse().unwrap();
        let nodes = redis_cli(self.nodes[0].port, &["cluster", "nodes"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !fields[2].contains("master") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| match range.split_once('-') {
                Some((a, b)) => (a.parse::<u16>().unwrap()..=b.parse().unwrap()).contains(&slot),
                None => range.parse::<u16>().ok() == Some(slot),
            });
            if serves {
                return fields[1].split([':', '@']).nth(1).unwrap().parse().unwrap();
            }
        }
        panic!("no primary serves slot {slot}: {nodes}");
    }

    /// The port of a replica of `primary`.
    pub fn replica_of(&self, primary: u16) -> u16 {
        let nodes = redis_cli(primary, &["cluster", "nodes"]);
        let id = nodes.lines().find(|l| l.contains("myself")).unwrap().split_whitespace().next().unwrap().to_string();
        let line = nodes.lines().find(|l| l.split_whitespace().nth(3) == Some(id.as_str())).expect("a replica");
        line.split_whitespace().nth(1).unwrap().split([':', '@']).nth(1).unwrap().parse().unwrap()
    }

    /// `CLUSTER FAILOVER` on `replica` (the graceful, manual kind: the
    /// replica catches up first); returns once it is a primary, and how long that took.
    pub fn failover(&self, replica: u16) -> Duration {
        let started = Instant::now();
        assert_eq!(redis_cli(replica, &["cluster", "failover"]), "OK");
        self.wait("the replica to take over", || redis_cli(replica, &["role"]).starts_with("master"));
        started.elapsed()
    }

    fn wait(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "{what} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill9();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
