//! Reconciliation: Redis (the source of truth during a sale) against MySQL
//! (written asynchronously by the sink), row by row. Finds what MySQL lacks or
//! holds stale, and — on request — writes it; reports what only a human can
//! judge (rows MySQL has and Redis does not, stock that does not add up).
//!
//! Run it once the pipe has drained (`flashsale status` shows no lag):
//! events still on their way look like rows MySQL lacks.
//!
//! A campaign or sale that retired and whose keys Redis let go is MySQL's
//! alone: there is nothing to compare, and its report says so (no drift).

pub mod wallet;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mysql_async::Pool;

use crate::{
    coupons::Coupons,
    db::{
        archive::{self, Kind},
        queries,
    },
    events::{Event, OrderChanged},
    order::OrderStatus,
    sales::Sales,
};

/// What one campaign or sale's comparison found.
#[derive(Debug, Default)]
pub struct Report {
    pub subject: String,
    pub summary: String,
    /// Differences a repair can fix by writing MySQL.
    pub repairable: Vec<String>,
    /// Differences a repair cannot fix.
    pub other: Vec<String>,
}

impl Report {
    pub fn drift(&self) -> usize {
        self.repairable.len() + self.other.len()
    }
}

/// The report of a retired campaign or sale Redis let go: MySQL's alone.
fn retired(subject: String, rows: String) -> Report {
    Report { subject, summary: format!("retired; MySQL only: {rows}"), ..Report::default() }
}

pub async fn coupon(coupons: &Coupons, mysql: &Pool, coupon_id: u64, repair: bool) -> anyhow::Result<Report> {
    let Some(info) = coupons.info(coupon_id).await? else {
        anyhow::ensure!(
            archive::is_retired(mysql, Kind::Coupon, coupon_id).await?,
            "no coupon campaign {coupon_id} in Redis"
        );
        let rows = queries::issued_count(mysql, coupon_id).await?;
        return Ok(retired(format!("coupon {coupon_id}"), format!("{rows} rows")));
    };
    let redis: BTreeSet<u64> = coupons.users(coupon_id).await?.into_iter().collect();
    let mysql_users: BTreeSet<u64> = queries::coupon_users(mysql, coupon_id).await?.into_iter().collect();
    let missing: Vec<u64> = redis.difference(&mysql_users).copied().collect();
    let mut report = Report {
        subject: format!("coupon {coupon_id}"),
        summary: format!(
            "Redis: total {}, remaining {}, issued {}; MySQL: {} rows",
            info.total,
            info.remaining,
            info.issued,
            mysql_users.len()
        ),
        ..Report::default()
    };
    if repair && !missing.is_empty() {
        queries::repair_coupon_issues(mysql, coupon_id, &missing).await?;
        return Box::pin(coupon(coupons, mysql, coupon_id, false)).await;
    }
    report.repairable.extend(missing.iter().map(|u| format!("user {u}: issued in Redis, missing in MySQL")));
    report.other.extend(mysql_users.difference(&redis).map(|u| format!("user {u}: in MySQL, not issued in Redis")));
    if info.remaining + info.issued != info.total {
        report
            .other
            .push(format!("Redis: remaining {} + issued {} != total {}", info.remaining, info.issued, info.total));
    }
    Ok(report)
}

pub async fn sale(sales: &Sales, mysql: &Pool, sale_id: u64, repair: bool) -> anyhow::Result<Report> {
    let Some(info) = sales.info(sale_id).await? else {
        anyhow::ensure!(archive::is_retired(mysql, Kind::Sale, sale_id).await?, "no sale {sale_id} in Redis");
        let orders = queries::order_count(mysql, sale_id).await?;
        return Ok(retired(format!("sale {sale_id}"), format!("{orders} orders")));
    };
    let orders = sales.orders(sale_id).await?;
    let stored: HashMap<u64, queries::OrderState> =
        queries::order_states(mysql, sale_id).await?.into_iter().map(|row| (row.order_id, row)).collect();

    let mut report = Report {
        subject: format!("sale {sale_id}"),
        summary: format!("Redis: {} orders; MySQL: {} orders", orders.len(), stored.len()),
        ..Report::default()
    };
    let mut stale = Vec::new();
    let mut held: BTreeMap<u64, u64> = BTreeMap::new();
    for order in &orders {
        if matches!(order.status, OrderStatus::Reserved | OrderStatus::Paid) {
            for item in &order.items {
                *held.entry(item.sku).or_default() += item.quantity;
            }
        }
        match stored.get(&order.order_id) {
            None => stale.push((order, "missing in MySQL".to_string())),
            // Another order under the same id: never repaired by overwriting.
            Some(row) if (row.user_id, row.created_at) != (order.user_id, order.created_at) => {
                report.other.push(format!(
                    "order {}: MySQL holds another order under this id (user {}, created {} ms) than Redis (user {}, created {} ms)",
                    order.order_id, row.user_id, row.created_at, order.user_id, order.created_at
                ))
            }
            Some(row) if row.version < order.version => stale.push((
                order,
                format!("MySQL has version {}, Redis {} ({})", row.version, order.version, order.status.as_str()),
            )),
            Some(row) if row.version == order.version && row.status != order.status.as_str() => {
                report.other.push(format!(
                    "order {}: MySQL {}, Redis {} at the same version",
                    order.order_id,
                    row.status,
                    order.status.as_str()
                ))
            }
            Some(_) => {}
        }
    }
    if repair && !stale.is_empty() {
        let events: Vec<Event> = stale
            .iter()
            .map(|(o, _)| {
                let event_id = format!("repair-s{sale_id}-o{}-v{}", o.order_id, o.version);
                Event::Order(OrderChanged { event_id, order: (*o).clone() })
            })
            .collect();
        crate::sink::rows::write_repair(mysql, &events).await?;
        return Box::pin(sale(sales, mysql, sale_id, false)).await;
    }
    report.repairable.extend(stale.iter().map(|(o, why)| format!("order {}: {why}", o.order_id)));
    let known: BTreeSet<u64> = orders.iter().map(|o| o.order_id).collect();
    // A released order MySQL has may have been forgotten by Redis (see `sales::forget`).
    let released = |row: &queries::OrderState| matches!(row.status.as_str(), "cancelled" | "expired");
    report.other.extend(
        stored
            .iter()
            .filter(|(id, row)| !known.contains(id) && !released(row))
            .map(|(id, _)| format!("order {id}: in MySQL, not in Redis")),
    );
    report.other.extend(queries::order_conflicts(mysql, sale_id).await?.into_iter().map(|(event, order, user)| {
        format!("order {order}: the sink refused event {event} (user {user}): its id names another order's row (order_conflicts)")
    }));

    // Stock adds up in Redis: supplied - remaining == units held by live orders.
    for sku in &info.skus {
        let live = held.get(&sku.sku).copied().unwrap_or(0);
        if sku.stock.checked_sub(sku.remaining) != Some(live) {
            report.other.push(format!(
                "SKU {}: supplied {} - remaining {} != {live} held by reserved/paid orders",
                sku.sku, sku.stock, sku.remaining
            ));
        }
    }
    // And MySQL's lines agree with Redis's (only once every order row is there).
    if report.repairable.is_empty() {
        let mysql_held: BTreeMap<u64, u64> = queries::held_units(mysql, sale_id).await?.into_iter().collect();
        held.retain(|_, units| *units > 0);
        if mysql_held != held {
            report.other.push(format!("units held per SKU: Redis {held:?}, MySQL {mysql_held:?}"));
        }
    }
    Ok(report)
}
