//! Wallets: Redis balances against the `wallets` rows and the history the
//! sink wrote. Where MySQL is behind (a row missing or older, a history that
//! does not sum to the balance), `--repair` brings the row forward and writes
//! one explicit entry for the history's gap (sink::wallet_rows::write_repair).
//! MySQL ahead of Redis is reported only.

use std::collections::BTreeMap;

use mysql_async::Pool;

use super::Report;
use crate::{db::wallet as queries, wallet::Wallets};

pub async fn wallets(wallets: &Wallets, mysql: &Pool, repair: bool) -> anyhow::Result<Report> {
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
    // An event still on its way would land after the repair's entry and
    // count twice: repair only once the wallet outbox is empty.
    let (queued, pending) = wallets.outbox().await?;
    let repair = if repair && queued + pending > 0 {
        report.other.push(format!(
            "not repaired: the wallet outbox still holds {queued} events ({pending} read, not acknowledged); \
             repair once the relay has drained it"
        ));
        false
    } else {
        repair
    };
    for (user, &(balance, version)) in &redis {
        let mut found = Vec::new();
        let row = rows.get(user).copied();
        match row {
            None => {
                found.push(format!("wallet {user}: balance {balance} (version {version}) in Redis, missing in MySQL"))
            }
            Some((b, v)) if (b, v) != (balance, version) => found.push(format!(
                "wallet {user}: Redis balance {balance} (version {version}), MySQL balance {b} (version {v})"
            )),
            Some(_) => {}
        }
        let kept = history.get(user).copied();
        match kept {
            Some((sum, top)) if sum == balance as i64 && top == version => {}
            Some((sum, top)) => found.push(format!(
                "wallet {user}: MySQL history sums to {sum} up to version {top}; Redis balance {balance} (version {version})"
            )),
            None => found.push(format!("wallet {user}: no history in MySQL")),
        }
        let (sum, top) = kept.unwrap_or((0, 0));
        if found.is_empty() {
            continue;
        }
        // MySQL behind Redis, never ahead: a repair moves it forward.
        let behind = row.is_none_or(|(_, v)| v <= version) && top <= version;
        if !behind {
            report.other.extend(found);
            continue;
        }
        if repair {
            let now = crate::time::now_ms();
            crate::sink::wallet_rows::write_repair(mysql, *user, balance, version, sum, now).await?;
        }
        report.repairable.extend(found);
    }
    for (user, (b, v)) in rows.iter().filter(|(user, _)| !redis.contains_key(user)) {
        report.other.push(format!("wallet {user}: balance {b} (version {v}) in MySQL, not in Redis"));
    }
    Ok(report)
}
