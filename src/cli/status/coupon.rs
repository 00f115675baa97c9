//! One campaign's status: Redis stock and outbox against MySQL rows (only
//! MySQL's once it retired and Redis let it go).

use serde::Serialize;

use crate::{
    coupons::Coupons,
    db::{archive, queries},
};

#[derive(Serialize)]
pub struct CouponStatus {
    coupon_id: u64,
    total: u64,
    remaining: u64,
    issued: u64,
    outbox_len: u64,
    outbox_pending: u64,
    mysql_rows: u64,
    /// Retired, and Redis let it go: the figures are MySQL's.
    retired: bool,
}

pub async fn of(coupons: &Coupons, mysql: &mysql_async::Pool, coupon_id: u64) -> anyhow::Result<CouponStatus> {
    let Some(info) = coupons.info(coupon_id).await? else {
        let Some(c) = archive::campaign(mysql, coupon_id).await? else {
            anyhow::bail!("no coupon campaign {coupon_id} in Redis, nor retired in MySQL");
        };
        return Ok(CouponStatus {
            coupon_id,
            total: c.total,
            remaining: c.remaining(),
            issued: c.issued,
            outbox_len: 0,
            outbox_pending: 0,
            mysql_rows: c.issued,
            retired: true,
        });
    };
    Ok(CouponStatus {
        coupon_id,
        total: info.total,
        remaining: info.remaining,
        issued: info.issued,
        outbox_len: info.outbox_len,
        outbox_pending: coupons.outbox_pending(coupon_id).await?,
        mysql_rows: queries::issued_count(mysql, coupon_id).await?,
        retired: false,
    })
}

pub fn print(rows: &[CouponStatus]) {
    println!(
        "{:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>10}",
        "coupon", "total", "remaining", "issued", "outbox", "pending", "mysql"
    );
    for c in rows {
        println!(
            "{:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>10}",
            c.coupon_id, c.total, c.remaining, c.issued, c.outbox_len, c.outbox_pending, c.mysql_rows
        );
        if c.retired {
            println!("{:>10} (retired: Redis let it go; MySQL's figures)", "");
        }
    }
}
