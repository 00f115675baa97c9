//! The rows a wallet event becomes: one `wallet_transactions` row per event
//! (a replay is ignored: the event id is its key) and the `wallets` row,
//! moved only to a higher version.

use mysql_async::{prelude::*, Transaction, Value};

use crate::{events::Event, time::mysql_datetime};

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
    let mut params: Vec<Value> = Vec::with_capacity(changes.len() * 9);
    for c in &changes {
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
    tx.exec_drop(sql, params).await?;

    let mut params: Vec<Value> = Vec::with_capacity(changes.len() * 4);
    for c in &changes {
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
