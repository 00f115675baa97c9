//! The rows each event becomes, as multi-row statements (one round trip per
//! chunk). Every statement is idempotent: a replayed event changes nothing,
//! and an older order event never overwrites a newer one.

use std::{
    collections::{BTreeMap, HashMap},
    sync::atomic::Ordering::Relaxed,
};

use mysql_async::{prelude::*, Transaction, Value};

use crate::{
    events::Event,
    metrics::METRICS,
    order::{Order, OrderStatus},
    time::mysql_datetime,
};

/// `INSERT INTO t (cols) VALUES (?,..),(?,..) <tail>` for `rows` rows.
pub(super) fn multi_insert(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let one = format!("({})", vec!["?"; columns].join(","));
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * (one.len() + 1));
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&one);
    }
    sql.push_str(tail);
    sql
}

/// The `ON DUPLICATE KEY UPDATE` of a version-guarded upsert: each of
/// `columns` takes the new row's value only when its `version` is higher, and
/// the version only grows (it comes last: the columns test the old one).
pub(super) fn newer_wins(columns: &[&str], version: &str) -> String {
    let newer = format!("VALUES({version}) > {version}");
    let mut sql = String::from(" ON DUPLICATE KEY UPDATE ");
    for column in columns {
        sql.push_str(&format!("{column} = IF({newer}, VALUES({column}), {column}), "));
    }
    sql.push_str(&format!("{version} = GREATEST({version}, VALUES({version}))"));
    sql
}

/// Rows per INSERT statement: few round trips, statements well under max_allowed_packet.
pub const ROWS_PER_INSERT: usize = 500;

/// The key of the `coupon_issues` row a coupon issue writes, the order the
/// sink takes those rows in; (0, 0) for other events.
pub fn coupon_key(event: &Event) -> (u64, u64) {
    match event {
        Event::CouponIssued(e) => (e.coupon_id, e.user_id),
        Event::Order(_) | Event::Wallet(_) => (0, 0),
    }
}

/// The key of the `orders` row an order event writes; (0, 0) for other events.
pub fn order_key(event: &Event) -> (u64, u64) {
    match event {
        Event::Order(c) => (c.order.sale_id, c.order.order_id),
        Event::CouponIssued(_) | Event::Wallet(_) => (0, 0),
    }
}

/// What an order event writes to its coupon's row: (coupon, user, held by
/// (sale, order) or none, the coupon's version).
pub type CouponUse = (u64, u64, Option<(u64, u64)>, u64);

/// A coupon issue; fills in a placeholder row an order event may have made first.
pub async fn insert_coupon_issues(tx: &mut Transaction<'_>, events: &[&Event]) -> Result<(), mysql_async::Error> {
    let mut params: Vec<Value> = Vec::with_capacity(events.len() * 4);
    for event in events {
        if let Event::CouponIssued(e) = event {
            params.extend([
                e.coupon_id.into(),
                e.user_id.into(),
                e.event_id.as_str().into(),
                mysql_datetime(e.issued_at).into(),
            ]);
        }
    }
    if params.is_empty() {
        return Ok(());
    }
    let sql = multi_insert(
        "INSERT INTO coupon_issues (coupon_id, user_id, event_id, issued_at) VALUES ",
        4,
        params.len() / 4,
        // issued_at first: it tests event_id before that is filled in.
        " ON DUPLICATE KEY UPDATE issued_at = IF(event_id = '', VALUES(issued_at), issued_at), \
           event_id = IF(event_id = '', VALUES(event_id), event_id)",
    );
    tx.exec_drop(sql, params).await
}

/// Orders (moved only to a higher version), their lines (once), and the
/// coupon each holds or gave back. Rows are taken in key order (orders by
/// sale and id, then coupon rows by campaign and user), so two transactions
/// that share rows wait for each other instead of deadlocking (MySQL 1213).
pub async fn upsert_orders(tx: &mut Transaction<'_>, events: &[&Event]) -> Result<(), mysql_async::Error> {
    let mut events = events.to_vec();
    // Stable: one order's events keep their order.
    events.sort_by_key(|e| order_key(e));
    let mut uses = Vec::new();
    for chunk in events.chunks(ROWS_PER_INSERT) {
        upsert_order_rows(tx, chunk, &mut uses).await?;
    }
    uses.sort_by_key(|&(coupon, user, ..)| (coupon, user));
    for chunk in uses.chunks(ROWS_PER_INSERT) {
        upsert_coupon_uses(tx, chunk).await?;
    }
    Ok(())
}

