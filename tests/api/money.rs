//! The money paths as an attacker tries them, through the real HTTP API: a
//! user's token mints nothing, a signature pays only the order or wallet it
//! names, and a gateway payment (its `payment_key`) pays once.

use hyper::{Method, StatusCode};
use serde_json::json;

use crate::{
    helpers::TestApp,
    requests::{sign_payment, Response},
    wallet::{bearer, with_auth},
};

fn error(res: &Response) -> (StatusCode, &str) {
    (res.status, res.body["error"].as_str().unwrap_or(""))
}

impl TestApp {
    /// POST exactly `body` to `path` with these headers.
    async fn post_raw(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Response {
        self.try_request_with(Method::POST, path, Some(body.to_vec()), headers).await.expect("request completes")
    }

    /// A one-unit order of `sku` of `sale` for `user`: its id.
    async fn order_of(&self, sale: u64, user: u64, sku: u64) -> u64 {
        let order = self.reserve(sale, user, &[(sku, 1)]).await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
        order.body["order_id"].as_u64().unwrap()
    }

    async fn order_status(&self, sale: u64, order: u64) -> String {
        self.get(&format!("/v1/sales/{sale}/orders/{order}")).await.body["status"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn a_users_own_token_cannot_charge_money_into_a_wallet() {
    let app = with_auth().await;
    app.create_sale(1, &["1:19900:10"], &[]);
    let token = bearer(5);
    let body = br#"{"amount": 10000000, "payment_key": "made-up"}"#;
    let minted =
        app.post_raw("/v1/wallets/5/charge", body, &[("authorization", &token), ("idempotency-key", "mint-1")]).await;
    assert_eq!(error(&minted), (StatusCode::UNAUTHORIZED, "invalid_signature"), "{}", minted.body);
    let no_key = app
        .post_raw(
            "/v1/wallets/5/charge",
            br#"{"amount": 10000000}"#,
            &[("authorization", &token), ("idempotency-key", "mint-2")],
        )
        .await;
    assert_eq!(error(&no_key), (StatusCode::UNAUTHORIZED, "invalid_signature"));
    assert_eq!(app.get_as("/v1/wallets/5", &token).await.body["balance"], 0);

    // So a wallet payment of a real order finds nothing to take.
    let order = app
        .post("/v1/sales/1/orders", &json!({"items": [{"sku": 1, "quantity": 1}]}), &[("authorization", &token)])
        .await
        .body["order_id"]
        .as_u64()
        .unwrap();
    let pay = app.pay_with(1, order, &[("authorization", &token)]).await;
    assert_eq!(error(&pay), (StatusCode::PAYMENT_REQUIRED, "insufficient_balance"), "{}", pay.body);
}

#[tokio::test]
async fn one_gateway_payment_pays_one_order_whatever_the_sale() {
    let app = TestApp::spawn().await;
    app.create_sale(1, &["1:19900:10"], &[]);
    app.create_sale(2, &["1:19900:10"], &[]);
    let (a, b) = (app.order_of(1, 6, 1).await, app.order_of(1, 7, 1).await);
    let c = app.order_of(2, 8, 1).await;
    let body = br#"{"payment_key": "gw-pay-777", "amount": 19900}"#;
    let path_a = format!("/v1/sales/1/orders/{a}/confirm");
    let signature = sign_payment(&path_a, body);
    let headers = [("flashsale-signature", signature.as_str())];
    let paid = app.post_raw(&path_a, body, &headers).await;
    assert_eq!((paid.status, paid.body["status"].as_str()), (StatusCode::OK, Some("paid")), "{}", paid.body);

    // The very call, sent to another order of the same price: the signature names A.
    let moved = app.post_raw(&format!("/v1/sales/1/orders/{b}/confirm"), body, &headers).await;
    assert_eq!(error(&moved), (StatusCode::UNAUTHORIZED, "invalid_signature"), "{}", moved.body);
    // Signed properly for B, and for C in another sale: the payment is A's.
    for (sale, order) in [(1, b), (2, c)] {
        let path = format!("/v1/sales/{sale}/orders/{order}/confirm");
        let reused = app.post_raw(&path, body, &[("flashsale-signature", &sign_payment(&path, body))]).await;
        assert_eq!(error(&reused), (StatusCode::CONFLICT, "payment_key_used"), "{}", reused.body);
        let text = reused.body.to_string();
        assert!(!text.contains(&a.to_string()) && reused.body.get("order_id").is_none(), "names A: {text}");
        assert_eq!(app.order_status(sale, order).await, "reserved");
    }
    // The gateway's retry of A's call is still answered as the first time.
    let retry = app.post_raw(&path_a, body, &headers).await;
    assert_eq!((retry.status, retry.body["status"].as_str()), (StatusCode::OK, Some("paid")), "{}", retry.body);
    assert_eq!(retry.body["updated_at"], paid.body["updated_at"]);

    // MySQL holds the key once, for A.
    let owners: Vec<Vec<u8>> = app.sql("SELECT paid_for FROM payment_keys WHERE payment_key = 'gw-pay-777'").await;
    assert_eq!(owners, vec![format!("order:1:{a}").into_bytes()]);
}

#[tokio::test]
async fn a_signed_charge_credits_one_wallet_once() {
    let app = TestApp::spawn().await;
    let body = br#"{"amount": 5000, "payment_key": "gw-charge-1"}"#;
    let path = "/v1/wallets/5/charge";
    let signature = sign_payment(path, body);
    let charge = |path: &'static str, key: &'static str, signature: String| {
        let app = &app;
        async move { app.post_raw(path, body, &[("flashsale-signature", &signature), ("idempotency-key", key)]).await }
    };
    let first = charge(path, "k1", signature.clone()).await;
    assert_eq!((first.status, first.body["balance"].as_u64()), (StatusCode::OK, Some(5000)), "{}", first.body);
    let retry = charge(path, "k1", signature.clone()).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));

    // Another payment under the same Idempotency-Key is no replay of the first.
    let other_payment = br#"{"amount": 5000, "payment_key": "gw-charge-2"}"#;
    let mixed = app
        .post_raw(
            path,
            other_payment,
            &[("flashsale-signature", &sign_payment(path, other_payment)), ("idempotency-key", "k1")],
        )
        .await;
    assert_eq!(error(&mixed), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"), "{}", mixed.body);

    // Replayed onto another wallet: the signature names wallet 5.
    let elsewhere = charge("/v1/wallets/6/charge", "k1", signature.clone()).await;
    assert_eq!(error(&elsewhere), (StatusCode::UNAUTHORIZED, "invalid_signature"));
    // Under a fresh Idempotency-Key, re-signed even: the payment was used.
    let again = charge(path, "k2", signature.clone()).await;
    assert_eq!(error(&again), (StatusCode::CONFLICT, "payment_key_used"), "{}", again.body);
    let resigned = charge(path, "k3", sign_payment(path, body)).await;
    assert_eq!(error(&resigned), (StatusCode::CONFLICT, "payment_key_used"));
    let other_wallet = charge("/v1/wallets/6/charge", "k4", sign_payment("/v1/wallets/6/charge", body)).await;
    assert_eq!(error(&other_wallet), (StatusCode::CONFLICT, "payment_key_used"));
    assert_eq!((app.balance(5).await, app.balance(6).await), (5000, 0));

    // A confirm's signed call moved onto a charge: refused.
    app.create_sale(1, &["1:5000:10"], &[]);
    let order = app.order_of(1, 5, 1).await;
    let confirm_body = br#"{"payment_key": "gw-order-1", "amount": 5000}"#;
    let confirm_signature = sign_payment(&format!("/v1/sales/1/orders/{order}/confirm"), confirm_body);
    let moved = app
        .post_raw(path, confirm_body, &[("flashsale-signature", &confirm_signature), ("idempotency-key", "k5")])
        .await;
    assert_eq!(error(&moved), (StatusCode::UNAUTHORIZED, "invalid_signature"));
    // An order's payment cannot fund a charge either.
    assert_eq!(app.confirm_with_key(1, order, 5000, "gw-order-1").await.status, StatusCode::OK);
    let resigned = sign_payment(path, confirm_body);
    let reuse =
        app.post_raw(path, confirm_body, &[("flashsale-signature", &resigned), ("idempotency-key", "k6")]).await;
    assert_eq!(error(&reuse), (StatusCode::CONFLICT, "payment_key_used"), "{}", reuse.body);
    assert_eq!(app.balance(5).await, 5000);

    // Bodies refuse fields they do not know.
    let extra = br#"{"amount": 5000, "payment_key": "gw-charge-9", "bonus": 1}"#;
    let unknown = app
        .post_raw(path, extra, &[("flashsale-signature", &sign_payment(path, extra)), ("idempotency-key", "k8")])
        .await;
    assert_eq!(error(&unknown), (StatusCode::BAD_REQUEST, "unknown_field"), "{}", unknown.body);
}

#[tokio::test]
async fn charges_are_refused_without_a_gateway_secret_unless_explicitly_unsigned() {
    let closed = TestApp::spawn_with(|c| c.http.payment_secret = None).await;
    let body = br#"{"amount": 5000, "payment_key": "gw-1"}"#;
    let refused = closed.post_raw("/v1/wallets/5/charge", body, &[("idempotency-key", "k")]).await;
    assert_eq!(error(&refused), (StatusCode::FORBIDDEN, "payments_not_configured"));
    assert_eq!(closed.balance(5).await, 0);
    drop(closed);

    let demo = TestApp::spawn_with(|c| {
        c.http.payment_secret = None;
        c.http.payments_unsigned = true;
    })
    .await;
    let charged = demo.post_raw("/v1/wallets/5/charge", body, &[("idempotency-key", "k")]).await;
    assert_eq!((charged.status, charged.body["balance"].as_u64()), (StatusCode::OK, Some(5000)), "{}", charged.body);
}
