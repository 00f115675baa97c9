//! A Kafka-protocol broker (tansu) of a test's own, in a directory of its
//! own, for tests that pause it: pausing the shared one would stall every
//! other test.

use std::{path::PathBuf, process::Command, time::Duration};

use crate::helpers::{free_port, unique, wait_for_port};

pub struct OwnBroker {
    child: std::process::Child,
    dir: PathBuf,
    /// host:port, for `FLASHSALE_KAFKA_BROKERS`.
    pub addr: String,
}

impl OwnBroker {
    pub fn start() -> OwnBroker {
        let port = free_port();
        let dir = std::env::temp_dir().join(unique("flashsale_tansu_"));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("tcp://127.0.0.1:{port}");
        // tansu resolves sqlite:// paths against its working directory.
        let child = Command::new("tansu")
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tansu on PATH (scripts/install)");
        wait_for_port(port, Duration::from_secs(20), "own broker did not start");
        OwnBroker { child, dir, addr: format!("127.0.0.1:{port}") }
    }

    /// SIGSTOP: connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: answers what queued meanwhile.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {sig}");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