/// Orders and their lines; adds to `uses` the coupon each holds or gave
/// back. An event whose id names a row of another order is not merged: it
/// goes to `order_conflicts` (see [`split_conflicts`]).
async fn upsert_order_rows(
    tx: &mut Transaction<'_>,
    events: &[&Event],
    uses: &mut Vec<CouponUse>,
) -> Result<(), mysql_async::Error> {
    let changes: Vec<(&str, &Order)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Order(c) => Some((c.event_id.as_str(), &c.order)),
            Event::CouponIssued(_) | Event::Wallet(_) => None,
        })
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    let known = identities(tx, &changes).await?;
    let (changes, conflicts) = split_conflicts(known, changes);
    record_conflicts(tx, &conflicts).await?;
    if changes.is_empty() {
        return Ok(());
    }

    let mut params: Vec<Value> = Vec::with_capacity(changes.len() * 14);
    for (event_id, o) in &changes {
        params.extend([
            o.sale_id.into(),
            o.order_id.into(),
            o.user_id.into(),
            o.status.as_str().into(),
            o.total.into(),
            o.discount.into(),
            o.to_pay.into(),
            o.coupon_id.into(),
            o.payment_key.clone().into(),
            o.version.into(),
            (*event_id).into(),
            mysql_datetime(o.created_at).into(),
            mysql_datetime(o.expires_at).into(),
            mysql_datetime(o.updated_at).into(),
        ]);
    }
    let sql = multi_insert(
        "INSERT INTO orders (sale_id, order_id, user_id, status, total, discount, to_pay, coupon_id, payment_key, \
         version, event_id, created_at, expires_at, updated_at) VALUES ",
        14,
        changes.len(),
        &newer_wins(&["status", "payment_key", "event_id", "updated_at"], "version"),
    );
    tx.exec_drop(sql, params).await?;

    let mut params: Vec<Value> = Vec::new();
    // Every event carries the lines; inserting them each time (a no-op after
    // the first) keeps a repaired order whole even if it never saw version 1.
    for (_, o) in &changes {
        for item in &o.items {
            params.extend([
                o.sale_id.into(),
                o.order_id.into(),
                item.sku.into(),
                item.quantity.into(),
                item.price.into(),
            ]);
        }
    }
    if !params.is_empty() {
        let sql = multi_insert(
            "INSERT INTO order_items (sale_id, order_id, sku, quantity, price) VALUES ",
            5,
            params.len() / 5,
            " ON DUPLICATE KEY UPDATE quantity = quantity",
        );
        tx.exec_drop(sql, params).await?;
    }

    for (_, o) in &changes {
        if let Some(coupon) = o.coupon_id {
            let holds = matches!(o.status, OrderStatus::Reserved | OrderStatus::Paid);
            uses.push((coupon, o.user_id, holds.then_some((o.sale_id, o.order_id)), o.coupon_seq.unwrap_or(0)));
        }
    }
    Ok(())
}

/// The coupon rows order events hold or gave back (moved only to a higher
/// version), `uses` in key order.
async fn upsert_coupon_uses(tx: &mut Transaction<'_>, uses: &[CouponUse]) -> Result<(), mysql_async::Error> {
    if uses.is_empty() {
        return Ok(());
    }
    let mut params: Vec<Value> = Vec::with_capacity(uses.len() * 5);
    for &(coupon, user, held_by, version) in uses {
        params.extend([
            coupon.into(),
            user.into(),
            held_by.map(|(sale, _)| sale).into(),
            held_by.map(|(_, order)| order).into(),
            version.into(),
        ]);
    }
    let sql = multi_insert(
        "INSERT INTO coupon_issues (coupon_id, user_id, used_sale_id, used_order_id, used_version) VALUES ",
        5,
        uses.len(),
        &newer_wins(&["used_sale_id", "used_order_id"], "used_version"),
    );
    tx.exec_drop(sql, params).await
}

/// Writes reconcile's repairs: the same idempotent, version-guarded rows the
/// sink writes, in one transaction.
pub async fn write_repair(pool: &mysql_async::Pool, events: &[Event]) -> Result<(), mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
    let refs: Vec<&Event> = events.iter().collect();
    upsert_orders(&mut tx, &refs).await?;
    tx.commit().await
}

/// What makes an order itself: its user and its creation time. Two events with
/// one (sale, order) id but another identity are two orders.
type Identity = (u64, u64);

