//! `lua/seed_coupon.lua`: create or replace a campaign's stock and window.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::unexpected;
use crate::keys::CouponKeys;

pub struct SeedCoupon(pub(super) Script, pub(super) Ack);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMode {
    /// Fail with `Exists` when the campaign is already in Redis.
    Create,
    /// Reset stock and issued users.
    Replace,
}

/// A campaign's stock, window (ms since epoch; `ends_at` 0 = never) and discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CampaignSpec {
    pub total: u64,
    pub starts_at: u64,
    pub ends_at: u64,
    pub discount: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedOutcome {
    Created,
    Replaced,
    Exists,
    /// `--replace` with another bucket count than the campaign has.
    BucketsDiffer,
}

impl SeedCoupon {
    pub async fn call(
        &self,
        client: &Client,
        keys: &CouponKeys,
        coupon_id: u64,
        spec: CampaignSpec,
        mode: SeedMode,
        buckets: u32,
    ) -> Result<SeedOutcome, Error> {
        let CampaignSpec { total, starts_at, ends_at, discount } = spec;
        let mode = match mode {
            SeedMode::Create => "create",
            SeedMode::Replace => "replace",
        };
        let answer: Value = self
            .1
            .evalsha(
                &self.0,
                client,
                vec![keys.meta.as_str(), keys.users.as_str(), keys.used.as_str()],
                vec![
                    total.to_string(),
                    starts_at.to_string(),
                    ends_at.to_string(),
                    mode.to_string(),
                    discount.to_string(),
                    coupon_id.to_string(),
                    buckets.to_string(),
                ],
            )
            .await?;
        match answer.as_str().as_deref() {
            Some("created") => Ok(SeedOutcome::Created),
            Some("replaced") => Ok(SeedOutcome::Replaced),
            Some("exists") => Ok(SeedOutcome::Exists),
            Some("buckets_differ") => Ok(SeedOutcome::BucketsDiffer),
            _ => Err(unexpected("seed_coupon", &answer)),
        }
    }
}
