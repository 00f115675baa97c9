//! Arbitrary raw HTTP/1.1 requests — bytes written to a socket, not an HTTP
//! client's percent-encoding — against the live service: every request gets
//! a complete answer, every error answer is our JSON, and nothing panics
//! (`flashsale_panics_total` does not move).
//!
//! Non-ASCII reaches the router: the `http` crate hyper parses with accepts
//! valid UTF-8 in the path and the query, and header values may carry bytes
//! 0x80-0xFF (`HeaderValue::to_str` then fails). That is how a handler panic
//! on `?window=3é` was found.
//!
//! What hyper answers by itself, before the router sees a request: a bare
//! status line (`content-length: 0`, no content type, `connection: close`),
//! then it closes the connection:
//! - 400: a request line or head it cannot parse — a method that is not a
//!   token, spaces or control bytes or invalid UTF-8 in the target, a header
//!   name or value with forbidden bytes, a Content-Length that is not one
//!   number, Transfer-Encoding not ending in `chunked`, an unknown version;
//! - 431: a head larger than `max_header_bytes`, or more than 100 headers
//!   (the 414 for a target above 64 KiB is out of reach: the head limit
//!   comes first).
//!
//! No answer at all, by design, and so never generated here: a head that never
//! completes (closed after `header_read_timeout`), the HTTP/2 preface
//! `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (closed), and a client that half-closes
//! its side mid-request (hyper closes).

mod strategies;
mod wire;

use std::{cell::RefCell, collections::BTreeMap};

use flashsale::config::ServeConfig;
use proptest::{
    collection::vec,
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};

use self::{
    strategies::request,
    wire::{Answer, Conn, NoAnswer, RawRequest},
};
use crate::{
    helpers::TestApp,
    metrics::{sample, scrape},
};

const SECRET: &str = "raw-http-test-secret-0123456789";
/// A body that waits for bytes that never come is answered 503 after this.
const REQUEST_TIMEOUT_MS: u64 = 400;
/// About 1,300 requests, 2-3 s; `PROPTEST_CASES=4096` for a deeper run (~20 s).
const CASES: u32 = 512;

/// Auth on, so `Authorization` garbage reaches the token check; a short
/// request timeout, so a body shorter than its Content-Length is answered
/// quickly. A coupon and a sale exist, so some requests get past the lookups.
async fn spawn() -> TestApp {
    let app = TestApp::spawn_with(|c: &mut ServeConfig| {
        c.http.jwt_secret = Some(SECRET.parse().unwrap());
        c.http.request_timeout_ms = REQUEST_TIMEOUT_MS;
    })
    .await;
    app.create_coupon(1, 100_000, &[]);
    app.create_sale(1, &["1:100:100000", "2:250:100000"], &[]);
    app
}

/// Panics in this process so far. The counter is process-wide and the other
/// tests of this binary run alongside, but none of them panics the server
/// (a test failing by a panic of its own would move it too): a move is a
/// finding.
async fn panics(app: &TestApp) -> f64 {
    let scrape = scrape(app).await;
    assert!(scrape.contains("\nflashsale_panics_total "), "flashsale_panics_total is exported");
    sample(&scrape, "flashsale_panics_total")
}

#[test]
fn arbitrary_raw_requests_always_get_an_answer_and_never_panic_the_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut app = runtime.block_on(spawn());
    let before = runtime.block_on(panics(&app));
    let tally = RefCell::new(Tally::default());
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(CASES);
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 2048, ..Config::default() };
    let result = TestRunner::new(config).run(&vec(request(), 1..5), |case| {
        runtime.block_on(async {
            let at_start = panics(&app).await;
            let mut seen = Tally::default();
            let outcome = exchange_all(&app, &case, &mut seen).await;
            tally.borrow_mut().add(seen);
            outcome?;
            let now = panics(&app).await;
            prop_assert_eq!(now, at_start, "the server panicked on {:?}", case);
            Ok(())
        })
    });
    let after = runtime.block_on(panics(&app));
    runtime.block_on(app.stop());
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(after, before, "flashsale_panics_total moved over the run");
    // The run reached every layer: the router's JSON errors, handlers that
    // succeeded, and hyper's own parse errors.
    let tally = tally.into_inner();
    eprintln!("{tally:?}");
    assert!(tally.ours_error * 4 >= tally.requests, "{tally:?}");
    assert!(tally.success > 0 && tally.from_hyper > 0 && tally.reused > 0, "{tally:?}");
}

/// What a run sent and got, to show it reached every layer.
#[derive(Debug, Default)]
struct Tally {
    requests: usize,
    /// Sent on a connection an earlier request of the case had used.
    reused: usize,
    success: usize,
    ours_error: usize,
    from_hyper: usize,
    statuses: BTreeMap<u16, usize>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.reused += other.reused;
        self.success += other.success;
        self.ours_error += other.ours_error;
        self.from_hyper += other.from_hyper;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
    }
}

