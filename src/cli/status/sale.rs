//! One sale's status: SKU stock and orders by status as Redis holds them,
//! the outbox, and the order rows MySQL holds by status.

use serde::Serialize;

use crate::{
    db::{
        archive::{self, Kind},
        queries, restore,
    },
    order::OrderStatus,
    sales::Sales,
};

#[derive(Serialize)]
pub struct SaleStatus {
    sale_id: u64,
    /// False when MySQL has the sale and Redis does not: it retired (see
    /// `retired_records`), or Redis lost it (`stock load` rebuilds it).
    in_redis: bool,
    /// MySQL holds it as retired.
    retired: bool,
    outbox_len: u64,
    skus: Vec<SkuStatus>,
    redis_orders: OrderCounts,
    mysql_orders: OrderCounts,
}

#[derive(Serialize)]
struct SkuStatus {
    sku: u64,
    price: u64,
    /// Supplied in all (seed + top-ups).
    supplied: u64,
    remaining: u64,
    /// Held by reserved and paid orders: supplied - remaining.
    held: u64,
}

/// Orders by status; every status present, zero or not.
#[derive(Serialize, Default)]
struct OrderCounts {
    reserved: u64,
    paid: u64,
    cancelled: u64,
    expired: u64,
}

impl OrderCounts {
    fn add(&mut self, status: OrderStatus, n: u64) {
        *match status {
            OrderStatus::Reserved => &mut self.reserved,
            OrderStatus::Paid => &mut self.paid,
            OrderStatus::Cancelled => &mut self.cancelled,
            OrderStatus::Expired => &mut self.expired,
        } += n;
    }
}

impl std::fmt::Display for OrderCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (r, p, c, e) = (self.reserved, self.paid, self.cancelled, self.expired);
        write!(f, "{r} reserved, {p} paid, {c} cancelled, {e} expired")
    }
}

pub async fn of(sales: &Sales, mysql: &mysql_async::Pool, sale_id: u64) -> anyhow::Result<SaleStatus> {
    let info = sales.info(sale_id).await?;
    let mut mysql_orders = OrderCounts::default();
    for (status, n) in restore::order_counts(mysql, sale_id).await? {
        mysql_orders.add(status.parse().map_err(|e| anyhow::anyhow!("MySQL, sale {sale_id}: {e}"))?, n);
    }
    let Some(info) = info else {
        anyhow::ensure!(queries::sale_exists(mysql, sale_id).await?, "no sale {sale_id} in Redis or MySQL");
        let skus = Vec::new();
        return Ok(SaleStatus {
            sale_id,
            in_redis: false,
            retired: archive::is_retired(mysql, Kind::Sale, sale_id).await?,
            outbox_len: 0,
            skus,
            redis_orders: OrderCounts::default(),
            mysql_orders,
        });
    };
    let mut redis_orders = OrderCounts::default();
    for order in sales.orders(sale_id).await? {
        redis_orders.add(order.status, 1);
    }
    let skus = info
        .skus
        .iter()
        .map(|s| SkuStatus {
            sku: s.sku,
            price: s.price,
            supplied: s.stock,
            remaining: s.remaining,
            held: s.stock.saturating_sub(s.remaining),
        })
        .collect();
    let retired = archive::is_retired(mysql, Kind::Sale, sale_id).await?;
    Ok(SaleStatus { sale_id, in_redis: true, retired, outbox_len: info.outbox_len, skus, redis_orders, mysql_orders })
}

pub fn print(s: &SaleStatus) {
    if !s.in_redis && s.retired {
        println!("\nsale {}: retired (Redis let it go; MySQL keeps it)", s.sale_id);
        println!("  orders in MySQL: {}", s.mysql_orders);
        return;
    }
    if !s.in_redis {
        println!(
            "\nsale {}: not in Redis (`flashsale stock load --sale {}` rebuilds it from MySQL)",
            s.sale_id, s.sale_id
        );
        println!("  orders in MySQL: {}", s.mysql_orders);
        return;
    }
    let retired = if s.retired { " (retired: its keys go FLASHSALE_RETAIN_AFTER_END after its end)" } else { "" };
    println!("\nsale {}: outbox {}{retired}", s.sale_id, s.outbox_len);
    println!("  orders in Redis: {}", s.redis_orders);
    println!("  orders in MySQL: {}", s.mysql_orders);
    println!("{:>10} {:>12} {:>10} {:>10} {:>10}", "sku", "price", "supplied", "remaining", "held");
    for k in &s.skus {
        println!("{:>10} {:>12} {:>10} {:>10} {:>10}", k.sku, k.price, k.supplied, k.remaining, k.held);
    }
}
