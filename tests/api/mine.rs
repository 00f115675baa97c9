//! The "mine" views through the real listener: a user's coupons and orders,
//! newest first across sales, never missing one the user just got, only
//! one's own with auth on.

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    helpers::TestApp,
    wallet::{bearer, with_auth},
};

fn ids(orders: &Value) -> Vec<u64> {
    orders["orders"].as_array().unwrap().iter().map(|o| o["order_id"].as_u64().unwrap()).collect()
}

/// (order id, sale id) of a page, in its order.
fn keys(orders: &Value) -> Vec<(u64, u64)> {
    let list = orders["orders"].as_array().unwrap();
    list.iter().map(|o| (o["order_id"].as_u64().unwrap(), o["sale_id"].as_u64().unwrap())).collect()
}

/// Newest first as documented: by order id (ids follow the clock), then sale id
/// (two sales' orders of one millisecond may share an id).
fn newest_first(mut orders: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    orders.sort_unstable_by(|a, b| b.cmp(a));
    orders
}

#[tokio::test]
async fn coupons_and_orders_just_got_are_listed_at_once_newest_first_across_sales() {
    let app = TestApp::spawn().await;
    app.create_coupon(1, 10, &[]);
    app.create_coupon(2, 10, &[]);
    app.create_sale(1, &["1:1000:10"], &[]);
    app.create_sale(2, &["1:500:10"], &[]);
    assert_eq!(app.issue(1, 7).await.status, StatusCode::CREATED);
    assert_eq!(app.issue(2, 8).await.status, StatusCode::CREATED);
    let with_coupon = app
        .post("/v1/sales/1/orders", &json!({"user_id": 7, "items": [{"sku": 1, "quantity": 1}], "coupon_id": 1}), &[])
        .await;
    let first = with_coupon.body["order_id"].as_u64().unwrap();
    let second = app.reserve(2, 7, &[(1, 2)]).await.body["order_id"].as_u64().unwrap();
    let third = app.reserve(1, 7, &[(1, 1)]).await.body["order_id"].as_u64().unwrap();
    app.reserve(1, 8, &[(1, 1)]).await;

    // Asked right away: nothing the user just got is missing.
    let coupons = app.get("/v1/users/7/coupons").await;
    assert_eq!(coupons.status, StatusCode::OK, "{}", coupons.body);
    let list = coupons.body["coupons"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", coupons.body);
    assert_eq!(list[0]["coupon_id"], 1);
    assert_eq!(list[0]["used_order"], json!({"sale_id": 1, "order_id": first}));
    let orders = app.get("/v1/users/7/orders").await;
    assert_eq!(orders.status, StatusCode::OK, "{}", orders.body);
    let expected = newest_first(vec![(first, 1), (second, 2), (third, 1)]);
    assert_eq!(keys(&orders.body), expected);
    let of_sale_2 = orders.body["orders"].as_array().unwrap().iter().find(|o| o["sale_id"] == 2).unwrap();
    assert_eq!(of_sale_2["items"], json!([{"sku": 1, "quantity": 2, "price": 500}]));
    assert_eq!(orders.body["next"], Value::Null);

    // A change in Redis shows at once, and pages follow the cursor.
    app.request(Method::POST, &format!("/v1/sales/1/orders/{third}/cancel"), None).await;
    let page = app.get("/v1/users/7/orders?limit=2").await;
    assert_eq!(keys(&page.body), expected[..2]);
    let cancelled =
        page.body["orders"].as_array().unwrap().iter().find(|o| o["order_id"] == third && o["sale_id"] == 1);
    assert_eq!(cancelled.unwrap()["status"], "cancelled");
    let next = page.body["next"].as_str().expect("a next page").to_string();
    let rest = app.get(&format!("/v1/users/7/orders?limit=2&before={next}")).await;
    assert_eq!((keys(&rest.body), rest.body["next"].clone()), (expected[2..].to_vec(), Value::Null));

    // Once MySQL has everything, the record says the same.
    app.wait_for_sql("SELECT COUNT(*) FROM coupon_issues WHERE user_id = 7 AND event_id <> ''", 1).await;
    let coupons = app.get("/v1/users/7/coupons").await;
    assert!(coupons.body["coupons"][0]["issued_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", coupons.body);
    assert_eq!(ids(&app.get("/v1/users/8/orders").await.body).len(), 1);
    for bad in ["limit=0", "before=12", "before=a-b"] {
        let res = app.get(&format!("/v1/users/7/orders?{bad}")).await;
        assert_eq!((res.status, res.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{bad}");
    }
    assert_eq!(app.get("/v1/users/x/orders").await.body["error"], "invalid_user_id");
}

#[tokio::test]
async fn with_the_record_behind_a_new_order_is_never_left_out_the_view_says_it_cannot_answer() {
    let app = TestApp::spawn_with(|c| c.run_sink = false).await;
    app.create_coupon(1, 10, &[]);
    app.create_sale(1, &["1:1000:10"], &[]);
    assert_eq!(app.issue(1, 7).await.status, StatusCode::CREATED);
    app.reserve(1, 7, &[(1, 1)]).await;

    let coupons = app.get("/v1/users/7/coupons").await;
    assert_eq!(coupons.body["coupons"], json!([{"coupon_id": 1, "issued_at": null, "used_order": null}]));
    let started = std::time::Instant::now();
    let orders = app.get("/v1/users/7/orders").await;
    assert_eq!((orders.status, orders.body["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")));
    assert!(started.elapsed() >= flashsale::mine::CATCH_UP, "it waited for the record first");
    assert_eq!(app.get("/v1/users/8/orders").await.body["orders"], json!([]), "a user with nothing gets an empty list");
}

#[tokio::test]
async fn with_auth_on_a_user_sees_only_their_own() {
    let app = with_auth().await;
    for path in ["/v1/users/7/coupons", "/v1/users/7/orders"] {
        let theirs = app.get_as(path, &bearer(8)).await;
        assert_eq!(
            (theirs.status, theirs.body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{path}"
        );
        assert_eq!(app.get(path).await.status, StatusCode::UNAUTHORIZED, "{path} without a token");
        let mine = app.get_as(path, &bearer(7)).await;
        assert_eq!(mine.status, StatusCode::OK, "{path}: {}", mine.body);
    }
}

#[tokio::test]
async fn the_largest_user_id_is_served_like_any_other() {
    let app = TestApp::spawn().await;
    app.create_coupon(1, 10, &[]);
    app.create_sale(1, &["1:1000:10"], &[]);
    let user = u64::MAX;
    assert_eq!(app.issue(1, user).await.status, StatusCode::CREATED);
    let coupons = app.get(&format!("/v1/users/{user}/coupons")).await;
    assert_eq!(
        (coupons.status, coupons.body["coupons"][0]["coupon_id"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{}",
        coupons.body
    );
    for path in
        [format!("/v1/users/{user}/orders"), format!("/v1/wallets/{user}"), format!("/v1/wallets/{user}/transactions")]
    {
        let res = app.get(&path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.body);
    }
    assert_eq!(app.charge(user, json!(5_000), "k").await.body["balance"], 5_000);
}
