//! The rows a wallet event becomes: one `wallet_transactions` row per event
//! (a replay is ignored: the event id is its key) and the `wallets` row,
//! moved only to a higher version.

use mysql_async::{prelude::*, Transaction, Value};

use crate::{
    events::{Event, WalletChanged, WalletKind},
    time::mysql_datetime,
};

pub async fn write(tx: &mut Transaction<'_>, events: &[&Event]) -> Result<(), mysql_async::Error> {
    let changes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Wallet(change) => Some(change),
            _ => None,
        })
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    insert_history(tx, &changes).await?;
    upsert_wallets(tx, &changes).await
}

/// `reconcile --repair`: one wallet brought to Redis's `balance` at
/// `version`. Its row moves forward only; a history summing to another
/// amount (`history_sum`) gets one explicit entry for the gap, never a
/// rewrite: `repair-w<user>-v<version>-s<sum>`, kind repair_credit or
/// repair_debit (the same repair again writes nothing new).
pub async fn write_repair(
    pool: &mysql_async::Pool,
    user_id: u64,
    balance: u64,
    version: u64,
    history_sum: i64,
    at: u64,
) -> Result<(), mysql_async::Error> {
    let gap = balance as i64 - history_sum;
    let change = WalletChanged {
        event_id: format!("repair-w{user_id}-v{version}-s{history_sum}"),
        user_id,
        kind: if gap >= 0 { WalletKind::RepairCredit } else { WalletKind::RepairDebit },
        amount: gap.unsigned_abs(),
        balance_after: balance,
        version,
        sale_id: None,
        order_id: None,
        at,
    };
    let mut conn = pool.get_conn().await?;
    let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
    if gap != 0 {
        insert_history(&mut tx, &[&change]).await?;
    }
    upsert_wallets(&mut tx, &[&change]).await?;
    tx.commit().await
}

async fn insert_history(tx: &mut Transaction<'_>, changes: &[&WalletChanged]) -> Result<(), mysql_async::Error> {
    let mut params: Vec<Value> = Vec::with_capacity(changes.len() * 9);
    for c in changes {
        params.extend([
            c.event_id.as_str().into(),
            c.user_id.into(),
            c.kind.as_str().into(),
            c.amount.into(),
            c.balance_after.into(),
            c.version.into(),
            c.sale_id.into(),
            c.order_id.into(),
            mysql_datetime(c.at).into(),
        ]);
    }
    let sql = super::rows::multi_insert(
        "INSERT IGNORE INTO wallet_transactions (event_id, user_id, kind, amount, balance_after, version, sale_id, \
         order_id, created_at) VALUES ",
        9,
        changes.len(),
        "",
    );
    tx.exec_drop(sql, params).await
}

async fn upsert_wallets(tx: &mut Transaction<'_>, changes: &[&WalletChanged]) -> Result<(), mysql_async::Error> {
    let mut params: Vec<Value> = Vec::with_capacity(changes.len() * 4);
    for c in changes {
        params.extend([c.user_id.into(), c.balance_after.into(), c.version.into(), mysql_datetime(c.at).into()]);
    }
    let sql = super::rows::multi_insert(
        "INSERT INTO wallets (user_id, balance, version, updated_at) VALUES ",
        4,
        changes.len(),
        &super::rows::newer_wins(&["balance", "updated_at"], "version"),
    );
    tx.exec_drop(sql, params).await
}
