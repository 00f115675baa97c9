//! MySQL reads of wallets: a user's history, newest first, every wallet
//! row (for reconcile) and their totals (for status).

use mysql_async::{prelude::*, Pool};

use crate::events::WalletKind;

/// One `wallet_transactions` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub event_id: String,
    pub kind: WalletKind,
    pub amount: u64,
    pub balance_after: u64,
    /// The wallet's version after it: the history's order.
    pub version: u64,
    pub sale_id: Option<u64>,
    pub order_id: Option<u64>,
    /// Milliseconds since the epoch.
    pub created_at: u64,
}

/// Up to `limit` of the user's transactions with a version below `before`
/// (all when None), newest first.
pub async fn transactions(
    pool: &Pool,
    user_id: u64,
    limit: u64,
    before: Option<u64>,
) -> Result<Vec<Transaction>, mysql_async::Error> {
    let sql = format!(
        "SELECT event_id, kind, amount, balance_after, version, sale_id, order_id, {} FROM wallet_transactions \
         WHERE user_id = ? AND version < ? ORDER BY version DESC, event_id DESC LIMIT ?",
        super::epoch_ms("created_at")
    );
    type Row = (String, String, u64, u64, u64, Option<u64>, Option<u64>, u64);
    let rows: Vec<Row> = pool.get_conn().await?.exec(sql, (user_id, before.unwrap_or(u64::MAX), limit)).await?;
    Ok(rows
        .into_iter()
        .map(|(event_id, kind, amount, balance_after, version, sale_id, order_id, created_at)| Transaction {
            event_id,
            kind: WalletKind::parse(&kind).unwrap_or(WalletKind::Payment),
            amount,
            balance_after,
            version,
            sale_id,
            order_id,
            created_at,
        })
        .collect())
}

/// One `wallets` row: (balance, version).
pub async fn wallet(pool: &Pool, user_id: u64) -> Result<Option<(u64, u64)>, mysql_async::Error> {
    pool.get_conn().await?.exec_first("SELECT balance, version FROM wallets WHERE user_id = ?", (user_id,)).await
}

/// Every `wallets` row: user -> (balance, version).
pub async fn wallets(pool: &Pool) -> Result<Vec<(u64, u64, u64)>, mysql_async::Error> {
    pool.get_conn().await?.query("SELECT user_id, balance, version FROM wallets ORDER BY user_id").await
}

/// Per user: what came in (charges, repair credits) minus what went out
/// over the whole history, and its highest version.
pub async fn history_sums(pool: &Pool) -> Result<Vec<(u64, i64, u64)>, mysql_async::Error> {
    pool.get_conn()
        .await?
        .query(
            "SELECT user_id, CAST(SUM(IF(kind IN ('charge', 'repair_credit'), CAST(amount AS SIGNED), \
             -CAST(amount AS SIGNED))) AS SIGNED), \
             MAX(version) FROM wallet_transactions GROUP BY user_id ORDER BY user_id",
        )
        .await
}

/// (wallets, their balances summed) over the `wallets` rows.
pub async fn totals(pool: &Pool) -> Result<(u64, u64), mysql_async::Error> {
    let row: Option<(u64, u64)> = pool
        .get_conn()
        .await?
        .query_first("SELECT COUNT(*), CAST(COALESCE(SUM(balance), 0) AS UNSIGNED) FROM wallets")
        .await?;
    Ok(row.unwrap_or((0, 0)))
}
