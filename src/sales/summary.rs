//! A bucketed sale's summary (every bucket's stock summed), shared for a
//! moment: `GET /v1/sales/{id}` and the sold-out check would otherwise read
//! every bucket per request. This process's own changes to a sale drop its
//! summary at once; another instance's show within [`TTL_MS`].

use std::{collections::HashMap, sync::Mutex};

use fred::error::Error;

use super::Sales;
use crate::{buckets::Of, scripts::SaleInfo, time::now_ms};

/// How long a summary is reused.
pub const TTL_MS: u64 = 250;
/// Summaries kept at most (forgotten all at once past it).
const MAX_SALES: usize = 10_000;

#[derive(Default)]
pub struct Summaries {
    entries: Mutex<HashMap<u64, (u64, SaleInfo)>>,
}

impl Summaries {
    pub fn get(&self, sale_id: u64, now_ms: u64) -> Option<SaleInfo> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&sale_id).filter(|(until, _)| *until > now_ms).map(|(_, info)| info.clone())
    }

    pub fn put(&self, sale_id: u64, info: SaleInfo, now_ms: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_SALES {
            entries.clear();
        }
        entries.insert(sale_id, (now_ms + TTL_MS, info));
    }

    pub fn forget(&self, sale_id: u64) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(&sale_id);
    }
}

impl Sales {
    /// [`Sales::info`] for the API: with buckets, shared for a moment.
    pub async fn summary(&self, sale_id: u64) -> Result<Option<SaleInfo>, Error> {
        if self.placement.buckets().believed(&self.keys, Of::Sale, sale_id) <= 1 {
            return self.info(sale_id).await;
        }
        let now = now_ms();
        if let Some(info) = self.summaries.get(sale_id, now) {
            return Ok(Some(info));
        }
        let info = self.info(sale_id).await?;
        if let Some(info) = &info {
            self.summaries.put(sale_id, info.clone(), now);
        }
        Ok(info)
    }
}
