//! Strings reach MySQL as they were sent, 4-byte UTF-8 (emoji) included:
//! the schema and every connection use utf8mb4, even on a server (or a
//! database made earlier) whose default is latin1.

use hyper::StatusCode;
use mysql_async::prelude::*;

use crate::helpers::{mysql_server_url, unique, TestApp};

#[tokio::test]
async fn a_payment_key_with_emoji_reaches_mysql_intact_even_from_a_database_made_latin1() {
    // A database as an older server default would have made it.
    let server = mysql_server_url();
    let name = unique("fs_latin1_");
    let admin = mysql_async::Pool::new(server.as_str());
    admin
        .get_conn()
        .await
        .unwrap()
        .query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET latin1 COLLATE latin1_swedish_ci"))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    let app = TestApp::spawn_with(|c| c.mysql.mysql_url = format!("{server}/{name}")).await;

    let tables: Vec<(String, String)> = app
        .sql(&format!(
            "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{name}' \
             AND TABLE_NAME <> 'schema_migrations'"
        ))
        .await;
    assert!(tables.len() >= 7, "{tables:?}");
    for (table, collation) in &tables {
        assert_eq!(collation, "utf8mb4_unicode_ci", "table {table}");
    }

    app.create_sale(1, &["10:2500:5"], &[]);
    let order = app.reserve(1, 100, &[(10, 1)]).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let order = order.body["order_id"].as_u64().unwrap();
    let key = "pay-🎉-😀-支払い-ключ";
    let paid = app.confirm_with_key(1, order, 2500, key).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);

    let paid_row = format!("SELECT COUNT(*) FROM orders WHERE sale_id = 1 AND order_id = {order} AND status = 'paid'");
    assert_eq!(app.wait_for_sql(&paid_row, 1).await, 1, "the sink wrote the paid order");
    let stored: Vec<(String, String)> = app
        .sql(&format!("SELECT payment_key, HEX(payment_key) FROM orders WHERE sale_id = 1 AND order_id = {order}"))
        .await;
    assert_eq!(stored[0].0, key);
    assert_eq!(stored[0].1, key.bytes().map(|b| format!("{b:02X}")).collect::<String>(), "the same bytes");
}
