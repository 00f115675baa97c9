//! `lua/sale_info.lua`: a consistent snapshot of one sale.

use fred::{prelude::*, types::scripts::Script};

use super::{int, unexpected};
use crate::keys::SaleKeys;

pub struct SaleInfoScript(pub(super) Script);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleInfo {
    pub starts_at: u64,
    pub ends_at: u64,
    pub per_user_limit: u64,
    pub hold_ms: u64,
    pub outbox_len: u64,
    /// Buckets the stock is split over (see `sales::moves`); 1: none.
    pub buckets: u32,
    /// Sorted by SKU.
    pub skus: Vec<SkuInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkuInfo {
    pub sku: u64,
    pub price: u64,
    pub remaining: u64,
    /// Supplied in all (seed + top-ups).
    pub stock: u64,
}

impl SaleInfoScript {
    pub async fn call(&self, client: &Client, keys: &SaleKeys) -> Result<Option<SaleInfo>, Error> {
        let answer: Vec<Value> = self
            .0
            .evalsha_with_reload(
                client,
                vec![
                    keys.meta.as_str(),
                    keys.prices.as_str(),
                    keys.stock.as_str(),
                    keys.initial.as_str(),
                    keys.outbox.as_str(),
                ],
                Vec::<String>::new(),
            )
            .await?;
        if answer.is_empty() {
            return Ok(None);
        }
        let n: Vec<u64> = answer.iter().map(|v| int(v).unwrap_or(-1).max(0) as u64).collect();
        if n.len() < 6 || !(n.len() - 6).is_multiple_of(4) {
            return Err(unexpected("sale_info", &Value::Array(answer)));
        }
        let mut skus: Vec<SkuInfo> =
            n[6..].chunks(4).map(|c| SkuInfo { sku: c[0], price: c[1], remaining: c[2], stock: c[3] }).collect();
        skus.sort_by_key(|s| s.sku);
        Ok(Some(SaleInfo {
            starts_at: n[0],
            ends_at: n[1],
            per_user_limit: n[2],
            hold_ms: n[3],
            outbox_len: n[4],
            buckets: n[5].clamp(1, u64::from(crate::buckets::MAX_BUCKETS)) as u32,
            skus,
        }))
    }
}
