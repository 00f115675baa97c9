//! Hot-item buckets for single-SKU sales: a sale created with `--buckets N`
//! keeps its stock in N parts, each a whole copy of the sale's keys under its
//! own hash tag (`{sale:ID:B}`, see `keys`), so on a Redis Cluster one hot
//! product spreads over several primaries.
//!
//! A user's orders all live in the user's home bucket (`buckets::home`): the
//! per-user limit, idempotency keys and coupon use are checked there, by the
//! same one-script reservation as without buckets, so they stay exact. Order
//! ids name their bucket (id % N, see `reserve_order.lua`): pay, cancel and
//! lookups go straight to it.
//!
//! Stock moves instead of users. When a reservation finds its home short,
//! the service takes units from the fullest other bucket ([`refill`]) and
//! asks again: the sale sells out completely, and never oversells, because a
//! unit is always in exactly one bucket or in one move under way. A move is
//! three steps in two slots (`move_stock.lua`): take (the donor records it),
//! give (the home adds it once per move id, and refuses a move taken more
//! than [`GIVE_WINDOW_MS`] ago), done (the donor forgets it). A process that
//! dies between them leaves the move recorded in the donor; the expiry task
//! finishes it ([`finish_overdue`]): given, or (once the home refuses it as
//! late, which is final) put back in the donor.

use std::collections::HashMap;

use fred::prelude::*;

use crate::{
    keys::Keys,
    scripts::{Given, Move, Scripts},
    time::now_ms,
};

// A move's timing (see `recovery::timing`).
pub use crate::recovery::timing::{STOCK_MOVE_GIVE_WINDOW_MS as GIVE_WINDOW_MS, STOCK_MOVE_MARGIN_MS as MARGIN_MS};

/// Moves units of `sku` into bucket `home` from the other buckets of a sale
/// of `n`, the fullest first, until `wanted` arrived or none is left; returns
/// the units given.
#[allow(clippy::too_many_arguments)]
pub async fn refill(
    scripts: &Scripts,
    client: &Client,
    keys: &Keys,
    sale_id: u64,
    n: u32,
    home: u32,
    sku: u64,
    wanted: u64,
) -> Result<u64, Error> {
    let mut given = 0;
    for round in 1..n {
        let donors: Vec<u32> = (0..n).filter(|&b| b != home).collect();
        let stock: Vec<Option<u64>> = futures_util::future::try_join_all(
            donors.iter().map(|&b| client.hget::<Option<u64>, _, _>(keys.sale_bucket(sale_id, b).stock, sku)),
        )
        .await?;
        // Nothing moves for an order the whole sale cannot fill (a request for
        // more than there is would otherwise pull stock around for nothing).
        if round == 1 && stock.iter().map(|s| s.unwrap_or(0)).sum::<u64>() < wanted {
            break;
        }
        let Some((donor, _)) =
            donors.into_iter().zip(stock).filter(|(_, s)| s.unwrap_or(0) > 0).max_by_key(|(_, s)| *s)
        else {
            break;
        };
        let from = keys.sale_bucket(sale_id, donor);
        let Some(m) = scripts.move_stock.take(client, &from, donor, home, sku, wanted - given).await? else {
            continue;
        };
        given += finish(scripts, client, keys, sale_id, donor, &m).await?;
        if given >= wanted {
            break;
        }
    }
    Ok(given)
}

/// Gives a taken move to its home and forgets it, or puts it back in its
/// donor when the home can no longer be given it; returns the units given.
async fn finish(
    scripts: &Scripts,
    client: &Client,
    keys: &Keys,
    sale_id: u64,
    donor: u32,
    m: &Move,
) -> Result<u64, Error> {
    let (from, home) = (keys.sale_bucket(sale_id, donor), keys.sale_bucket(sale_id, m.home));
    match scripts.move_stock.give(client, &home, m, GIVE_WINDOW_MS).await? {
        Given::Given | Given::Already => {
            scripts.move_stock.done(client, &from, &m.id).await?;
            Ok(m.units)
        }
        // Never given, and it never will be.
        Given::Late | Given::Gone => {
            if scripts.move_stock.undo(client, &from, &m.id).await? {
                tracing::warn!(sale_id, donor, home = m.home, units = m.units, "stock move given up: put back");
            }
            Ok(0)
        }
    }
}

/// Finishes the moves of a sale of `n` buckets whose request died between
/// the steps (taken more than `MARGIN_MS` ago); returns how many.
pub async fn finish_overdue(
    scripts: &Scripts,
    client: &Client,
    keys: &Keys,
    sale_id: u64,
    n: u32,
) -> Result<u64, Error> {
    let mut finished = 0;
    for donor in 0..n {
        let from = keys.sale_bucket(sale_id, donor);
        let moves: HashMap<String, String> = client.hgetall(&from.moves).await?;
        for (id, record) in moves {
            let Some(m) = Move::parse(id.clone(), &record) else {
                tracing::error!(sale_id, donor, %id, %record, "a stock move not understood: left alone");
                continue;
            };
            if now_ms().saturating_sub(m.taken_at) < MARGIN_MS {
                continue;
            }
            // Its request may have died because the take was not acknowledged
            // by the replicas: written again (and acknowledged) first, so no
            // failover can lose a take whose units were given.
            if !scripts.move_stock.keep(client, &from, &m.id).await? {
                continue;
            }
            let given = finish(scripts, client, keys, sale_id, donor, &m).await?;
            tracing::info!(sale_id, donor, home = m.home, units = m.units, given, "overdue stock move finished");
            finished += 1;
        }
    }
    Ok(finished)
}

/// Units of each SKU in moves under way (taken, not yet given) of a sale of
/// `n` buckets: still for sale, in no bucket's stock.
pub async fn under_way(client: &Client, keys: &Keys, sale_id: u64, n: u32) -> Result<HashMap<u64, u64>, Error> {
    let records: Vec<HashMap<String, String>> = futures_util::future::try_join_all(
        (0..n).map(|b| client.hgetall::<HashMap<String, String>, _>(keys.sale_bucket(sale_id, b).moves)),
    )
    .await?;
    let mut units: HashMap<u64, u64> = HashMap::new();
    for (id, record) in records.into_iter().flatten() {
        let Some(m) = Move::parse(id, &record) else { continue };
        // Given already (and not yet forgotten by its donor): in the home's stock.
        let given: Option<f64> = client.zscore(keys.sale_bucket(sale_id, m.home).received, &m.id).await?;
        if given.is_none() {
            *units.entry(m.sku).or_default() += m.units;
        }
    }
    Ok(units)
}
