//! Queries the CLI and the readiness probe run against MySQL. The sink's own
//! writes live in `sink::writer`.

use mysql_async::{prelude::*, Pool};

use crate::{
    keys::Room,
    scripts::{QueueSpec, SaleSpec},
    time::mysql_datetime,
};

pub async fn ping(pool: &Pool) -> Result<(), mysql_async::Error> {
    pool.get_conn().await?.ping().await
}

/// Writes a campaign row; `replace` overwrites an existing one and deletes its
/// issued rows. Returns false when it exists and `replace` is off.
#[allow(clippy::too_many_arguments)]
pub async fn put_campaign(
    pool: &Pool,
    coupon_id: u64,
    total: u64,
    starts_at: u64,
    ends_at: u64,
    discount: u64,
    buckets: u32,
    replace: bool,
) -> Result<bool, mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    let ends_at = (ends_at > 0).then(|| mysql_datetime(ends_at));
    let params = (coupon_id, total, mysql_datetime(starts_at), ends_at, discount, buckets);
    if !replace {
        conn.exec_drop(
            "INSERT IGNORE INTO coupon_campaigns (coupon_id, total, starts_at, ends_at, discount, buckets) \
             VALUES (?, ?, ?, ?, ?, ?)",
            params,
        )
        .await?;
        return Ok(conn.affected_rows() == 1);
    }
    let mut tx = conn.start_transaction(Default::default()).await?;
    tx.exec_drop(
        "REPLACE INTO coupon_campaigns (coupon_id, total, starts_at, ends_at, discount, buckets) \
         VALUES (?, ?, ?, ?, ?, ?)",
        params,
    )
    .await?;
    tx.exec_drop("DELETE FROM coupon_issues WHERE coupon_id = ?", (coupon_id,)).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn campaign_exists(pool: &Pool, coupon_id: u64) -> Result<bool, mysql_async::Error> {
    let found: Option<u64> = pool
        .get_conn()
        .await?
        .exec_first("SELECT coupon_id FROM coupon_campaigns WHERE coupon_id = ?", (coupon_id,))
        .await?;
    Ok(found.is_some())
}

/// Rows in `coupon_issues` for one campaign.
pub async fn issued_count(pool: &Pool, coupon_id: u64) -> Result<u64, mysql_async::Error> {
    let n: Option<u64> = pool
        .get_conn()
        .await?
        .exec_first("SELECT COUNT(*) FROM coupon_issues WHERE coupon_id = ? AND event_id <> ''", (coupon_id,))
        .await?;
    Ok(n.unwrap_or(0))
}

/// (partition, next offset) the sink stored for `topic`.
pub async fn sink_offsets(pool: &Pool, topic: &str) -> Result<Vec<(i32, i64)>, mysql_async::Error> {
    pool.get_conn()
        .await?
        .exec("SELECT partition_id, next_offset FROM sink_offsets WHERE topic = ? ORDER BY partition_id", (topic,))
        .await
}

