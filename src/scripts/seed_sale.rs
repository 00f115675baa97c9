//! `lua/seed_sale.lua`: create or replace a sale's window, limits and SKUs.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::{unexpected, SeedMode, SeedOutcome};
use crate::keys::SaleKeys;

pub struct SeedSale(pub(super) Script, pub(super) Ack);

/// A sale as ops define it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleSpec {
    pub starts_at: u64,
    /// 0: never closes.
    pub ends_at: u64,
    /// Most units one user may hold (reserved + paid) in this sale; 0: no limit.
    pub per_user_limit: u64,
    /// How long a reservation waits for payment.
    pub hold_ms: u64,
    pub skus: Vec<SkuSpec>,
    /// Buckets the stock is split over (see `sales::moves`); 1: none.
    pub buckets: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkuSpec {
    pub sku: u64,
    pub price: u64,
    pub stock: u64,
}

impl SeedSale {
    /// Seeds one bucket (the sale's own keys when it has none) with
    /// `stock[i]` units of `spec.skus[i]`; `epoch` names this seeding (the
    /// same for every bucket of it, see `sales::moves`).
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        client: &Client,
        keys: &SaleKeys,
        sale_id: u64,
        spec: &SaleSpec,
        stock: &[u64],
        epoch: u64,
        mode: SeedMode,
    ) -> Result<SeedOutcome, Error> {
        let k = keys;
        let keys = vec![&k.meta, &k.prices, &k.stock, &k.initial, &k.bought, &k.orders, &k.deadlines, &k.idem, &k.seq];
        let mode = match mode {
            SeedMode::Create => "create",
            SeedMode::Replace => "replace",
        };
        let mut args = vec![
            spec.starts_at.to_string(),
            spec.ends_at.to_string(),
            spec.per_user_limit.to_string(),
            spec.hold_ms.to_string(),
            mode.to_string(),
            sale_id.to_string(),
            spec.buckets.max(1).to_string(),
            epoch.to_string(),
        ];
        if stock.len() != spec.skus.len() {
            return Err(Error::new(ErrorKind::InvalidArgument, "one stock figure per SKU"));
        }
        for (s, stock) in spec.skus.iter().zip(stock) {
            args.extend([s.sku.to_string(), s.price.to_string(), stock.to_string()]);
        }
        let mut keys: Vec<&str> = keys.into_iter().map(String::as_str).collect();
        keys.extend([k.idem_expiry.as_str(), k.moves.as_str(), k.received.as_str(), k.released.as_str()]);
        let answer: Value = self.1.evalsha(&self.0, client, keys, args).await?;
        match answer.as_str().as_deref() {
            Some("created") => Ok(SeedOutcome::Created),
            Some("replaced") => Ok(SeedOutcome::Replaced),
            Some("exists") => Ok(SeedOutcome::Exists),
            _ => Err(unexpected("seed_sale", &answer)),
        }
    }
}
