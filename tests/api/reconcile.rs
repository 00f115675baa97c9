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