/// Writes a sale and its SKUs; `replace` overwrites an existing one and
/// deletes its orders. Returns false when it exists and `replace` is off.
pub async fn put_sale(pool: &Pool, sale_id: u64, spec: &SaleSpec, replace: bool) -> Result<bool, mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    let mut tx = conn.start_transaction(Default::default()).await?;
    let ends_at = (spec.ends_at > 0).then(|| mysql_datetime(spec.ends_at));
    let verb = if replace { "REPLACE" } else { "INSERT IGNORE" };
    tx.exec_drop(
        format!(
            "{verb} INTO sales (sale_id, starts_at, ends_at, per_user_limit, hold_ms, buckets) VALUES (?, ?, ?, ?, ?, ?)"
        ),
        (sale_id, mysql_datetime(spec.starts_at), ends_at, spec.per_user_limit, spec.hold_ms, spec.buckets.max(1)),
    )
    .await?;
    if !replace && tx.affected_rows() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    // Only a replaced sale has rows to delete: a new one's DELETEs would take
    // gap locks that deadlock with another new sale's inserts (sales created
    // side by side failed with ER_LOCK_DEADLOCK).
    if replace {
        for table in ["sale_skus", "order_items", "orders"] {
            tx.exec_drop(format!("DELETE FROM {table} WHERE sale_id = ?"), (sale_id,)).await?;
        }
    }
    tx.exec_batch(
        "INSERT INTO sale_skus (sale_id, sku, price, stock) VALUES (?, ?, ?, ?)",
        spec.skus.iter().map(|s| (sale_id, s.sku, s.price, s.stock)),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn sale_exists(pool: &Pool, sale_id: u64) -> Result<bool, mysql_async::Error> {
    let found: Option<u64> =
        pool.get_conn().await?.exec_first("SELECT sale_id FROM sales WHERE sale_id = ?", (sale_id,)).await?;
    Ok(found.is_some())
}

/// Records what a SKU was supplied with in all, after an ops top-up.
pub async fn set_sku_stock(pool: &Pool, sale_id: u64, sku: u64, stock: u64) -> Result<(), mysql_async::Error> {
    pool.get_conn()
        .await?
        .exec_drop("UPDATE sale_skus SET stock = ? WHERE sale_id = ? AND sku = ?", (stock, sale_id, sku))
        .await
}

/// Records a top-up of a sale with buckets (see `sales::moves`): supplied
/// grows by `added` (the whole is not read in one step across buckets).
pub async fn add_sku_stock(pool: &Pool, sale_id: u64, sku: u64, added: u64) -> Result<(), mysql_async::Error> {
    pool.get_conn()
        .await?
        .exec_drop("UPDATE sale_skus SET stock = stock + ? WHERE sale_id = ? AND sku = ?", (added, sale_id, sku))
        .await
}

/// Users MySQL holds an issued coupon for (placeholder rows excluded).
pub async fn coupon_users(pool: &Pool, coupon_id: u64) -> Result<Vec<u64>, mysql_async::Error> {
    pool.get_conn()
        .await?
        .exec("SELECT user_id FROM coupon_issues WHERE coupon_id = ? AND event_id <> ''", (coupon_id,))
        .await
}

/// Writes issue rows Redis has and MySQL lacks (issue time unknown: now).
pub async fn repair_coupon_issues(pool: &Pool, coupon_id: u64, users: &[u64]) -> Result<(), mysql_async::Error> {
    let now = mysql_datetime(crate::time::now_ms());
    pool.get_conn()
        .await?
        .exec_batch(
            "INSERT INTO coupon_issues (coupon_id, user_id, event_id, issued_at) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE issued_at = IF(event_id = '', VALUES(issued_at), issued_at), \
             event_id = IF(event_id = '', VALUES(event_id), event_id)",
            users.iter().map(|u| (coupon_id, *u, format!("repair-c{coupon_id}-u{u}"), now.clone())),
        )
        .await
}

/// (order id, status, version) of every order MySQL holds for a sale.
pub async fn order_states(pool: &Pool, sale_id: u64) -> Result<Vec<OrderState>, mysql_async::Error> {
    let rows: Vec<(u64, String, u32, u64, u64)> = pool
        .get_conn()
        .await?
        .exec(
            format!(
                "SELECT order_id, status, version, user_id, {} FROM orders WHERE sale_id = ? ORDER BY order_id",
                super::epoch_ms("created_at")
            ),
            (sale_id,),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(order_id, status, version, user_id, created_at)| OrderState {
            order_id,
            status,
            version,
            user_id,
            created_at,
        })
        .collect())
}

/// An order row as reconcile compares it: its state and its identity.
pub struct OrderState {
    pub order_id: u64,
    pub status: String,
    pub version: u32,
    pub user_id: u64,
    /// Milliseconds since the epoch.
    pub created_at: u64,
}

/// (event id, order id, user id) of the order events the sink refused for a sale.
pub async fn order_conflicts(pool: &Pool, sale_id: u64) -> Result<Vec<(String, u64, u64)>, mysql_async::Error> {
    pool.get_conn()
        .await?
        .exec(
            "SELECT event_id, order_id, user_id FROM order_conflicts WHERE sale_id = ? ORDER BY detected_at, event_id",
            (sale_id,),
        )
        .await
}

/// (sku, units) held by reserved and paid orders of a sale, per MySQL.
pub async fn held_units(pool: &Pool, sale_id: u64) -> Result<Vec<(u64, u64)>, mysql_async::Error> {
    pool.get_conn()
        .await?
        .exec(
            "SELECT i.sku, CAST(SUM(i.quantity) AS UNSIGNED) FROM order_items i \
             JOIN orders o ON o.sale_id = i.sale_id AND o.order_id = i.order_id \
             WHERE i.sale_id = ? AND o.status IN ('reserved', 'paid') GROUP BY i.sku ORDER BY i.sku",
            (sale_id,),
        )
        .await
}

