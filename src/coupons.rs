//! Coupon campaigns in Redis, through the typed scripts: the only door the
//! HTTP handlers and the CLI use to campaign state.

use std::sync::Arc;

use fred::prelude::*;

use crate::{
    batch::Batcher,
    buckets::{self, Of},
    caller::WriteError,
    keys::Keys,
    metrics::METRICS,
    placement::{BucketRouter, Placement},
    scripts::{CampaignSpec, CouponInfo, IssueCall, IssueOutcome, Scripts, SeedMode, SeedOutcome},
    soldout::SoldOut,
    time::now_ms,
};

#[derive(Clone)]
pub struct Coupons {
    redis: Pool,
    keys: Keys,
    scripts: Arc<Scripts>,
    /// The bucket counts learnt (see `placement`).
    buckets: BucketRouter,
    /// Campaigns known to be sold out a moment ago (see `soldout`).
    sold_out: Arc<SoldOut>,
    /// Concurrent issues of one campaign bucket share a script call (see
    /// `batch`): keyed by campaign, bucket and the bucket count believed;
    /// `Err(n)`: the campaign has n buckets, nothing was done. Each user
    /// comes with whether they showed a valid admission (a waiting room's).
    issues: IssueBatcher,
}

/// (campaign, bucket, bucket count believed) -> (user, admitted) -> outcome.
type IssueBatcher = Batcher<(u64, u32, u32), (u64, bool), Result<IssueOutcome, u32>>;

/// Members written per command when a campaign is rebuilt.
const RESTORE_CHUNK: usize = 1000;

/// Users served by one `issue_coupon.lua` call at most.
const MAX_BATCH: usize = 256;

impl Coupons {
    pub fn new(redis: Pool, keys: Keys, scripts: Arc<Scripts>, placement: &Placement) -> Self {
        let issues = {
            let (redis, keys, scripts) = (redis.clone(), keys.clone(), scripts.clone());
            Batcher::spawn(
                redis.size(),
                MAX_BATCH,
                &METRICS.issue_batch_size,
                move |(coupon_id, bucket, n): (u64, u32, u32), users: Vec<(u64, bool)>| {
                    let client = crate::redis::connected(&redis).cloned();
                    let (keys, scripts) = (keys.coupon_bucket(coupon_id, bucket), scripts.clone());
                    async move {
                        Ok(match scripts.issue_coupon.call(&client?, &keys, coupon_id, n, &users).await? {
                            IssueCall::Outcomes(outcomes) => outcomes.into_iter().map(Ok).collect(),
                            IssueCall::Buckets(actual) => vec![Err(actual); users.len()],
                        })
                    }
                },
            )
        };
        Coupons { redis, keys, scripts, buckets: placement.buckets().clone(), sold_out: Arc::default(), issues }
    }

    /// Issues the coupon to the user, unless the request's caller gives up
    /// while it waits for a script call (see `batch`). `admitted`: the caller
    /// showed a valid admission (a campaign with a waiting room needs one).
    pub async fn issue(&self, coupon_id: u64, user_id: u64, admitted: bool) -> Result<IssueOutcome, WriteError> {
        let now = now_ms();
        if self.sold_out.is_set(coupon_id, now) {
            return Ok(IssueOutcome::SoldOut);
        }
        let outcome = self.issue_in_buckets(coupon_id, user_id, admitted).await?;
        if outcome == IssueOutcome::SoldOut {
            self.sold_out.set(coupon_id, now);
        }
        Ok(outcome)
    }