/// The identity of each row the events name that MySQL already holds, locked
/// for the transaction (so a concurrent writer cannot slip another order in).
async fn identities(
    tx: &mut Transaction<'_>,
    changes: &[(&str, &Order)],
) -> Result<HashMap<(u64, u64), Identity>, mysql_async::Error> {
    let mut by_sale: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (_, o) in changes {
        by_sale.entry(o.sale_id).or_default().push(o.order_id);
    }
    let mut known = HashMap::new();
    for (sale_id, mut ids) in by_sale {
        ids.sort_unstable();
        ids.dedup();
        let sql = format!(
            "SELECT order_id, user_id, {} FROM orders WHERE sale_id = ? AND order_id IN ({}) FOR UPDATE",
            crate::db::epoch_ms("created_at"),
            vec!["?"; ids.len()].join(",")
        );
        let mut params: Vec<Value> = vec![sale_id.into()];
        params.extend(ids.iter().map(|&id| Value::from(id)));
        let rows: Vec<(u64, u64, u64)> = tx.exec(sql, params).await?;
        for (order_id, user_id, created_at) in rows {
            known.insert((sale_id, order_id), (user_id, created_at));
        }
    }
    Ok(known)
}

/// One order event: its event id and the order it carries.
type Change<'a> = (&'a str, &'a Order);

/// Splits events into those to merge and those naming another order's row
/// (in MySQL already, or earlier in this batch).
fn split_conflicts<'a>(
    mut known: HashMap<(u64, u64), Identity>,
    changes: Vec<Change<'a>>,
) -> (Vec<Change<'a>>, Vec<Change<'a>>) {
    let (mut merge, mut conflicts) = (Vec::with_capacity(changes.len()), Vec::new());
    for (event_id, o) in changes {
        let identity = *known.entry((o.sale_id, o.order_id)).or_insert((o.user_id, o.created_at));
        if identity == (o.user_id, o.created_at) {
            merge.push((event_id, o));
        } else {
            conflicts.push((event_id, o));
        }
    }
    (merge, conflicts)
}

/// Keeps refused events whole for an operator; counted and logged.
async fn record_conflicts(tx: &mut Transaction<'_>, conflicts: &[(&str, &Order)]) -> Result<(), mysql_async::Error> {
    if conflicts.is_empty() {
        return Ok(());
    }
    let mut params: Vec<Value> = Vec::with_capacity(conflicts.len() * 6);
    for (event_id, o) in conflicts {
        tracing::error!(
            event_id,
            sale_id = o.sale_id,
            order_id = o.order_id,
            user_id = o.user_id,
            "sink: an order event names another order's row; not merged (see order_conflicts)"
        );
        params.extend([
            (*event_id).into(),
            o.sale_id.into(),
            o.order_id.into(),
            o.user_id.into(),
            mysql_datetime(o.created_at).into(),
            serde_json::to_string(o).unwrap_or_default().into(),
        ]);
    }
    let sql = multi_insert(
        "INSERT IGNORE INTO order_conflicts (event_id, sale_id, order_id, user_id, created_at, order_json) VALUES ",
        6,
        conflicts.len(),
        "",
    );
    tx.exec_drop(sql, params).await?;
    METRICS.order_conflicts.fetch_add(conflicts.len() as u64, Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(order_id: u64, user_id: u64, created_at: u64) -> Order {
        Order {
            order_id,
            sale_id: 1,
            user_id,
            status: OrderStatus::Reserved,
            items: vec![],
            total: 0,
            discount: 0,
            to_pay: 0,
            coupon_id: None,
            coupon_seq: None,
            payment_key: None,
            created_at,
            expires_at: created_at + 1,
            updated_at: created_at,
            version: 1,
        }
    }

    #[test]
    fn newer_wins_guards_every_column_by_the_old_version_then_raises_it() {
        assert_eq!(
            super::newer_wins(&["a", "b"], "v"),
            " ON DUPLICATE KEY UPDATE a = IF(VALUES(v) > v, VALUES(a), a), b = IF(VALUES(v) > v, VALUES(b), b), \
             v = GREATEST(v, VALUES(v))"
        );
    }

    #[test]
    fn an_event_naming_another_orders_row_is_split_off() {
        let (mine, later_version, other_user, other_time, new_in_batch, clash_in_batch) = (
            order(1, 7, 100),
            order(1, 7, 100),
            order(1, 8, 100),
            order(1, 7, 200),
            order(2, 9, 300),
            order(2, 9, 301),
        );
        let known = HashMap::from([((1, 1), (7, 100))]);
        let changes = vec![
            ("a", &mine),
            ("b", &later_version),
            ("c", &other_user),
            ("d", &other_time),
            ("e", &new_in_batch),
            ("f", &clash_in_batch),
        ];
        let (merge, conflicts) = split_conflicts(known, changes);
        let ids = |v: &[(&str, &Order)]| v.iter().map(|(e, _)| e.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&merge), ["a", "b", "e"]);
        assert_eq!(ids(&conflicts), ["c", "d", "f"]);
    }
}
