//! Coupon campaigns in Redis, through the typed scripts: the only door the
//! HTTP handlers and the CLI use to campaign state.

use std::sync::Arc;

use fred::prelude::*;

use crate::{
    batch::Batcher,
    caller::WriteError,
    keys::Keys,
    metrics::METRICS,
    scripts::{CampaignSpec, CouponInfo, IssueOutcome, Scripts, SeedMode, SeedOutcome},
    soldout::SoldOut,
    time::now_ms,
};

#[derive(Clone)]
pub struct Coupons {
    redis: Pool,
    keys: Keys,
    scripts: Arc<Scripts>,
    /// Campaigns known to be sold out a moment ago (see `soldout`).
    sold_out: Arc<SoldOut>,
    /// Concurrent issues of one campaign share a script call (see `batch`).
    issues: Batcher<u64, u64, IssueOutcome>,
}

/// Members written per command when a campaign is rebuilt.
const RESTORE_CHUNK: usize = 1000;

/// Users served by one `issue_coupon.lua` call at most.
const MAX_BATCH: usize = 256;

impl Coupons {
    pub fn new(redis: Pool, keys: Keys, scripts: Arc<Scripts>) -> Self {
        let issues = {
            let (redis, keys, scripts) = (redis.clone(), keys.clone(), scripts.clone());
            Batcher::spawn(redis.size(), MAX_BATCH, &METRICS.issue_batch_size, move |coupon_id, users: Vec<u64>| {
                let client = crate::redis::connected(&redis).cloned();
                let (keys, scripts) = (keys.coupon(coupon_id), scripts.clone());
                async move { Ok(scripts.issue_coupon.call(&client?, &keys, coupon_id, &users).await?) }
            })
        };
        Coupons { redis, keys, scripts, sold_out: Arc::default(), issues }
    }

    /// Issues the coupon to the user, unless the request's caller gives up
    /// while it waits for a script call (see `batch`).
    pub async fn issue(&self, coupon_id: u64, user_id: u64) -> Result<IssueOutcome, WriteError> {
        let now = now_ms();
        if self.sold_out.is_set(coupon_id, now) {
            METRICS.outcome("issue_coupon", "sold_out");
            return Ok(IssueOutcome::SoldOut);
        }
        let outcome = self.issues.call(coupon_id, user_id).await?;
        if outcome == IssueOutcome::SoldOut {
            self.sold_out.set(coupon_id, now);
        }
        METRICS.outcome("issue_coupon", outcome.name());
        Ok(outcome)
    }

    pub async fn info(&self, coupon_id: u64) -> Result<Option<CouponInfo>, Error> {
        self.scripts.coupon_info.call(self.redis.next(), &self.keys.coupon(coupon_id)).await
    }

    /// Seeds stock and window, and lists the campaign so the relay reads its
    /// outbox: listed first (a listed id without a campaign is harmless, and
    /// retirement forgets it), and again after, should retirement have
    /// forgotten it meanwhile. The registry is in another slot on a cluster.
    pub async fn seed(&self, coupon_id: u64, spec: CampaignSpec, mode: SeedMode) -> Result<SeedOutcome, Error> {
        let keys = self.keys.coupon(coupon_id);
        let client = self.redis.next();
        let _: () = client.sadd(self.keys.coupons(), coupon_id).await?;
        let seeded = self.scripts.seed_coupon.call(client, &keys, coupon_id, spec, mode).await?;
        let _: () = client.sadd(self.keys.coupons(), coupon_id).await?;
        Ok(seeded)
    }

    /// Rebuilds a campaign Redis lost from what MySQL recorded: closed while
    /// it is filled in (seeded with a start in the far future), then opened
    /// with its own window. Holders, their uses and the use sequence come
    /// back; the remaining stock is the total less the holders.
    pub async fn restore(&self, coupon_id: u64, from: &crate::db::restore::RestoredCampaign) -> Result<u64, Error> {
        let keys = self.keys.coupon(coupon_id);
        let client = self.redis.next();
        let closed = CampaignSpec { starts_at: crate::sales::CLOSED_UNTIL_RESTORED, ..from.spec };
        self.seed(coupon_id, closed, SeedMode::Replace).await?;
        for users in from.users.chunks(RESTORE_CHUNK) {
            let _: () = client.sadd(&keys.users, users.to_vec()).await?;
        }
        for used in from.used.chunks(RESTORE_CHUNK) {
            let _: () = client.hset(&keys.used, used.to_vec()).await?;
        }
        let remaining = from.spec.total.saturating_sub(from.users.len() as u64);
        let _: () = client.hset(&keys.meta, [("remaining", remaining), ("use_seq", from.use_seq)]).await?;
        // A relay that read the lost stream reads it again with its group.
        let group: Result<(), Error> = client.xgroup_create(&keys.outbox, crate::keys::OUTBOX_GROUP, "0", true).await;
        match group {
            Err(e) if !e.details().starts_with("BUSYGROUP") => return Err(e),
            _ => {}
        }
        let _: () = client.hset(&keys.meta, ("starts_at", from.spec.starts_at)).await?;
        Ok(remaining)
    }

    /// Every campaign id Redis knows.
    pub async fn ids(&self) -> Result<Vec<u64>, Error> {
        let mut ids: Vec<u64> = self.redis.smembers(self.keys.coupons()).await?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// Outbox entries read by a relay but not yet acknowledged.
    pub async fn outbox_pending(&self, coupon_id: u64) -> Result<u64, Error> {
        let summary: Value = self
            .redis
            .xpending(self.keys.coupon(coupon_id).outbox, crate::keys::OUTBOX_GROUP, ())
            .await
            .or_else(|e| if e.details().starts_with("NOGROUP") { Ok(Value::Null) } else { Err(e) })?;
        Ok(match summary {
            Value::Array(parts) => parts.first().and_then(|v| v.as_u64()).unwrap_or(0),
            _ => 0,
        })
    }

    /// Entries in the campaign's outbox (not yet acknowledged by Kafka).
    pub async fn outbox_len(&self, coupon_id: u64) -> Result<u64, Error> {
        self.redis.next().xlen(self.keys.coupon(coupon_id).outbox).await
    }

    /// Every user Redis has issued the coupon to.
    pub async fn users(&self, coupon_id: u64) -> Result<Vec<u64>, Error> {
        self.redis.next().smembers(self.keys.coupon(coupon_id).users).await
    }
}
