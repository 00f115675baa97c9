//! `lua/coupon_info.lua`: a consistent snapshot of one campaign.

use fred::{prelude::*, types::scripts::Script};

use super::{int, unexpected};
use crate::keys::CouponKeys;

pub struct CouponInfoScript(pub(super) Script);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CouponInfo {
    pub total: u64,
    pub remaining: u64,
    pub issued: u64,
    pub starts_at: u64,
    /// 0 when the campaign never closes.
    pub ends_at: u64,
    /// Outbox entries not yet acknowledged by Kafka.
    pub outbox_len: u64,
    /// What an order saves with this coupon (minor units).
    pub discount: u64,
    /// Buckets the campaign keeps its stock in (see `buckets`); 1 for most.
    pub buckets: u32,
}

impl CouponInfoScript {
    pub async fn call(&self, client: &Client, keys: &CouponKeys) -> Result<Option<CouponInfo>, Error> {
        let answer: Vec<Value> = self
            .0
            .evalsha_with_reload(
                client,
                vec![keys.meta.as_str(), keys.users.as_str(), keys.outbox.as_str()],
                Vec::<String>::new(),
            )
            .await?;
        if answer.is_empty() {
            return Ok(None);
        }
        let n: Vec<u64> = answer.iter().filter_map(int).map(|i| i.max(0) as u64).collect();
        let [total, remaining, issued, starts_at, ends_at, outbox_len, discount, buckets] = n[..] else {
            return Err(unexpected("coupon_info", &Value::Array(answer)));
        };
        let buckets = buckets.clamp(1, u64::from(crate::buckets::MAX_BUCKETS)) as u32;
        Ok(Some(CouponInfo { total, remaining, issued, starts_at, ends_at, outbox_len, discount, buckets }))
    }
}
