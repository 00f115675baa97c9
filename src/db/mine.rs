//! MySQL reads of what one user holds: their coupons and their orders across
//! sales, newest first (the "mine" views).

use std::collections::BTreeMap;

use mysql_async::{prelude::*, Pool, Value};

use super::epoch_ms as ms;
use crate::order::{Order, OrderItem, OrderStatus};

/// One coupon the user holds, as MySQL recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponRow {
    pub coupon_id: u64,
    /// None while only an order event told of it (the issue event not yet in).
    pub issued_at: Option<u64>,
    /// (sale, order) holding the coupon.
    pub used: Option<(u64, u64)>,
}

pub async fn coupons(pool: &Pool, user_id: u64) -> Result<Vec<CouponRow>, mysql_async::Error> {
    let sql = format!(
        "SELECT coupon_id, IF(event_id = '', NULL, {}), used_sale_id, used_order_id FROM coupon_issues \
         WHERE user_id = ? ORDER BY coupon_id",
        ms("issued_at")
    );
    type Row = (u64, Option<u64>, Option<u64>, Option<u64>);
    let rows: Vec<Row> = pool.get_conn().await?.exec(sql, (user_id,)).await?;
    Ok(rows
        .into_iter()
        .map(|(coupon_id, issued_at, sale, order)| CouponRow { coupon_id, issued_at, used: sale.zip(order) })
        .collect())
}

/// Up to `limit` of the user's orders before `before` ((order id, sale id),
/// exclusive), newest first: by order id (ids follow the clock), then sale.
pub async fn orders(
    pool: &Pool,
    user_id: u64,
    limit: u64,
    before: Option<(u64, u64)>,
) -> Result<Vec<Order>, mysql_async::Error> {
    let (order, sale) = before.unwrap_or((u64::MAX, u64::MAX));
    let sql = format!(
        "SELECT sale_id, order_id, status, total, discount, to_pay, coupon_id, payment_key, version, {}, {}, {} \
         FROM orders WHERE user_id = ? AND (order_id < ? OR (order_id = ? AND sale_id < ?)) \
         ORDER BY order_id DESC, sale_id DESC LIMIT ?",
        ms("created_at"),
        ms("expires_at"),
        ms("updated_at")
    );
    type Row = (u64, u64, String, u64, u64, u64, Option<u64>, Option<String>, u32, u64, u64, u64);
    let mut conn = pool.get_conn().await?;
    let rows: Vec<Row> = conn.exec(sql, (user_id, order, order, sale, limit)).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<String> = rows.iter().map(|_| "(?, ?)".to_string()).collect();
    let params: Vec<Value> = rows.iter().flat_map(|r| [Value::from(r.0), Value::from(r.1)]).collect();
    let lines: Vec<(u64, u64, u64, u64, u64)> = conn
        .exec(
            format!(
                "SELECT sale_id, order_id, sku, quantity, price FROM order_items WHERE (sale_id, order_id) IN ({}) \
                 ORDER BY sku",
                pairs.join(",")
            ),
            params,
        )
        .await?;
    let mut items: BTreeMap<(u64, u64), Vec<OrderItem>> = BTreeMap::new();
    for (sale_id, order_id, sku, quantity, price) in lines {
        items.entry((sale_id, order_id)).or_default().push(OrderItem { sku, quantity, price });
    }
    Ok(rows
        .into_iter()
        .filter_map(|(sale_id, order_id, status, total, discount, to_pay, coupon_id, payment_key, version, c, e, u)| {
            Some(Order {
                order_id,
                sale_id,
                user_id,
                status: status.parse::<OrderStatus>().ok()?,
                items: items.remove(&(sale_id, order_id)).unwrap_or_default(),
                total,
                discount,
                to_pay,
                coupon_id,
                coupon_seq: None,
                payment_key,
                created_at: c,
                expires_at: e,
                updated_at: u,
                version,
            })
        })
        .collect())
}

/// The user's orders in `sales` that MySQL has as holding stock (reserved or
/// paid; a closed one never holds again): (sale, order, units). Bounded by
/// what the user holds, not by how many orders they ever made.
pub async fn order_units(pool: &Pool, user_id: u64, sales: &[u64]) -> Result<Vec<(u64, u64, u64)>, mysql_async::Error> {
    if sales.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT o.sale_id, o.order_id, CAST(COALESCE(SUM(i.quantity), 0) AS UNSIGNED) FROM orders o \
         LEFT JOIN order_items i ON i.sale_id = o.sale_id AND i.order_id = o.order_id \
         WHERE o.user_id = ? AND o.status IN ('reserved', 'paid') AND o.sale_id IN ({}) \
         GROUP BY o.sale_id, o.order_id",
        vec!["?"; sales.len()].join(",")
    );
    let mut params: Vec<Value> = vec![user_id.into()];
    params.extend(sales.iter().map(|&s| Value::from(s)));
    pool.get_conn().await?.exec(sql, params).await
}
