//! Payment callbacks through the real HTTP API: only a call signed with the
//! gateway's secret marks an order paid, an unsigned caller learns nothing,
//! and one order takes one payment.

use hyper::StatusCode;

use crate::{
    helpers::{TestApp, PAYMENT_SECRET},
    requests::sign_payment,
};

/// A fresh sale 1 (SKU 10 at 2,500) and one reserved order of user 100: its id.
async fn reserved_order(app: &TestApp) -> u64 {
    app.create_sale(1, &["10:2500:5"], &[]);
    let order = app.reserve(1, 100, &[(10, 1)]).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    order.body["order_id"].as_u64().unwrap()
}

async fn status_of(app: &TestApp, order: u64) -> String {
    app.get(&format!("/v1/sales/1/orders/{order}")).await.body["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn confirm_without_a_valid_signature_is_401_and_reveals_no_amount() {
    let app = TestApp::spawn().await;
    let order = reserved_order(&app).await;
    let body = br#"{"payment_key":"x","amount":0}"#.to_vec();
    let path = format!("/v1/sales/1/orders/{order}/confirm");
    let target = flashsale::signature::Target::post(&path);
    let good_for_other_body = sign_payment(&path, br#"{"payment_key":"x","amount":2500}"#);
    let (_, v1) = good_for_other_body.split_once(",v1=").unwrap();
    let stale = flashsale::signature::Signer::new(&PAYMENT_SECRET.parse().unwrap()).sign(1_000_000, &target, &body);
    let foreign = flashsale::signature::Signer::new(&"not-the-gateways-secret".parse().unwrap()).sign(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        &target,
        &body,
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let attempts: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no header", vec![]),
        ("garbage", vec![("flashsale-signature", "garbage".into())]),
        ("another body's signature", vec![("flashsale-signature", good_for_other_body.clone())]),
        ("another body's v1 with a fresh t", vec![("flashsale-signature", format!("t={now},v1={v1}"))]),
        ("stale", vec![("flashsale-signature", stale)]),
        ("another secret", vec![("flashsale-signature", foreign)]),
    ];
    for (what, headers) in attempts {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = app.confirm_raw(1, order, body.clone(), &headers).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}: {}", answer.body);
        assert_eq!(answer.body["error"], "invalid_signature", "{what}");
        assert!(!answer.body.to_string().contains("2500"), "{what}: the answer reveals the amount: {}", answer.body);
    }
    // Order ids count up from 1: an unsigned sweep finds nothing either.
    for id in 1..5 {
        let answer = app.confirm_raw(1, id, body.clone(), &[]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(status_of(&app, order).await, "reserved", "nothing was paid");

    let signed = app.confirm(1, order, 2500).await;
    assert_eq!((signed.status, signed.body["status"].as_str()), (StatusCode::OK, Some("paid")), "{}", signed.body);
}

#[tokio::test]
async fn a_paid_order_takes_no_second_payment() {
    let app = TestApp::spawn().await;
    let order = reserved_order(&app).await;
    let first = app.confirm_with_key(1, order, 2500, "pay-A").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);

    let replay = app.confirm_with_key(1, order, 2500, "pay-A").await;
    assert_eq!((replay.status, replay.body["status"].as_str()), (StatusCode::OK, Some("paid")), "same payment replays");
    assert_eq!(replay.body["updated_at"], first.body["updated_at"], "a replay changes nothing");

    let second = app.confirm_with_key(1, order, 2500, "pay-B").await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert_eq!(second.body["error"], "already_paid");
    assert_eq!(second.body["payment_key"], "pay-A", "the gateway learns which payment holds the order");

    let other_amount = app.confirm_with_key(1, order, 1, "pay-A").await;
    assert_eq!(
        (other_amount.status, other_amount.body["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_paid"))
    );

    // MySQL holds the first payment, and only it.
    app.wait_for_sql(&format!("SELECT COUNT(*) FROM orders WHERE order_id = {order} AND status = 'paid'"), 1).await;
    let keys: Vec<String> = app.sql(&format!("SELECT payment_key FROM orders WHERE order_id = {order}")).await;
    assert_eq!(keys, vec!["pay-A".to_string()]);
}

#[tokio::test]
async fn without_a_payment_secret_confirm_is_403_unless_explicitly_unsigned() {
    let app = TestApp::spawn_with(|c| c.http.payment_secret = None).await;
    let order = reserved_order(&app).await;
    let body = br#"{"payment_key":"pay-1","amount":2500}"#.to_vec();
    let signature = sign_payment(&format!("/v1/sales/1/orders/{order}/confirm"), &body);
    let refused = app.confirm_raw(1, order, body.clone(), &[("flashsale-signature", &signature)]).await;
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("payments_not_configured"))
    );
    assert_eq!(status_of(&app, order).await, "reserved");
    drop(app);

    let demo = TestApp::spawn_with(|c| {
        c.http.payment_secret = None;
        c.http.payments_unsigned = true;
    })
    .await;
    let order = reserved_order(&demo).await;
    let paid = demo.confirm_raw(1, order, body, &[]).await;
    assert_eq!((paid.status, paid.body["status"].as_str()), (StatusCode::OK, Some("paid")), "{}", paid.body);
}

#[tokio::test]
async fn the_cli_signs_a_callback_the_service_accepts() {
    let app = TestApp::spawn().await;
    let order = reserved_order(&app).await;
    let body = r#"{"payment_key":"pay-cli","amount":2500}"#;
    let path = format!("/v1/sales/1/orders/{order}/confirm");
    let out = app.cli(&["payment", "sign", "--secret", PAYMENT_SECRET, "--path", &path, "--body", body]).success();
    let line = out.stdout.trim();
    let value = line.strip_prefix("Flashsale-Signature: ").unwrap_or_else(|| panic!("a ready header, got {line}"));
    let paid = app.confirm_raw(1, order, body.as_bytes().to_vec(), &[("flashsale-signature", value)]).await;
    assert_eq!((paid.status, paid.body["status"].as_str()), (StatusCode::OK, Some("paid")), "{}", paid.body);
}
