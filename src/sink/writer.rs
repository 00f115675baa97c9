//! The sink's MySQL writes: one transaction per fetched batch holding the
//! rows and the partition's next offset, guarded so two sinks on one
//! partition cannot both commit the same range.

use mysql_async::{prelude::*, Pool, TxOpts};

use super::rows;
use crate::events::Event;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Another sink moved this partition on; continue from `stored`.
    #[error("partition offset moved to {stored} under us")]
    Moved { stored: i64 },
    #[error(transparent)]
    Mysql(#[from] mysql_async::Error),
}

/// Makes sure the partition has an offset row and returns its next offset.
pub async fn start_offset(pool: &Pool, topic: &str, partition: i32) -> Result<i64, mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    conn.exec_drop(
        "INSERT IGNORE INTO sink_offsets (topic, partition_id, next_offset) VALUES (?, ?, 0)",
        (topic, partition),
    )
    .await?;
    let next: Option<i64> = conn
        .exec_first("SELECT next_offset FROM sink_offsets WHERE topic = ? AND partition_id = ?", (topic, partition))
        .await?;
    Ok(next.unwrap_or(0))
}

/// Writes `events` (read from offsets `from..to`) and stores `to` as the
/// partition's next offset, all in one transaction. Replayed events are
/// no-ops thanks to the tables' unique keys.
pub async fn write_batch(
    pool: &Pool,
    topic: &str,
    partition: i32,
    from: i64,
    to: i64,
    events: &[Event],
) -> Result<(), WriteError> {
    let mut conn = pool.get_conn().await?;
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let stored: Option<i64> = tx
        .exec_first(
            "SELECT next_offset FROM sink_offsets WHERE topic = ? AND partition_id = ? FOR UPDATE",
            (topic, partition),
        )
        .await?;
    let stored = stored.unwrap_or(0);
    if stored != from {
        tx.rollback().await?;
        return Err(WriteError::Moved { stored });
    }
    let (mut coupons, rest): (Vec<&Event>, Vec<&Event>) =
        events.iter().partition(|e| matches!(e, Event::CouponIssued(_)));
    let (wallets, orders): (Vec<&Event>, Vec<&Event>) = rest.into_iter().partition(|e| matches!(e, Event::Wallet(_)));
    // Every transaction takes the coupon rows it writes in key order (here
    // and in `upsert_orders`): two partitions' batches that share rows then
    // wait for each other instead of deadlocking (MySQL error 1213).
    coupons.sort_by_key(|e| rows::coupon_key(e));
    for chunk in wallets.chunks(rows::ROWS_PER_INSERT) {
        super::wallet_rows::write(&mut tx, chunk).await?;
    }
    for chunk in coupons.chunks(rows::ROWS_PER_INSERT) {
        rows::insert_coupon_issues(&mut tx, chunk).await?;
    }
    rows::upsert_orders(&mut tx, &orders).await?;
    tx.exec_drop(
        "UPDATE sink_offsets SET next_offset = ? WHERE topic = ? AND partition_id = ?",
        (to, topic, partition),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records (or refreshes) a partition's stall for `flashsale status`.
pub async fn record_stall(
    pool: &Pool,
    topic: &str,
    partition: i32,
    reason: &str,
    detail: &str,
) -> Result<(), mysql_async::Error> {
    // The column holds 1,024 characters; MySQL errors can quote whole rows.
    let detail: String = detail.chars().take(1024).collect();
    pool.get_conn()
        .await?
        .exec_drop(
            "INSERT INTO sink_stalls (topic, partition_id, reason, detail) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE since = IF(reason = VALUES(reason), since, CURRENT_TIMESTAMP(3)), \
             reason = VALUES(reason), detail = VALUES(detail)",
            (topic, partition, reason, detail),
        )
        .await
}

/// Forgets a partition's stall: it ended, or a new sink starts on it.
pub async fn clear_stall(pool: &Pool, topic: &str, partition: i32) -> Result<(), mysql_async::Error> {
    pool.get_conn()
        .await?
        .exec_drop("DELETE FROM sink_stalls WHERE topic = ? AND partition_id = ?", (topic, partition))
        .await
}