#[tokio::test]
async fn a_ranking_window_ending_in_a_multibyte_character_is_a_400_not_a_panic() {
    let app = spawn().await;
    let before = panics(&app).await;
    for query in ["window=3\u{e9}", "window=\u{e9}", "window=3d&window=1\u{1F600}", "limit=5\u{e9}"] {
        let req = RawRequest::get(&format!("/v1/rankings/products?{query}"));
        let answer = Conn::open(app.addr).await.unwrap().exchange(&req).await.unwrap();
        judge(&req, &answer).unwrap();
        assert_eq!(answer.status, 400, "{req:?}");
        assert_eq!(answer.json()["error"], "invalid_query", "{req:?}");
    }
    for query in ["coupon=1\u{e9}", "sale=\u{e9}", "\u{e9}=1"] {
        let req = RawRequest::get(&format!("/v1/dashboard/stats?{query}"));
        let answer = Conn::open(app.addr).await.unwrap().exchange(&req).await.unwrap();
        assert_eq!((answer.status, &answer.json()["error"]), (400, &"invalid_query".into()), "{req:?}");
    }
    assert_eq!(panics(&app).await, before);
}

#[tokio::test]
async fn an_id_with_a_leading_plus_is_a_400_in_a_path_a_query_or_a_json_body() {
    let app = TestApp::spawn().await;
    app.create_coupon(5, 10, &[]);
    app.create_sale(5, &["1:100:10"], &[]);
    let send = |req: RawRequest| async move { Conn::open(app.addr).await.unwrap().exchange(&req).await.unwrap() };
    // The same ids without the sign are found: the 400 is the sign's.
    for (path, code) in [
        ("/v1/sales/+5", "invalid_sale_id"),
        ("/v1/coupons/+5", "invalid_coupon_id"),
        ("/v1/sales/5/orders/+1", "invalid_order_id"),
        ("/v1/dashboard/stats?coupon=+5", "invalid_query"),
        ("/v1/dashboard/stats?sale=%2B5", "invalid_query"),
        ("/v1/rankings/products?limit=+5", "invalid_query"),
    ] {
        let answer = send(RawRequest::get(path)).await;
        assert_eq!((answer.status, &answer.json()["error"]), (400, &code.into()), "{path}");
        let unsigned = path.replace("%2B", "").replace('+', "");
        assert_ne!(send(RawRequest::get(&unsigned)).await.status, 400, "{unsigned}");
    }
    // JSON has no `+5` (RFC 8259): the body is not JSON, and nothing is issued.
    let post = |body: &str| RawRequest {
        method: b"POST".to_vec(),
        target: b"/v1/coupons/5/issue".to_vec(),
        headers: vec![(b"host".to_vec(), b"t".to_vec()), (b"content-type".to_vec(), b"application/json".to_vec())],
        framing: wire::Framing::Length,
        body: body.as_bytes().to_vec(),
        ..RawRequest::get("/")
    };
    let answer = send(post(r#"{"user_id": +5}"#)).await;
    assert_eq!((answer.status, &answer.json()["error"]), (400, &"malformed_json".into()));
    assert_eq!(app.coupon(5).await.body["remaining"], 10);
    assert_eq!(send(post(r#"{"user_id": 5}"#)).await.status, 201);
}

/// Sends a case's requests in turn, on one connection while each request's
/// framing and its answer allow another one after it.
async fn exchange_all(app: &TestApp, case: &[RawRequest], tally: &mut Tally) -> Result<(), TestCaseError> {
    let mut open: Option<Conn> = None;
    for req in case {
        tally.requests += 1;
        let fail = |e: NoAnswer| TestCaseError::fail(format!("no answer to {req:?}: {e}"));
        let reused = open.is_some();
        let mut conn = match open.take() {
            Some(conn) => conn,
            None => Conn::open(app.addr).await.map_err(fail)?,
        };
        let answer = match conn.exchange(req).await {
            // An idle keep-alive connection the server closed as the request
            // went out: a client sends it again on a new one (RFC 9112 9.3.1).
            Err(NoAnswer { before_any_byte: true, .. }) if reused => {
                conn = Conn::open(app.addr).await.map_err(fail)?;
                conn.exchange(req).await
            }
            other => other,
        }
        .map_err(fail)?;
        judge(req, &answer)?;
        tally.reused += usize::from(reused);
        *tally.statuses.entry(answer.status).or_default() += 1;
        match answer.status {
            _ if from_hyper(&answer) => tally.from_hyper += 1,
            200..=299 => tally.success += 1,
            _ => tally.ours_error += 1,
        }
        if req.reusable() && !answer.closes() {
            open = Some(conn);
        }
    }
    Ok(())
}

/// hyper's own answer to a request it could not parse: no body, no type.
fn from_hyper(answer: &Answer) -> bool {
    matches!(answer.status, 400 | 414 | 431) && answer.header("content-type").is_none() && answer.body.is_empty()
}

fn judge(req: &RawRequest, answer: &Answer) -> Result<(), TestCaseError> {
    if from_hyper(answer) {
        prop_assert!(answer.closes(), "hyper's {} keeps the connection open: {:?}", answer.status, req);
        return Ok(());
    }
    let content_type = answer.header("content-type").unwrap_or("");
    match answer.status {
        200..=299 => {
            prop_assert!(req.may_succeed(), "{} for {:?}", answer.status, req);
            if content_type == "application/json" {
                prop_assert!(answer.json().is_object(), "a 2xx body that is not JSON for {:?}", req);
            }
        }
        400..=599 => {
            prop_assert_eq!(content_type, "application/json", "a {} that is not ours for {:?}", answer.status, req);
            if !req.is_head() {
                let body = answer.json();
                prop_assert!(
                    body["error"].is_string() && body["message"].is_string(),
                    "a {} without error and message for {:?}: {}",
                    answer.status,
                    req,
                    String::from_utf8_lossy(&answer.body)
                );
            }
        }
        other => prop_assert!(false, "status {} for {:?}", other, req),
    }
    Ok(())
}
