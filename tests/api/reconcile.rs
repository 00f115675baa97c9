//! `flashsale reconcile`: Redis against MySQL, and `--repair`.

use hyper::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn reconcile_finds_what_mysql_lost_and_repair_writes_it_back() {
    let app = TestApp::spawn().await;
    app.create_coupon(70, 10, &[]);
    app.create_sale(71, &["1:100:10", "2:300:10"], &[]);
    for user in 1..=4 {
        assert_eq!(app.issue(70, user).await.status, StatusCode::CREATED);
    }
    let paid = app.reserve(71, 1, &[(1, 2), (2, 1)]).await.body;
    let paid_id = paid["order_id"].as_u64().unwrap();
    assert_eq!(app.confirm(71, paid_id, 500).await.status, StatusCode::OK);
    let cancelled = app.reserve(71, 2, &[(2, 3)]).await.body["order_id"].as_u64().unwrap();
    assert_eq!(app.cancel(71, cancelled).await.status, StatusCode::OK);
    let reserved = app.reserve(71, 3, &[(1, 1)]).await.body["order_id"].as_u64().unwrap();

    assert_eq!(app.wait_for_rows(70, 4).await.len(), 4);
    // Each order in its last state (a paid order's row is 'reserved' until its second event lands).
    let settled = format!(
        "SELECT COUNT(*) FROM orders WHERE sale_id = 71 AND ((order_id = {paid_id} AND status = 'paid') \
         OR (order_id = {cancelled} AND status = 'cancelled') OR (order_id = {reserved} AND status = 'reserved'))"
    );
    assert_eq!(app.wait_for_sql(&settled, 3).await, 3);
    let agree = app.cli(&["reconcile"]).success();
    assert!(agree.stdout.contains("agree"), "{}", agree.stdout);

    // MySQL loses a coupon row, an order and an order's last state change.
    let mut conn = app.mysql.get_conn().await.unwrap();
    use mysql_async::prelude::Queryable;
    conn.query_drop("DELETE FROM coupon_issues WHERE coupon_id = 70 AND user_id = 2").await.unwrap();
    conn.query_drop(format!("DELETE FROM orders WHERE sale_id = 71 AND order_id = {reserved}")).await.unwrap();
    conn.query_drop(format!("DELETE FROM order_items WHERE sale_id = 71 AND order_id = {reserved}")).await.unwrap();
    conn.query_drop(format!(
        "UPDATE orders SET status = 'reserved', version = 1 WHERE sale_id = 71 AND order_id = {paid_id}"
    ))
    .await
    .unwrap();

    let drift = app.cli(&["reconcile"]);
    assert_ne!(drift.code, Some(0), "drift exits non-zero");
    assert!(drift.stdout.contains("user 2: issued in Redis, missing in MySQL"), "{}", drift.stdout);
    assert!(drift.stdout.contains(&format!("order {reserved}: missing in MySQL")), "{}", drift.stdout);
    assert!(drift.stdout.contains(&format!("order {paid_id}: MySQL has version 1")), "{}", drift.stdout);
    assert!(drift.stderr.contains("3 difference(s)"), "{}", drift.stderr);

    let only_sale = app.cli(&["reconcile", "--sale", "71", "--repair"]).success();
    assert!(only_sale.stdout.contains("agree"), "{}", only_sale.stdout);
    assert_ne!(app.cli(&["reconcile", "--coupon", "70"]).code, Some(0), "the coupon still drifts");
    app.cli(&["reconcile", "--repair"]).success();
    app.cli(&["reconcile"]).success();

    let status: Vec<(String, u32)> =
        app.sql(&format!("SELECT status, version FROM orders WHERE sale_id = 71 AND order_id = {paid_id}")).await;
    assert_eq!(status, vec![("paid".to_string(), 2)]);
    assert_eq!(app.mysql_users(70).await.len(), 4);
}

/// Wallet events lost on their way to MySQL (as when the broker's topics
/// come back empty): reconcile names the wallet, `--repair` brings the row to
/// Redis's balance and writes one explicit entry for the history's gap, and
/// the wallet's history shows it.
#[tokio::test]
async fn repair_restores_a_wallet_mysql_lost_with_an_explicit_entry() {
    let app = TestApp::spawn().await;
    for (amount, key) in [(5_000, "w-1"), (7_000, "w-2")] {
        let charged = app.charge(5, serde_json::json!(amount), key).await;
        assert_eq!(charged.status, StatusCode::OK, "{}", charged.body);
    }
    let written = "SELECT COUNT(*) FROM wallets WHERE user_id = 5 AND version = 2";
    assert_eq!(app.wait_for_sql(written, 1).await, 1);
    // The events are gone from MySQL, as if the sink had never had them.
    let _: Vec<u64> = app.sql("DELETE FROM wallet_transactions WHERE user_id = 5").await;
    let _: Vec<u64> = app.sql("DELETE FROM wallets WHERE user_id = 5").await;

    let found = app.cli(&["reconcile"]);
    assert_ne!(found.code, Some(0));
    assert!(
        found.stdout.contains("wallet 5: balance 12000 (version 2) in Redis, missing in MySQL"),
        "{}",
        found.stdout
    );
    let repaired = app.cli(&["reconcile", "--repair"]);
    assert!(repaired.stdout.contains("wallet 5:"), "{}", repaired.stdout);
    let agree = app.cli(&["reconcile"]).success();
    assert!(agree.stdout.contains("agree"), "{}", agree.stdout);
    // Again: the same repair writes nothing new.
    app.cli(&["reconcile", "--repair"]).success();

    let row: Vec<(u64, u64)> = app.sql("SELECT balance, version FROM wallets WHERE user_id = 5").await;
    assert_eq!(row, vec![(12_000, 2)]);
    let history: Vec<(String, u64, u64, u64)> =
        app.sql("SELECT kind, amount, balance_after, version FROM wallet_transactions WHERE user_id = 5").await;
    assert_eq!(history, vec![("repair_credit".to_string(), 12_000, 12_000, 2)]);
    assert_eq!(app.balance(5).await, 12_000);
    let wallet = app.get("/v1/wallets/5/transactions").await;
    assert_eq!(wallet.status, StatusCode::OK, "{}", wallet.body);
    let kinds: Vec<&str> =
        wallet.body["transactions"].as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["repair_credit"], "{}", wallet.body);
}
