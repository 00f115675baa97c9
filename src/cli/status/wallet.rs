//! The wallets' status: how many and how much money Redis holds against the
//! `wallets` rows the sink wrote, and the wallet outboxes on their way to Kafka.

use serde::Serialize;

use crate::wallet::Wallets;

#[derive(Serialize)]
pub struct WalletStatus {
    /// Wallets Redis holds, and their balances summed.
    redis_wallets: u64,
    redis_balance: u64,
    /// Entries in the wallet shards' outboxes (not yet acknowledged by Kafka).
    outbox_len: u64,
    /// Of those, read by a relay and in flight.
    outbox_pending: u64,
    mysql_wallets: u64,
    mysql_balance: u64,
}

pub async fn of(wallets: &Wallets, mysql: &mysql_async::Pool) -> anyhow::Result<WalletStatus> {
    let all = wallets.all().await?;
    let (outbox_len, outbox_pending) = wallets.outbox().await?;
    let (mysql_wallets, mysql_balance) = crate::db::wallet::totals(mysql).await?;
    Ok(WalletStatus {
        redis_wallets: all.len() as u64,
        redis_balance: all.iter().map(|(_, w)| w.balance).sum(),
        outbox_len,
        outbox_pending,
        mysql_wallets,
        mysql_balance,
    })
}

pub fn print(w: &WalletStatus) {
    println!(
        "\nwallets: Redis {} holding {}; outbox {} ({} pending); MySQL {} holding {}",
        w.redis_wallets, w.redis_balance, w.outbox_len, w.outbox_pending, w.mysql_wallets, w.mysql_balance
    );
}
