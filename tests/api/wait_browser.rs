//! The waiting page in a real browser: headless Chromium opens
//! `/wait/sales/{id}` behind three users in a room that admits one a second
//! and asks for proof of work; the page solves it, shows its place, and once
//! admitted goes to the return URL with an admission that reserves.

use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::{
    queue::solve,
    webdriver::{require_chromium, Browser},
};

const SALE: u64 = 15;

const READ_PAGE: &str = r#"
const text = id => { const e = document.getElementById(id); return e ? e.textContent : ""; };
return { href: location.href, state: text("state"), position: text("position"), ahead: text("ahead"),
         error: text("error") };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_waiting_page_waits_its_turn_then_sends_the_user_on_with_a_valid_admission() {
    require_chromium();
    let app = crate::queue::app().await;
    let back = format!("http://{}/v1/sales/{SALE}", app.addr);
    app.create_sale(
        SALE,
        &["1:100:10"],
        &["--queue", "--admit-per-second", "1", "--pow-difficulty", "30", "--return-url", &back],
    );
    for user in 1..=3u64 {
        let challenge = app.get(&format!("/v1/queue/challenge?sale={SALE}")).await.body;
        let body = json!({ "user_id": user, "altcha": solve(&challenge) });
        assert_eq!(app.post(&format!("/v1/sales/{SALE}/queue"), &body, &[]).await.status, StatusCode::CREATED);
    }

    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/wait/sales/{SALE}?user_id=4", app.addr)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut waited, mut page): (Option<Value>, Value);
    waited = None;
    loop {
        page = browser.execute(READ_PAGE).await;
        let href = page["href"].as_str().unwrap_or_default().to_string();
        if href.starts_with(&back) {
            break;
        }
        assert_eq!(page["error"], "", "the page failed: {page}");
        if waited.is_none() && page["state"].as_str().unwrap_or_default().contains("in line") {
            assert_eq!(page["position"], "4", "behind the three who joined first: {page}");
            let png = browser.screenshot().await;
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
            let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
            std::fs::write(std::path::Path::new(&dir).join("wait.png"), &png).unwrap();
            waited = Some(page.clone());
        }
        assert!(Instant::now() < deadline, "not sent on in 30 s: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(waited.is_some(), "the page showed its place before its turn came");

    let href = page["href"].as_str().unwrap();
    let fragment = href.split_once('#').map(|(_, f)| f).unwrap_or_default();
    let admission = fragment
        .split('&')
        .find_map(|kv| kv.strip_prefix("admission="))
        .map(|a| a.replace("%2E", ".").replace("%2e", "."))
        .unwrap_or_else(|| panic!("no admission in {href}"));
    assert!(fragment.contains("admitted_until="), "{href}");
    let body = json!({ "user_id": 4, "items": [{ "sku": 1, "quantity": 1 }] });
    let reserved = app.post(&format!("/v1/sales/{SALE}/orders"), &body, &[("flashsale-admission", &admission)]).await;
    assert_eq!(reserved.status, StatusCode::CREATED, "the page's admission reserves: {:?}", reserved.body);
    // The return URL here is a JSON route: the browser's favicon request there is not the page's.
    let errors: Vec<Value> = browser
        .console()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" && !e["message"].as_str().unwrap_or_default().contains("/favicon.ico"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.quit().await;
}
