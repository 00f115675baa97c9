//! The `payment_keys` table (sql/0010): which order or charge each gateway
//! payment reference paid.

use mysql_async::{prelude::*, Pool};

/// Inserts (key, paid_for) unless the key is there; true when the key is
/// bound to `paid_for`, false when to something else.
pub async fn claim(pool: &Pool, key: &[u8], paid_for: &[u8]) -> Result<bool, mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    conn.exec_drop(
        // IGNORE: a duplicate key inserts nothing (0 rows) and is no error;
        // both values are shorter than their columns (checked by the callers).
        "INSERT IGNORE INTO payment_keys (payment_key, paid_for) VALUES (?, ?)",
        (key, paid_for),
    )
    .await?;
    if conn.affected_rows() == 1 {
        return Ok(true);
    }
    let owner: Option<Vec<u8>> =
        conn.exec_first("SELECT paid_for FROM payment_keys WHERE payment_key = ?", (key,)).await?;
    Ok(owner.as_deref() == Some(paid_for))
}
