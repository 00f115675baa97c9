//! `lua/adjust_stock.lua`: set or add one SKU's remaining stock mid-sale.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::{int, text, unexpected};
use crate::keys::SaleKeys;

pub struct AdjustStock(pub(super) Script, pub(super) Ack);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChange {
    /// Remaining becomes N.
    Set(u64),
    /// Remaining grows by N.
    Add(u64),
}

impl AdjustStock {
    /// (remaining, supplied in all) after the change, or None for an unknown SKU.
    pub async fn call(
        &self,
        client: &Client,
        keys: &SaleKeys,
        sku: u64,
        change: StockChange,
    ) -> Result<Option<(u64, u64)>, Error> {
        let (mode, n) = match change {
            StockChange::Set(n) => ("set", n),
            StockChange::Add(n) => ("add", n),
        };
        let answer: Vec<Value> = self
            .1
            .evalsha(
                &self.0,
                client,
                vec![keys.prices.as_str(), keys.stock.as_str(), keys.initial.as_str()],
                vec![mode.to_string(), sku.to_string(), n.to_string()],
            )
            .await?;
        match (text(answer.first()).as_deref(), answer.get(1).and_then(int), answer.get(2).and_then(int)) {
            (Some("ok"), Some(remaining), Some(initial)) => Ok(Some((remaining.max(0) as u64, initial.max(0) as u64))),
            (Some("unknown_sku"), ..) => Ok(None),
            _ => Err(unexpected("adjust_stock", &Value::Array(answer))),
        }
    }
}
