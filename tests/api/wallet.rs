//! Wallets through the real listener: charges (limits, Idempotency-Key,
//! signatures), paying orders from the wallet (both or neither, never twice,
//! never also through the gateway), auth, the history in MySQL and reconcile.

use std::{sync::Arc, time::Duration};

use hyper::{Method, StatusCode};
use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::{
    helpers::TestApp,
    requests::{sign_payment, Response},
};

const SECRET: &str = "test-secret-0123456789abcdef";

/// An HS256 bearer token for `user`, as `flashsale token` mints them.
pub fn bearer(user: u64) -> String {
    let claims = json!({"sub": user.to_string(), "exp": get_current_timestamp() + 600});
    let token =
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes()).unwrap()).unwrap();
    format!("Bearer {token}")
}

/// A service with auth on (HS256 with `SECRET`).
pub async fn with_auth() -> TestApp {
    TestApp::spawn_with(|c| c.http.jwt_secret = Some(SECRET.parse().unwrap())).await
}

impl TestApp {
    /// A charge as the gateway sends it: payment_key `gw-USER-KEY`, signed.
    pub async fn charge(&self, user: u64, amount: Value, key: &str) -> Response {
        let body = json!({ "amount": amount, "payment_key": format!("gw-{user}-{key}") });
        self.charge_with(user, &body, &[("idempotency-key", key)]).await
    }

    /// A charge of `body`, signed for the wallet's path as the gateway would.
    pub async fn charge_with(&self, user: u64, body: &Value, headers: &[(&str, &str)]) -> Response {
        let path = format!("/v1/wallets/{user}/charge");
        let bytes = serde_json::to_vec(body).unwrap();
        let signature = sign_payment(&path, &bytes);
        let mut headers = headers.to_vec();
        headers.push(("flashsale-signature", &signature));
        self.try_request_with(Method::POST, &path, Some(bytes), &headers).await.expect("request completes")
    }

    pub async fn pay(&self, sale: u64, order: u64) -> Response {
        self.pay_with(sale, order, &[]).await
    }

    pub async fn pay_with(&self, sale: u64, order: u64, headers: &[(&str, &str)]) -> Response {
        self.post(&format!("/v1/sales/{sale}/orders/{order}/pay"), &json!({"method": "wallet"}), headers).await
    }

    /// GET `path` with an `Authorization` header.
    pub async fn get_as(&self, path: &str, authorization: &str) -> Response {
        self.try_request_with(Method::GET, path, None, &[("authorization", authorization)])
            .await
            .expect("request completes")
    }

    pub async fn wallet(&self, user: u64) -> Response {
        self.get(&format!("/v1/wallets/{user}")).await
    }

    pub async fn balance(&self, user: u64) -> u64 {
        let wallet = self.wallet(user).await;
        assert_eq!(wallet.status, StatusCode::OK, "{}", wallet.body);
        wallet.body["balance"].as_u64().unwrap()
    }

