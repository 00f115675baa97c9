//! MySQL's side of retirement: whether every event of an ended campaign or
//! sale is written (what `retirement` checks before it lets one go), the
//! `retired_at` marks, and the records the API answers from once Redis has
//! let a campaign or sale go.

use mysql_async::{prelude::*, Pool};

use super::{epoch_ms as ms, queries, restore};
use crate::{order::Order, scripts::SaleSpec};

/// Which table a retirement mark goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Coupon,
    Sale,
}

/// (orders, orders still `reserved`) MySQL holds for a sale. An order's
/// states are reserved, then one of paid / cancelled / expired for good: a
/// sale whose Redis orders are all settled is written once MySQL has as
/// many orders and none reserved.
pub async fn order_tally(pool: &Pool, sale_id: u64) -> Result<(u64, u64), mysql_async::Error> {
    let row: Option<(u64, u64)> = pool
        .get_conn()
        .await?
        .exec_first(
            "SELECT COUNT(*), CAST(COALESCE(SUM(status = 'reserved'), 0) AS UNSIGNED) FROM orders WHERE sale_id = ?",
            (sale_id,),
        )
        .await?;
    Ok(row.unwrap_or((0, 0)))
}

/// Marks the campaign or sale retired (the first mark stays).
pub async fn mark_retired(pool: &Pool, kind: Kind, id: u64) -> Result<(), mysql_async::Error> {
    let sql = match kind {
        Kind::Coupon => "UPDATE coupon_campaigns SET retired_at = COALESCE(retired_at, NOW(3)) WHERE coupon_id = ?",
        Kind::Sale => "UPDATE sales SET retired_at = COALESCE(retired_at, NOW(3)) WHERE sale_id = ?",
    };
    pool.get_conn().await?.exec_drop(sql, (id,)).await
}

/// Whether MySQL holds the campaign or sale as retired.
pub async fn is_retired(pool: &Pool, kind: Kind, id: u64) -> Result<bool, mysql_async::Error> {
    let sql = match kind {
        Kind::Coupon => "SELECT 1 FROM coupon_campaigns WHERE coupon_id = ? AND retired_at IS NOT NULL",
        Kind::Sale => "SELECT 1 FROM sales WHERE sale_id = ? AND retired_at IS NOT NULL",
    };
    let found: Option<u8> = pool.get_conn().await?.exec_first(sql, (id,)).await?;
    Ok(found.is_some())
}

/// (retired campaigns, retired sales).
pub async fn retired_counts(pool: &Pool) -> Result<(u64, u64), mysql_async::Error> {
    let row: Option<(u64, u64)> = pool
        .get_conn()
        .await?
        .query_first(
            "SELECT (SELECT COUNT(*) FROM coupon_campaigns WHERE retired_at IS NOT NULL), \
             (SELECT COUNT(*) FROM sales WHERE retired_at IS NOT NULL)",
        )
        .await?;
    Ok(row.unwrap_or((0, 0)))
}

/// A retired campaign as MySQL holds it.
pub struct RetiredCampaign {
    pub total: u64,
    /// Coupons issued (rows the sink wrote).
    pub issued: u64,
    pub starts_at: u64,
    /// 0: never (a retired campaign always has an end).
    pub ends_at: u64,
}

impl RetiredCampaign {
    /// Redis kept remaining + issued == total (reconcile checks it).
    pub fn remaining(&self) -> u64 {
        self.total.saturating_sub(self.issued)
    }
}

pub async fn campaign(pool: &Pool, coupon_id: u64) -> Result<Option<RetiredCampaign>, mysql_async::Error> {
    let row: Option<(u64, u64, Option<u64>)> = pool
        .get_conn()
        .await?
        .exec_first(
            format!(
                "SELECT total, {}, {} FROM coupon_campaigns WHERE coupon_id = ? AND retired_at IS NOT NULL",
                ms("starts_at"),
                ms("ends_at")
            ),
            (coupon_id,),
        )
        .await?;
    let Some((total, starts_at, ends_at)) = row else { return Ok(None) };
    let issued = queries::issued_count(pool, coupon_id).await?;
    Ok(Some(RetiredCampaign { total, issued, starts_at, ends_at: ends_at.unwrap_or(0) }))
}

/// A retired sale: its spec (stock = supplied in all) and, per SKU, the
/// units its paid orders hold (none is reserved any more).
pub async fn sale(pool: &Pool, sale_id: u64) -> anyhow::Result<Option<(SaleSpec, Vec<(u64, u64)>)>> {
    if !is_retired(pool, Kind::Sale, sale_id).await? {
        return Ok(None);
    }
    let Some(spec) = restore::sale(pool, sale_id).await? else { return Ok(None) };
    Ok(Some((spec, queries::held_units(pool, sale_id).await?)))
}

/// An order as MySQL keeps it (the caller decides whether MySQL answers for it).
pub async fn order(pool: &Pool, sale_id: u64, order_id: u64) -> anyhow::Result<Option<Order>> {
    restore::order(pool, sale_id, order_id).await
}

/// Whether `user` was issued the coupon and no order holds it: what
/// `reserve_order.lua` answered `coupon_expired` for once the campaign ended.
pub async fn coupon_unused(pool: &Pool, coupon_id: u64, user_id: u64) -> Result<bool, mysql_async::Error> {
    let found: Option<u8> = pool
        .get_conn()
        .await?
        .exec_first(
            "SELECT 1 FROM coupon_issues WHERE coupon_id = ? AND user_id = ? AND event_id <> '' \
             AND used_order_id IS NULL",
            (coupon_id, user_id),
        )
        .await?;
    Ok(found.is_some())
}
