//! MySQL reads that describe a sale as the sink recorded it: its window and
//! SKUs, its orders with their lines, and order counts by status; and a
//! campaign with its holders and uses. What `stock load` and `coupon load`
//! rebuild Redis from and what `status` compares Redis with.
//!
//! Times come back as milliseconds since the epoch. `TIMESTAMPDIFF` from the
//! epoch rather than `UNIX_TIMESTAMP`: it ignores the session time zone (the
//! columns hold UTC) and, unlike `UNIX_TIMESTAMP` on MariaDB before 11.5 and
//! MySQL before 8.0.28, does not answer NULL after 2038.

use std::collections::BTreeMap;

use mysql_async::{prelude::*, Pool};

use crate::{
    order::{Order, OrderItem, OrderStatus},
    scripts::{CampaignSpec, SaleSpec, SkuSpec},
};

// `col` as milliseconds since the epoch (UTC).
use super::epoch_ms as ms;

/// The sale's window, limits and SKUs (stock = supplied in all); None when
/// MySQL has no such sale.
pub async fn sale(pool: &Pool, sale_id: u64) -> Result<Option<SaleSpec>, mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    let row: Option<(u64, Option<u64>, u64, u64, u32)> = conn
        .exec_first(
            format!(
                "SELECT {}, {}, per_user_limit, hold_ms, buckets FROM sales WHERE sale_id = ?",
                ms("starts_at"),
                ms("ends_at")
            ),
            (sale_id,),
        )
        .await?;
    let Some((starts_at, ends_at, per_user_limit, hold_ms, buckets)) = row else {
        return Ok(None);
    };
    let skus = conn
        .exec_map(
            "SELECT sku, price, stock FROM sale_skus WHERE sale_id = ? ORDER BY sku",
            (sale_id,),
            |(sku, price, stock)| SkuSpec { sku, price, stock },
        )
        .await?;
    let buckets = buckets.clamp(1, crate::buckets::MAX_BUCKETS);
    Ok(Some(SaleSpec { starts_at, ends_at: ends_at.unwrap_or(0), per_user_limit, hold_ms, skus, buckets }))
}

/// Every order of the sale with its lines, by order id.
pub async fn orders(pool: &Pool, sale_id: u64) -> anyhow::Result<Vec<Order>> {
    load(pool, sale_id, None).await
}

/// One order of the sale with its lines, if MySQL has it.
pub async fn order(pool: &Pool, sale_id: u64, order_id: u64) -> anyhow::Result<Option<Order>> {
    Ok(load(pool, sale_id, Some(order_id)).await?.pop())
}