    /// Reserves `n` one-unit orders of SKU 1 of `sale` for `user`; their ids.
    pub async fn reserve_many(&self, sale: u64, user: u64, n: usize) -> Vec<u64> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let order = self.reserve(sale, user, &[(1, 1)]).await;
            assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
            ids.push(order.body["order_id"].as_u64().unwrap());
        }
        ids
    }

    /// (charges minus payments, rows) of the user's history in MySQL.
    pub async fn mysql_history(&self, user: u64) -> (i64, u64) {
        let rows: Vec<(Option<i64>, u64)> = self
            .sql(&format!(
                "SELECT CAST(SUM(IF(kind = 'charge', CAST(amount AS SIGNED), -CAST(amount AS SIGNED))) AS SIGNED), \
                 COUNT(*) FROM wallet_transactions WHERE user_id = {user}"
            ))
            .await;
        (rows[0].0.unwrap_or(0), rows[0].1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_payments_by_a_user_whose_balance_covers_37_pay_exactly_37() {
    let app = Arc::new(TestApp::spawn().await);
    app.create_sale(1, &["1:1000:1000"], &[]);
    let orders = app.reserve_many(1, 7, 100).await;
    assert_eq!(app.charge(7, json!(37_000), "top-up-1").await.status, StatusCode::OK);

    let mut pays = tokio::task::JoinSet::new();
    for order in orders.clone() {
        let app = app.clone();
        pays.spawn(async move { (order, app.pay(1, order).await) });
    }
    let (mut paid, mut refused) = (Vec::new(), Vec::new());
    for (order, res) in pays.join_all().await {
        match res.status {
            StatusCode::OK => {
                assert_eq!(res.body["status"], "paid", "{}", res.body);
                paid.push(order);
            }
            StatusCode::PAYMENT_REQUIRED => {
                assert_eq!(res.body["error"], "insufficient_balance", "{}", res.body);
                assert_eq!(res.body["to_pay"], 1000);
                refused.push(order);
            }
            other => panic!("pay of {order}: {other} {}", res.body),
        }
    }
    assert_eq!((paid.len(), refused.len()), (37, 63));
    assert_eq!(app.balance(7).await, 0);
    for order in &refused {
        let res = app.get(&format!("/v1/sales/1/orders/{order}")).await;
        assert_eq!(res.body["status"], "reserved", "a refused payment leaves the order reserved");
    }
    // The history the sink writes adds up to the balance: one charge, 37 payments.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while app.mysql_history(7).await.1 < 38 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.mysql_history(7).await, (0, 38));
    let paid_in_mysql =
        app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE status = 'paid' AND payment_key = 'wallet'", 37).await;
    assert_eq!(paid_in_mysql, 37);
    let wallets: Vec<(u64, u64)> = app.sql("SELECT balance, version FROM wallets WHERE user_id = 7").await;
    assert_eq!(wallets, vec![(0, 38)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_identical_charges_with_one_key_charge_once() {
    let app = Arc::new(TestApp::spawn().await);
    let mut charges = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let app = app.clone();
        charges.spawn(async move { app.charge(9, json!(5_000), "once").await });
    }
    let answers = charges.join_all().await;
    let mut replayed = 0;
    for res in &answers {
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!((res.body["balance"].as_u64(), res.body["charged"].as_u64()), (Some(5_000), Some(5_000)));
        assert_eq!(res.body["charged_at"], answers[0].body["charged_at"], "every answer is the first one");
        replayed += res.headers.contains_key("idempotent-replayed") as usize;
    }
    assert_eq!(replayed, 49, "one charge, 49 replays");
    assert_eq!(app.balance(9).await, 5_000);

    let reused = app.charge(9, json!(6_000), "once").await;
    assert_eq!(
        (reused.status, reused.body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused"))
    );
    assert_eq!(app.balance(9).await, 5_000);
    assert_eq!(app.wait_for_sql("SELECT COUNT(*) FROM wallet_transactions WHERE user_id = 9", 1).await, 1);
}

#[tokio::test]
async fn charges_outside_the_limits_get_clear_codes_and_change_nothing() {
    let app = TestApp::spawn_with(|c| c.wallet.wallet_max_balance = 20_000).await;
    let code = |res: &Response| (res.status, res.body["error"].as_str().unwrap_or("").to_string());
    let bad = |c: &str| (StatusCode::BAD_REQUEST, c.to_string());

    assert_eq!(code(&app.charge_with(3, &json!({"amount": 5000}), &[]).await), bad("missing_idempotency_key"));
    assert_eq!(code(&app.charge(3, json!(999), "k1").await), bad("invalid_amount"), "below the minimum (1,000)");
    assert_eq!(code(&app.charge(3, json!(-5000), "k1").await), bad("invalid_amount"));
    assert_eq!(code(&app.charge(3, json!(10_000_001), "k1").await), bad("invalid_amount"), "above the maximum charge");
    assert_eq!(code(&app.charge(3, json!("5000"), "k1").await), bad("invalid_field"));
    assert_eq!(code(&app.charge(3, json!(50.5), "k1").await), bad("invalid_field"));
    assert_eq!(code(&app.charge_with(3, &json!({}), &[("idempotency-key", "k1")]).await), bad("missing_field"));
    let path = app.post("/v1/wallets/x/charge", &json!({"amount": 5000}), &[("idempotency-key", "k1")]).await;
    assert_eq!(code(&path), bad("invalid_user_id"));
    assert_eq!(app.wallet(3).await.body, json!({"user_id": 3, "balance": 0, "updated_at": null}));

    assert_eq!(app.charge(3, json!(15_000), "k1").await.status, StatusCode::OK);
    let over = app.charge(3, json!(6_000), "k2").await;
    assert_eq!(code(&over), (StatusCode::UNPROCESSABLE_ENTITY, "balance_limit_exceeded".into()));
    assert_eq!(over.body["left"], 5_000);
    assert_eq!(app.charge(3, json!(5_000), "k3").await.body["balance"], 20_000, "up to the maximum exactly");
    let wallet = app.wallet(3).await.body;
    assert_eq!(wallet["balance"], 20_000);
    assert!(wallet["updated_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{wallet}");

    app.create_sale(1, &["1:1000:10"], &[]);
    let order = app.reserve_many(1, 3, 1).await[0];
    let card = app.post(&format!("/v1/sales/1/orders/{order}/pay"), &json!({"method": "card"}), &[]).await;
    assert_eq!(code(&card), bad("invalid_method"));
    assert_eq!(code(&app.pay(1, 999).await), (StatusCode::NOT_FOUND, "unknown_order".into()));
    let get = app.request(Method::GET, "/v1/wallets/3/charge", None).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_wallet_paid_order_takes_no_gateway_confirm_and_no_second_payment() {
    let app = TestApp::spawn().await;
    app.create_sale(1, &["1:2500:10"], &[]);
    let order = app.reserve_many(1, 5, 1).await[0];
    app.charge(5, json!(10_000), "k").await;

    let paid = app.pay(1, order).await;
    assert_eq!((paid.status, paid.body["status"].as_str()), (StatusCode::OK, Some("paid")), "{}", paid.body);
    assert_eq!(app.balance(5).await, 7_500);

    let confirm = app.confirm(1, order, 2500).await;
    assert_eq!(confirm.status, StatusCode::CONFLICT, "{}", confirm.body);
    assert_eq!(
        (confirm.body["error"].as_str(), confirm.body["payment_key"].as_str()),
        (Some("already_paid"), Some("wallet"))
    );
    let again = app.pay(1, order).await;
    assert_eq!((again.status, again.body["error"].as_str()), (StatusCode::CONFLICT, Some("order_paid")));
    let cancel = app.request(Method::POST, &format!("/v1/sales/1/orders/{order}/cancel"), None).await;
    assert_eq!(cancel.body["error"], "order_paid");
    assert_eq!(app.balance(5).await, 7_500, "nothing taken twice");

    // A gateway key cannot pose as a wallet payment.
    let other = app.reserve_many(1, 5, 1).await[0];
    let posing = app.confirm_with_key(1, other, 2500, "wallet").await;
    assert_eq!((posing.status, posing.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_field")));
    // A gateway-paid order takes no wallet payment.
    assert_eq!(app.confirm(1, other, 2500).await.status, StatusCode::OK);
    let wallet_after_gateway = app.pay(1, other).await;
    assert_eq!(
        (wallet_after_gateway.status, wallet_after_gateway.body["error"].as_str()),
        (StatusCode::CONFLICT, Some("order_paid"))
    );
    assert_eq!(app.balance(5).await, 7_500);
}

#[tokio::test]
async fn a_refused_wallet_payment_leaves_the_order_to_the_gateway_or_the_expiry() {
    let app = TestApp::spawn().await;
    // The hold outlasts the refused payment and the gateway's confirm, on a loaded box too.
    app.create_sale(1, &["1:2500:10"], &["--hold", "5s"]);
    let [pay_later, expire] = app.reserve_many(1, 6, 2).await[..] else { unreachable!() };
    let poor = app.pay(1, pay_later).await;
    assert_eq!((poor.status, poor.body["balance"].as_u64()), (StatusCode::PAYMENT_REQUIRED, Some(0)));
    assert_eq!(app.confirm(1, pay_later, 2500).await.status, StatusCode::OK, "the hold was released");

    assert_eq!(app.pay(1, expire).await.status, StatusCode::PAYMENT_REQUIRED);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = app.get(&format!("/v1/sales/1/orders/{expire}")).await.body["status"].clone();
        if status == "expired" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the expiry never took the order back: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.charge(6, json!(5_000), "k").await;
    let late = app.pay(1, expire).await;
    assert_eq!((late.status, late.body["error"].as_str()), (StatusCode::CONFLICT, Some("order_expired")));
    assert_eq!(app.balance(6).await, 5_000);
}

#[tokio::test]
async fn with_auth_on_a_user_reaches_only_their_own_wallet_and_orders() {
    let app = with_auth().await;
    app.create_sale(1, &["1:1000:10"], &[]);
    let (mine, theirs) = (bearer(7), bearer(8));
    // A charge is the gateway's call: its signature is the credential, no token needed.
    assert_eq!(app.charge(7, json!(5_000), "k").await.status, StatusCode::OK);

    let forbidden = app.get_as("/v1/wallets/7", &theirs).await;
    assert_eq!((forbidden.status, forbidden.body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    assert_eq!(app.get_as("/v1/wallets/7", &mine).await.body["balance"], 5_000);
    assert_eq!(app.get_as("/v1/wallets/7/transactions", &theirs).await.status, StatusCode::FORBIDDEN);

    let order = app
        .post("/v1/sales/1/orders", &json!({"items": [{"sku": 1, "quantity": 1}]}), &[("authorization", &mine)])
        .await;
    let order = order.body["order_id"].as_u64().unwrap();
    // Another user's order is as unknown to them as a missing one.
    let other = app.pay_with(1, order, &[("authorization", &theirs)]).await;
    assert_eq!((other.status, other.body["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_order")));
    assert_eq!(app.pay_with(1, order, &[]).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.pay_with(1, order, &[("authorization", &mine)]).await.status, StatusCode::OK);
    assert_eq!(app.get_as("/v1/wallets/7", &mine).await.body["balance"], 4_000);
}

#[tokio::test]
async fn the_history_pages_newest_first_and_reconcile_and_the_cli_agree_with_redis() {
    let app = TestApp::spawn().await;
    app.create_sale(1, &["1:1500:10"], &[]);
    let order = app.reserve_many(1, 11, 1).await[0];
    for (n, amount) in [(1, 2_000), (2, 3_000)] {
        app.charge(11, json!(amount), &format!("k{n}")).await;
    }
    assert_eq!(app.pay(1, order).await.status, StatusCode::OK);
    assert_eq!(app.wait_for_sql("SELECT COUNT(*) FROM wallet_transactions WHERE user_id = 11", 3).await, 3);

    let page = app.get("/v1/wallets/11/transactions?limit=2").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let kinds: Vec<(&str, u64, u64)> = page.body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["kind"].as_str().unwrap(), t["amount"].as_u64().unwrap(), t["balance_after"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, vec![("payment", 1_500, 3_500), ("charge", 3_000, 5_000)]);
    assert_eq!(page.body["transactions"][0]["order_id"], order);
    let next = page.body["next"].as_str().expect("a next page").to_string();
    let rest = app.get(&format!("/v1/wallets/11/transactions?limit=2&before={next}")).await;
    assert_eq!(rest.body["transactions"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["transactions"][0]["amount"], 2_000);
    assert_eq!(rest.body["next"], Value::Null);
    for bad in ["limit=0", "limit=101", "before=x"] {
        let res = app.get(&format!("/v1/wallets/11/transactions?{bad}")).await;
        assert_eq!((res.status, res.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{bad}");
    }

    let show = app.cli(&["wallet", "show", "--user", "11"]).success();
    assert!(show.stdout.contains("balance 3500"), "{}", show.stdout);
    app.wait_for_sql("SELECT COUNT(*) FROM orders WHERE status = 'paid'", 1).await;
    app.cli(&["reconcile"]).success();
    // Drift: MySQL told of a balance Redis does not have.
    let mut conn = app.mysql.get_conn().await.unwrap();
    mysql_async::prelude::Queryable::query_drop(&mut conn, "UPDATE wallets SET balance = 1 WHERE user_id = 11")
        .await
        .unwrap();
    let drift = app.cli(&["reconcile"]);
    assert_ne!(drift.code, Some(0));
    assert!(drift.stdout.contains("wallet 11"), "{}", drift.stdout);
}

/// (member, score) of wallet `user`'s shard's `aged` set, by redis-cli.
fn aged_records(app: &TestApp, user: u64) -> Vec<(String, u64)> {
    let keys = flashsale::keys::Keys::new(app.config.redis.key_prefix.clone());
    let aged = keys.wallets(user % flashsale::keys::WALLET_SHARDS).aged;
    let out = std::process::Command::new("redis-cli")
        .args(["-u", &app.config.redis.redis_url, "ZRANGE", &aged, "0", "-1", "WITHSCORES"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines.chunks(2).map(|p| (p[0].to_string(), p[1].parse().unwrap())).collect()
}

#[tokio::test]
async fn a_refused_wallet_payment_is_remembered_about_its_hold_not_for_days() {
    let app = TestApp::spawn().await;
    app.create_sale(1, &["1:2500:10"], &[]);
    let [refused, paid] = app.reserve_many(1, 12, 2).await[..] else { unreachable!() };
    assert_eq!(app.pay(1, refused).await.status, StatusCode::PAYMENT_REQUIRED);
    app.charge(12, json!(2_500), "k").await;
    assert_eq!(app.pay(1, paid).await.status, StatusCode::OK);

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let keep = app.config.wallet.wallet_keep_secs * 1000;
    let forgotten_in = |member: &str| {
        let records = aged_records(&app, 12);
        let (_, written) = records.iter().find(|(m, _)| m.contains(member)).unwrap_or_else(|| panic!("{records:?}"));
        (written + keep).saturating_sub(now)
    };
    let hold = app.config.wallet.wallet_hold_ms;
    let void = forgotten_in(&format!(":1:{refused}:"));
    assert!(void <= hold + flashsale::wallet::VOID_MARGIN_MS, "the refusal is kept {void} ms");
    assert!(forgotten_in(&format!(":1:{paid}:")) > keep - 60_000, "a debit is kept for its replays");
}