    /// Walks the campaign's buckets from the user's own (see `buckets`):
    /// the first that issues, or issued before, answers; sold out only when
    /// every one is.
    async fn issue_in_buckets(&self, coupon_id: u64, user_id: u64, admitted: bool) -> Result<IssueOutcome, WriteError> {
        let mut n = self.buckets.believed(&self.keys, Of::Coupon, coupon_id);
        'walk: loop {
            for bucket in buckets::walk(user_id, n) {
                match self.issues.call((coupon_id, bucket, n), (user_id, admitted)).await? {
                    Err(actual) => {
                        self.buckets.learn(&self.keys, Of::Coupon, coupon_id, actual);
                        n = actual;
                        continue 'walk;
                    }
                    Ok(IssueOutcome::SoldOut) => continue,
                    Ok(outcome) => return Ok(outcome),
                }
            }
            return Ok(IssueOutcome::SoldOut);
        }
    }

    /// The campaign; with buckets, their stock, holders and outboxes added up.
    pub async fn info(&self, coupon_id: u64) -> Result<Option<CouponInfo>, Error> {
        let client = self.redis.next();
        let Some(mut info) = self.scripts.coupon_info.call(client, &self.keys.coupon(coupon_id)).await? else {
            return Ok(None);
        };
        for bucket in 1..info.buckets {
            let keys = self.keys.coupon_bucket(coupon_id, bucket);
            if let Some(part) = self.scripts.coupon_info.call(client, &keys).await? {
                info.total += part.total;
                info.remaining += part.remaining;
                info.issued += part.issued;
                info.outbox_len += part.outbox_len;
            }
        }
        Ok(Some(info))
    }

    /// Seeds stock and window, and lists the campaign so the relay reads its
    /// outbox: listed first (a listed id without a campaign is harmless, and
    /// retirement forgets it), and again after, should retirement have
    /// forgotten it meanwhile. The registry is in another slot on a cluster.
    ///
    /// With `buckets` > 1 the stock is split over that many buckets (see
    /// `buckets`); the other buckets are seeded before the campaign's own
    /// keys, whose existence is the campaign's.
    pub async fn seed(
        &self,
        coupon_id: u64,
        spec: CampaignSpec,
        mode: SeedMode,
        buckets: u32,
    ) -> Result<SeedOutcome, Error> {
        let n = buckets.clamp(1, buckets::MAX_BUCKETS);
        let client = self.redis.next();
        let base = self.keys.coupon(coupon_id);
        if n > 1 {
            let (exists, had): (bool, Option<u32>) = {
                let pipe = client.pipeline();
                let _: () = pipe.exists(&base.meta).await?;
                let _: () = pipe.hget(&base.meta, "buckets").await?;
                pipe.all().await?
            };
            match mode {
                SeedMode::Create if exists => return Ok(SeedOutcome::Exists),
                SeedMode::Replace if exists && had.unwrap_or(1) != n => return Ok(SeedOutcome::BucketsDiffer),
                _ => {}
            }
        }
        let _: () = client.sadd(self.keys.coupons(), coupon_id).await?;
        let shares = buckets::shares(spec.total, n);
        for (bucket, keys) in buckets::all(&self.keys, coupon_id, n).iter().enumerate().skip(1) {
            let part = CampaignSpec { total: shares[bucket], ..spec };
            self.scripts.seed_coupon.call(client, keys, coupon_id, part, SeedMode::Replace, n).await?;
        }
        let own = CampaignSpec { total: shares[0], ..spec };
        let seeded = self.scripts.seed_coupon.call(client, &base, coupon_id, own, mode, n).await?;
        let _: () = client.sadd(self.keys.coupons(), coupon_id).await?;
        if seeded != SeedOutcome::BucketsDiffer {
            self.buckets.learn(&self.keys, Of::Coupon, coupon_id, n);
        }
        Ok(seeded)
    }

    /// Rebuilds a campaign Redis lost from what MySQL recorded: closed while
    /// it is filled in (seeded with a start in the far future), then opened
    /// with its own window. Holders, their uses and the use sequence come
    /// back; the remaining stock is the total less the holders. With
    /// buckets, each holder goes back to the first bucket of its walk (where
    /// every later walk of it looks first) and the remaining stock is shared out.
    pub async fn restore(&self, coupon_id: u64, from: &crate::db::restore::RestoredCampaign) -> Result<u64, Error> {
        let n = from.buckets.clamp(1, buckets::MAX_BUCKETS);
        let all = buckets::all(&self.keys, coupon_id, n);
        let client = self.redis.next();
        let closed = CampaignSpec { starts_at: crate::sales::CLOSED_UNTIL_RESTORED, ..from.spec };
        // Another bucket count in Redis is refused here: the keys must go first.
        if self.seed(coupon_id, closed, SeedMode::Replace, n).await? == SeedOutcome::BucketsDiffer {
            let keys: Vec<String> = buckets::all(
                &self.keys,
                coupon_id,
                self.buckets.read(client, &self.keys, Of::Coupon, coupon_id).await?,
            )
            .iter()
            .flat_map(|k| [k.meta.clone(), k.users.clone()])
            .collect();
            for key in keys {
                let _: () = client.del(key).await?;
            }
            self.seed(coupon_id, closed, SeedMode::Replace, n).await?;
        }
        let mut homes: Vec<Vec<u64>> = vec![Vec::new(); n as usize];
        for &user in &from.users {
            homes[buckets::home(user, n) as usize].push(user);
        }
        for (keys, users) in all.iter().zip(&homes) {
            for users in users.chunks(RESTORE_CHUNK) {
                let _: () = client.sadd(&keys.users, users.to_vec()).await?;
            }
        }
        let base = &all[0];
        for used in from.used.chunks(RESTORE_CHUNK) {
            let _: () = client.hset(&base.used, used.to_vec()).await?;
        }
        let remaining = from.spec.total.saturating_sub(from.users.len() as u64);
        for (keys, left) in all.iter().zip(buckets::shares(remaining, n)) {
            let _: () = client.hset(&keys.meta, ("remaining", left)).await?;
            // A relay that read the lost stream reads it again with its group.
            let group: Result<(), Error> =
                client.xgroup_create(&keys.outbox, crate::keys::OUTBOX_GROUP, "0", true).await;
            match group {
                Err(e) if !e.details().starts_with("BUSYGROUP") => return Err(e),
                _ => {}
            }
        }
        let _: () = client.hset(&base.meta, ("use_seq", from.use_seq)).await?;
        // The other buckets open first: the campaign's own meta opens it.
        for keys in all.iter().rev() {
            let _: () = client.hset(&keys.meta, ("starts_at", from.spec.starts_at)).await?;
        }
        Ok(remaining)
    }

    /// Every campaign id Redis knows.
    pub async fn ids(&self) -> Result<Vec<u64>, Error> {
        let mut ids: Vec<u64> = self.redis.smembers(self.keys.coupons()).await?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// Every bucket's keys of the campaign, as its meta says now.
    async fn all_buckets(&self, coupon_id: u64) -> Result<Vec<crate::keys::CouponKeys>, Error> {
        let n = self.buckets.read(self.redis.next(), &self.keys, Of::Coupon, coupon_id).await?;
        Ok(buckets::all(&self.keys, coupon_id, n))
    }

    /// Outbox entries read by a relay but not yet acknowledged.
    pub async fn outbox_pending(&self, coupon_id: u64) -> Result<u64, Error> {
        let mut pending = 0;
        for keys in self.all_buckets(coupon_id).await? {
            let summary: Value = self
                .redis
                .xpending(keys.outbox, crate::keys::OUTBOX_GROUP, ())
                .await
                .or_else(|e| if e.details().starts_with("NOGROUP") { Ok(Value::Null) } else { Err(e) })?;
            pending += match summary {
                Value::Array(parts) => parts.first().and_then(|v| v.as_u64()).unwrap_or(0),
                _ => 0,
            };
        }
        Ok(pending)
    }

    /// Entries in the campaign's outbox (not yet acknowledged by Kafka).
    pub async fn outbox_len(&self, coupon_id: u64) -> Result<u64, Error> {
        let mut len = 0;
        for keys in self.all_buckets(coupon_id).await? {
            len += self.redis.next().xlen::<u64, _>(keys.outbox).await?;
        }
        Ok(len)
    }

    /// Every user Redis has issued the coupon to.
    pub async fn users(&self, coupon_id: u64) -> Result<Vec<u64>, Error> {
        let mut users = Vec::new();
        for keys in self.all_buckets(coupon_id).await? {
            users.extend(self.redis.next().smembers::<Vec<u64>, _>(keys.users).await?);
        }
        Ok(users)
    }
}
