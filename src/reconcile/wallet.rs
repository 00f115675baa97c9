//! Wallets: Redis balances against the `wallets` rows and the history the
//! sink wrote. Reports only (Redis keeps no events to rewrite from): a
//! difference that outlives the pipe's drain is a lost or doubled event.

use std::collections::BTreeMap;

use mysql_async::Pool;

use super::Report;
use crate::{db::wallet as queries, wallet::Wallets};

pub async fn wallets(wallets: &Wallets, mysql: &Pool) -> anyhow::Result<Report> {
    let redis: BTreeMap<u64, (u64, u64)> =
        wallets.all().await?.into_iter().map(|(user, w)| (user, (w.balance, w.version))).collect();
    let rows: BTreeMap<u64, (u64, u64)> =
        queries::wallets(mysql).await?.into_iter().map(|(user, balance, version)| (user, (balance, version))).collect();
    let history: BTreeMap<u64, (i64, u64)> =
        queries::history_sums(mysql).await?.into_iter().map(|(user, sum, version)| (user, (sum, version))).collect();
    let mut report = Report {
        subject: "wallets".into(),
        summary: format!("Redis: {} wallets; MySQL: {} wallets", redis.len(), rows.len()),
        ..Report::default()
    };
    for (user, &(balance, version)) in &redis {
        match rows.get(user) {
            None => report
                .other
                .push(format!("wallet {user}: balance {balance} (version {version}) in Redis, missing in MySQL")),
            Some(&(b, v)) if (b, v) != (balance, version) => report.other.push(format!(
                "wallet {user}: Redis balance {balance} (version {version}), MySQL balance {b} (version {v})"
            )),
            Some(_) => {}
        }
        match history.get(user) {
            Some(&(sum, top)) if sum == balance as i64 && top == version => {}
            Some(&(sum, top)) => report.other.push(format!(
                "wallet {user}: MySQL history sums to {sum} up to version {top}; Redis balance {balance} (version {version})"
            )),
            None => report.other.push(format!("wallet {user}: no history in MySQL")),
        }
    }
    for (user, (b, v)) in rows.iter().filter(|(user, _)| !redis.contains_key(user)) {
        report.other.push(format!("wallet {user}: balance {b} (version {v}) in MySQL, not in Redis"));
    }
    Ok(report)
}
