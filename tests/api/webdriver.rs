//! Headless Chromium driven over W3C WebDriver: `Browser::start` runs
//! `chromedriver` on a free private port with a fresh profile directory and opens
//! one session; dropping the `Browser` deletes the session, kills chromedriver and
//! removes the profile, even when the test panics half-way.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde_json::{json, Value};

use crate::helpers::unique;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Without these, Chromium reaches out for updates, sync and QUIC probes, which
/// a closed network refuses; `--user-data-dir` is added per session.
const ARGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// Fails (never skips) when the browser is not installed.
pub fn require_chromium() {
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: this test needs the Debian packages chromium and chromium-driver; run scripts/install --test"
        );
    }
}

/// The chromedriver child process and the profile directory it hands Chromium.
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Driver {
    fn spawn() -> Driver {
        // Take a free port from the kernel, then let chromedriver bind it.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let profile = std::env::temp_dir().join(unique("flashsale-chromium-"));
        std::fs::create_dir_all(&profile).unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        Driver { child, port, profile }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One WebDriver session in headless Chromium.
pub struct Browser {
    client: Client<HttpConnector, Full<Bytes>>,
    session: String,
    /// Chromium's own process: it outlives a killed chromedriver.
    browser_pid: Option<u64>,
    open: bool,
    // Dropped after `Browser::drop` has closed the session.
    driver: Driver,
}

impl Browser {
    pub async fn start() -> Browser {
        require_chromium();
        let mut driver = Driver::spawn();
        let client = Client::builder(TokioExecutor::new()).build_http();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = driver.child.try_wait().unwrap() {
                panic!("chromedriver exited at start-up: {status}");
            }
            if let Ok((_, status)) = call(&client, driver.port, Method::GET, "/status", None).await {
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver not ready within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut args: Vec<String> = ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", driver.profile.display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let (ok, answer) = call(&client, driver.port, Method::POST, "/session", Some(&capabilities))
            .await
            .expect("chromedriver answers");
        assert!(ok, "cannot create a Chromium session: {answer}");
        let value = &answer["value"];
        Browser {
            client,
            session: value["sessionId"].as_str().expect("a session id").to_string(),
            browser_pid: value["capabilities"]["goog:processID"].as_u64(),
            open: true,
            driver,
        }
    }

    /// A session command; fails the test on a WebDriver error. Returns `value`.
    async fn command(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let (ok, mut answer) = call(&self.client, self.driver.port, method.clone(), &path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        assert!(ok, "WebDriver {method} {path}: {answer}");
        answer["value"].take()
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.command(Method::POST, "/url", Some(&json!({ "url": url }))).await;
    }

    /// Runs `script` as a function body in the page and returns what it returns.
    pub async fn execute(&self, script: &str) -> Value {
        self.command(Method::POST, "/execute/sync", Some(&json!({"script": script, "args": []}))).await
    }

    /// The viewport as PNG bytes.
    pub async fn screenshot(&self) -> Vec<u8> {
        let encoded = self.command(Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD.decode(encoded.as_str().expect("base64 text")).expect("base64 PNG")
    }

    /// Browser console entries (`{level, message, source}`) since the last call.
    pub async fn console(&self) -> Vec<Value> {
        let entries = self.command(Method::POST, "/se/log", Some(&json!({"type": "browser"}))).await;
        entries.as_array().cloned().unwrap_or_default()
    }

    /// Closes the session (and so Chromium).
    pub async fn quit(mut self) {
        self.command(Method::DELETE, "", None).await;
        self.open = false;
    }
}

impl Drop for Browser {
    /// A panicking test never reaches `quit`: close the session without async, and
    /// if chromedriver cannot, end the Chromium process it started.
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let closed = delete_blocking(self.driver.port, &format!("/session/{}", self.session));
        if let (false, Some(pid)) = (closed, self.browser_pid) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// One WebDriver request: (2xx?, JSON answer), or why it got no answer.
async fn call(
    client: &Client<HttpConnector, Full<Bytes>>,
    port: u16,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(bool, Value), String> {
    let body = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let req = Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = client.request(req).await.map_err(|e| e.to_string())?;
    let ok = res.status().is_success();
    let bytes = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let answer = serde_json::from_slice(&bytes).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&bytes)))?;
    Ok((ok, answer))
}

/// `DELETE path` on plain std sockets, for use in `Drop`; true on a 2xx.
fn delete_blocking(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.1 2")
}