/// Order rows MySQL holds for a sale.
pub async fn order_count(pool: &Pool, sale_id: u64) -> Result<u64, mysql_async::Error> {
    let n: Option<u64> =
        pool.get_conn().await?.exec_first("SELECT COUNT(*) FROM orders WHERE sale_id = ?", (sale_id,)).await?;
    Ok(n.unwrap_or(0))
}

/// Sets `topic`/`partition`'s stored next offset to `to` and forgets its
/// recorded stall, in one transaction; returns the offset stored before.
/// The caller holds the partition's fence (see `sink::fence`).
pub async fn reset_sink_offset(
    conn: &mut mysql_async::Conn,
    topic: &str,
    partition: i32,
    to: i64,
) -> Result<Option<i64>, mysql_async::Error> {
    let mut tx = conn.start_transaction(Default::default()).await?;
    let before: Option<i64> = tx
        .exec_first(
            "SELECT next_offset FROM sink_offsets WHERE topic = ? AND partition_id = ? FOR UPDATE",
            (topic, partition),
        )
        .await?;
    tx.exec_drop(
        "INSERT INTO sink_offsets (topic, partition_id, next_offset) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset)",
        (topic, partition, to),
    )
    .await?;
    tx.exec_drop("DELETE FROM sink_stalls WHERE topic = ? AND partition_id = ?", (topic, partition)).await?;
    tx.commit().await?;
    Ok(before)
}

/// A partition's stall as the sink recorded it (see `sink::stall`).
pub struct RecordedStall {
    pub partition: i32,
    /// `past_end` or `failing`.
    pub reason: String,
    pub detail: String,
    /// Milliseconds since the epoch.
    pub since: u64,
}

/// The stalls the sink recorded for `topic`'s partitions.
pub async fn sink_stalls(pool: &Pool, topic: &str) -> Result<Vec<RecordedStall>, mysql_async::Error> {
    let rows: Vec<(i32, String, String, u64)> = pool
        .get_conn()
        .await?
        .exec(
            format!(
                "SELECT partition_id, reason, detail, {} FROM sink_stalls WHERE topic = ? ORDER BY partition_id",
                super::epoch_ms("since")
            ),
            (topic,),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(partition, reason, detail, since)| RecordedStall { partition, reason, detail, since })
        .collect())
}

/// Those of `ids` (orders of `sale_id`) MySQL holds as released: cancelled
/// or expired, a state that never changes again.
pub async fn released_orders(pool: &Pool, sale_id: u64, ids: &[u64]) -> Result<Vec<u64>, mysql_async::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT order_id FROM orders WHERE sale_id = ? AND status IN ('cancelled', 'expired') AND order_id IN ({})",
        vec!["?"; ids.len()].join(",")
    );
    let mut params: Vec<mysql_async::Value> = vec![sale_id.into()];
    params.extend(ids.iter().map(|&id| mysql_async::Value::from(id)));
    pool.get_conn().await?.exec(sql, params).await
}

/// Records `room`'s waiting-room settings, or that it has none.
pub async fn put_room(pool: &Pool, room: Room, spec: Option<&QueueSpec>) -> Result<(), mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    match spec {
        None => conn.exec_drop("DELETE FROM waiting_rooms WHERE room = ?", (room.member(),)).await,
        Some(s) => {
            conn.exec_drop(
                "REPLACE INTO waiting_rooms (room, admit_per_second, admission_ttl_ms, opens_before_ms, poll_grace_ms, \
                 pow_difficulty, return_url) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    room.member(),
                    s.admit_per_second,
                    s.admission_ttl_ms,
                    s.opens_before_ms,
                    s.poll_grace_ms,
                    s.pow_difficulty,
                    s.return_url.as_deref(),
                ),
            )
            .await
        }
    }
}

/// `room`'s waiting-room settings, if it has a room.
pub async fn room(pool: &Pool, room: Room) -> Result<Option<QueueSpec>, mysql_async::Error> {
    type Row = (u32, u64, u64, u64, u32, Option<String>);
    let row: Option<Row> = pool
        .get_conn()
        .await?
        .exec_first(
            "SELECT admit_per_second, admission_ttl_ms, opens_before_ms, poll_grace_ms, pow_difficulty, return_url \
             FROM waiting_rooms WHERE room = ?",
            (room.member(),),
        )
        .await?;
    Ok(row.map(|(admit_per_second, admission_ttl_ms, opens_before_ms, poll_grace_ms, pow_difficulty, return_url)| {
        QueueSpec { admit_per_second, admission_ttl_ms, opens_before_ms, poll_grace_ms, pow_difficulty, return_url }
    }))
}
