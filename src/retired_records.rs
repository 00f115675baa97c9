//! What the API answers for campaigns, sales and orders whose keys Redis no
//! longer holds because they retired (see `retirement`), and for released orders
//! Redis forgot (see `sales::forget`): MySQL, which keeps them.
//!
//! Asked only once Redis has said "unknown", so the hot path never waits on
//! MySQL. At most `PERMITS` reads run at once (a flood of unknown ids queues
//! here rather than taking the sink's MySQL connections), and whether an id
//! is retired is remembered for `REMEMBER` (the map is bounded).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use mysql_async::Pool;
use tokio::sync::Semaphore;

use crate::{
    db::archive::{self, Kind, RetiredCampaign},
    order::{Order, OrderStatus},
    scripts::SaleSpec,
};

/// MySQL reads for retired records at once.
const PERMITS: usize = 4;
/// How long "retired or not" is remembered per id.
const REMEMBER: Duration = Duration::from_secs(5);
/// Ids remembered at most (the map starts over beyond).
const MAX_REMEMBERED: usize = 10_000;

/// A MySQL read failed: the API answers 503.
#[derive(Debug, thiserror::Error)]
#[error("MySQL: {0}")]
pub struct Unavailable(String);

pub struct RetiredRecords {
    mysql: Pool,
    permits: Semaphore,
    remembered: Mutex<HashMap<(Kind, u64), (Instant, bool)>>,
}

impl RetiredRecords {
    pub fn new(mysql: Pool) -> Self {
        RetiredRecords { mysql, permits: Semaphore::new(PERMITS), remembered: Mutex::default() }
    }

    /// Whether MySQL holds the campaign or sale as retired.
    pub async fn is_retired(&self, kind: Kind, id: u64) -> Result<bool, Unavailable> {
        if let Some(known) = self.recall(kind, id) {
            return Ok(known);
        }
        let _permit = self.permits.acquire().await.map_err(|e| Unavailable(e.to_string()))?;
        let retired = archive::is_retired(&self.mysql, kind, id).await.map_err(unavailable)?;
        self.remember(kind, id, retired);
        Ok(retired)
    }

    pub async fn campaign(&self, coupon_id: u64) -> Result<Option<RetiredCampaign>, Unavailable> {
        if !self.is_retired(Kind::Coupon, coupon_id).await? {
            return Ok(None);
        }
        let _permit = self.permits.acquire().await.map_err(|e| Unavailable(e.to_string()))?;
        archive::campaign(&self.mysql, coupon_id).await.map_err(unavailable)
    }

    /// The sale's spec and the units its orders hold per SKU.
    pub async fn sale(&self, sale_id: u64) -> Result<Option<(SaleSpec, Vec<(u64, u64)>)>, Unavailable> {
        if !self.is_retired(Kind::Sale, sale_id).await? {
            return Ok(None);
        }
        let _permit = self.permits.acquire().await.map_err(|e| Unavailable(e.to_string()))?;
        archive::sale(&self.mysql, sale_id).await.map_err(unavailable)
    }

    /// An order Redis does not hold: any order of a retired sale, and of a
    /// live sale one released for good (Redis forgets those once MySQL has
    /// them, see `sales::forget`).
    pub async fn order(&self, sale_id: u64, order_id: u64) -> Result<Option<Order>, Unavailable> {
        let retired = self.is_retired(Kind::Sale, sale_id).await?;
        let _permit = self.permits.acquire().await.map_err(|e| Unavailable(e.to_string()))?;
        let order = archive::order(&self.mysql, sale_id, order_id).await.map_err(unavailable)?;
        Ok(order.filter(|o| retired || matches!(o.status, OrderStatus::Cancelled | OrderStatus::Expired)))
    }

    /// Whether `user` holds an unused coupon of the (retired) campaign.
    pub async fn coupon_unused(&self, coupon_id: u64, user_id: u64) -> Result<bool, Unavailable> {
        let _permit = self.permits.acquire().await.map_err(|e| Unavailable(e.to_string()))?;
        archive::coupon_unused(&self.mysql, coupon_id, user_id).await.map_err(unavailable)
    }

    fn recall(&self, kind: Kind, id: u64) -> Option<bool> {
        let remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        remembered.get(&(kind, id)).filter(|(at, _)| at.elapsed() < REMEMBER).map(|(_, retired)| *retired)
    }

    fn remember(&self, kind: Kind, id: u64, retired: bool) {
        let mut remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        if remembered.len() >= MAX_REMEMBERED {
            remembered.clear();
        }
        remembered.insert((kind, id), (Instant::now(), retired));
    }
}

impl From<Unavailable> for crate::error::Error {
    fn from(e: Unavailable) -> Self {
        tracing::warn!(error = %e, "cannot read a retired record");
        crate::error::Error::Unavailable(e.to_string())
    }
}

/// What a retired sale's SKU had left: supplied (`stock`) less the units
/// its paid orders hold (`held`, per SKU) — Redis kept supplied - remaining
/// == units paid orders hold (reconcile checks it).
pub fn retired_remaining(sku: u64, stock: u64, held: &[(u64, u64)]) -> u64 {
    let held = held.iter().find(|(s, _)| *s == sku).map_or(0, |(_, units)| *units);
    stock.saturating_sub(held)
}

fn unavailable(e: impl std::fmt::Display) -> Unavailable {
    Unavailable(e.to_string())
}
