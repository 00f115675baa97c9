//! A Redis server of a test's own, for tests that kill it.

use std::time::Duration;

use crate::helpers::{free_port, wait_for_port};

/// A Redis server of the test's own, so killing it disturbs no other test.
pub struct OwnRedis {
    pub child: std::process::Child,
    pub url: String,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let port = free_port();
        let child = std::process::Command::new(crate::ha_redis::redis_server())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        wait_for_port(port, Duration::from_secs(10), "own redis did not start");
        OwnRedis { child, url: format!("redis://127.0.0.1:{port}") }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
