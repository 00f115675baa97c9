//! Released orders leave Redis once MySQL has them: a reserve -> cancel loop
//! must not grow a sale's `orders` hash for as long as the sale lives. The
//! sweeper forgets, per sale and bucket, orders released longer than the
//! configured while ago that MySQL holds as released; lookups that miss in
//! Redis are answered from MySQL (see `retired_records`).

use fred::prelude::*;
use mysql_async::Pool;

use super::Sales;
use crate::{buckets, time::now_ms};

impl Sales {
    /// Forgets up to `limit` orders per bucket of `sale_id` released at least
    /// `after_ms` ago and held by MySQL as released; how many were forgotten.
    pub async fn forget_released(&self, sale_id: u64, mysql: &Pool, after_ms: u64, limit: u64) -> anyhow::Result<u64> {
        let n = self.buckets(sale_id).await?;
        let before = now_ms().saturating_sub(after_ms);
        let mut forgotten = 0;
        for keys in buckets::all_of_sale(&self.keys, sale_id, n) {
            let client = self.redis.next();
            let due: Vec<u64> =
                client.zrangebyscore(&keys.released, "-inf", before as f64, false, Some((0, limit as i64))).await?;
            if due.is_empty() {
                continue;
            }
            // Not yet in MySQL: looked at again later, behind the newer ones,
            // so an id MySQL never gets (a conflict) cannot hold the rest up.
            let stored = crate::db::queries::released_orders(mysql, sale_id, &due).await?;
            if !stored.is_empty() {
                forgotten += self.scripts.forget_orders.call(client, &keys, &stored).await?;
            }
            let later: Vec<(f64, u64)> =
                due.iter().filter(|id| !stored.contains(id)).map(|&id| (now_ms() as f64, id)).collect();
            if !later.is_empty() {
                // XX: only ids still listed.
                let _: () = client.zadd(&keys.released, Some(SetOptions::XX), None, false, false, later).await?;
            }
        }
        Ok(forgotten)
    }
}