/// The sale's orders, or only `only`.
async fn load(pool: &Pool, sale_id: u64, only: Option<u64>) -> anyhow::Result<Vec<Order>> {
    let mut conn = pool.get_conn().await?;
    let mut items: BTreeMap<u64, Vec<OrderItem>> = BTreeMap::new();
    // A statement per case: one order is a primary-key lookup.
    let (filter, params): (&str, Vec<mysql_async::Value>) = match only {
        Some(order_id) => ("AND order_id = ?", vec![sale_id.into(), order_id.into()]),
        None => ("", vec![sale_id.into()]),
    };
    let lines: Vec<(u64, u64, u64, u64)> = conn
        .exec(
            format!(
                "SELECT order_id, sku, quantity, price FROM order_items WHERE sale_id = ? {filter} \
                 ORDER BY order_id, sku"
            ),
            params.clone(),
        )
        .await?;
    for (order_id, sku, quantity, price) in lines {
        items.entry(order_id).or_default().push(OrderItem { sku, quantity, price });
    }
    // The use MySQL recorded for each order still holding its coupon.
    let seqs: Vec<(u64, u64)> = conn
        .exec(
            format!(
                "SELECT o.order_id, c.used_version FROM orders o JOIN coupon_issues c \
                 ON c.coupon_id = o.coupon_id AND c.user_id = o.user_id \
                 AND c.used_sale_id = o.sale_id AND c.used_order_id = o.order_id \
                 WHERE o.sale_id = ? {}",
                filter.replace("order_id", "o.order_id")
            ),
            params.clone(),
        )
        .await?;
    let seqs: BTreeMap<u64, u64> = seqs.into_iter().collect();
    type Row = (u64, u64, String, u64, u64, u64, Option<u64>, Option<String>, u32, u64, u64, u64);
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT order_id, user_id, status, total, discount, to_pay, coupon_id, payment_key, version, {}, {}, {} \
                 FROM orders WHERE sale_id = ? {filter} ORDER BY order_id",
                ms("created_at"),
                ms("expires_at"),
                ms("updated_at")
            ),
            params,
        )
        .await?;
    rows.into_iter()
        .map(|(order_id, user_id, status, total, discount, to_pay, coupon_id, payment_key, version, c, e, u)| {
            let status: OrderStatus = status.parse().map_err(|e| anyhow::anyhow!("order {order_id}: {e}"))?;
            // Lines are written with the order's first event; an order without
            // them cannot be priced or released, so it is not guessed at.
            let items = items.remove(&order_id).filter(|i| !i.is_empty());
            let items = items.ok_or_else(|| anyhow::anyhow!("order {order_id} has no lines in order_items"))?;
            Ok(Order {
                order_id,
                sale_id,
                user_id,
                status,
                items,
                total,
                discount,
                to_pay,
                coupon_id,
                // The use MySQL recorded for the order holding its coupon: on
                // one node a release takes a fresh sequence number from the
                // coupon; on a cluster it follows this one (see `sales::holds`).
                coupon_seq: seqs.get(&order_id).copied(),
                payment_key,
                created_at: c,
                expires_at: e,
                updated_at: u,
                version,
            })
        })
        .collect()
}

/// Order rows by status (statuses with none left out).
pub async fn order_counts(pool: &Pool, sale_id: u64) -> Result<Vec<(String, u64)>, mysql_async::Error> {
    pool.get_conn()
        .await?
        .exec("SELECT status, COUNT(*) FROM orders WHERE sale_id = ? GROUP BY status ORDER BY status", (sale_id,))
        .await
}

/// A campaign as MySQL recorded it: what `coupon load` rebuilds Redis from.
pub struct RestoredCampaign {
    pub spec: CampaignSpec,
    /// Every user MySQL holds the coupon for (an order's use of it counts:
    /// only a holder can use it).
    pub users: Vec<u64>,
    /// (user, `sale:order`): the reserved or paid order that holds the user's coupon.
    pub used: Vec<(u64, String)>,
    /// The highest use version MySQL saw: new uses must count on from it.
    pub use_seq: u64,
    /// The buckets it was created with (see `buckets`).
    pub buckets: u32,
}

/// The campaign `coupon_id` with its holders and uses; None when MySQL has no such campaign.
pub async fn campaign(pool: &Pool, coupon_id: u64) -> Result<Option<RestoredCampaign>, mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    let row: Option<(u64, u64, Option<u64>, u64, u32)> = conn
        .exec_first(
            format!(
                "SELECT total, {}, {}, discount, buckets FROM coupon_campaigns WHERE coupon_id = ?",
                ms("starts_at"),
                ms("ends_at")
            ),
            (coupon_id,),
        )
        .await?;
    let Some((total, starts_at, ends_at, discount, buckets)) = row else {
        return Ok(None);
    };
    let rows: Vec<(u64, Option<u64>, Option<u64>, u64)> = conn
        .exec(
            "SELECT user_id, used_sale_id, used_order_id, used_version FROM coupon_issues \
             WHERE coupon_id = ? ORDER BY user_id",
            (coupon_id,),
        )
        .await?;
    let use_seq = rows.iter().map(|r| r.3).max().unwrap_or(0);
    let used =
        rows.iter().filter_map(|&(user, sale, order, _)| Some((user, format!("{}:{}", sale?, order?)))).collect();
    let spec = CampaignSpec { total, starts_at, ends_at: ends_at.unwrap_or(0), discount };
    let users = rows.into_iter().map(|r| r.0).collect();
    Ok(Some(RestoredCampaign { spec, users, used, use_seq, buckets }))
}
