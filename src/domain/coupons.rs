//! Coupon campaigns as the API sees them: issue one, read one — live from
//! Redis, or from MySQL once the campaign retired.

use std::sync::Arc;

use super::{record, refuse, Error, Refusal};
use crate::{coupons::Coupons, db::archive::Kind, retired_records::RetiredRecords, scripts::IssueOutcome};

#[derive(Clone)]
pub struct CouponService {
    coupons: Coupons,
    retired: Arc<RetiredRecords>,
}

/// A coupon issued to a user.
pub struct Issued {
    pub remaining: u64,
    /// Redis's clock, ms.
    pub issued_at: u64,
}

/// A campaign's stock and window.
pub struct Campaign {
    pub total: u64,
    pub remaining: u64,
    pub issued: u64,
    pub starts_at: u64,
    /// 0: never closes.
    pub ends_at: u64,
    /// Read from MySQL: the campaign retired and Redis let it go.
    pub retired: bool,
}

impl CouponService {
    pub fn new(coupons: Coupons, retired: Arc<RetiredRecords>) -> Self {
        CouponService { coupons, retired }
    }

    /// Issues the coupon to the user: once per user, while stock and window
    /// last; with a waiting room, only to a user who showed their admission
    /// (`admitted`, see `QueueService::admitted`).
    pub async fn issue(&self, coupon_id: u64, user_id: u64, admitted: bool) -> Result<Issued, Error> {
        let result = self.try_issue(coupon_id, user_id, admitted).await;
        record("issue_coupon", &result, |_| "issued");
        result
    }

    async fn try_issue(&self, coupon_id: u64, user_id: u64, admitted: bool) -> Result<Issued, Error> {
        let campaign = || format!("coupon campaign {coupon_id}");
        match self.coupons.issue(coupon_id, user_id, admitted).await? {
            IssueOutcome::Issued { remaining, issued_at } => Ok(Issued { remaining, issued_at }),
            IssueOutcome::AlreadyIssued => refuse(Refusal::AlreadyIssued(coupon_id)),
            IssueOutcome::SoldOut => refuse(Refusal::SoldOut(coupon_id)),
            IssueOutcome::NotStarted => refuse(Refusal::NotStarted(campaign())),
            IssueOutcome::Ended => refuse(Refusal::Ended(campaign())),
            IssueOutcome::NotAdmitted => refuse(Refusal::NotAdmitted),
            // Redis let a retired campaign go: it ended, as Redis would have said.
            IssueOutcome::Unknown if self.retired.is_retired(Kind::Coupon, coupon_id).await? => {
                refuse(Refusal::Ended(campaign()))
            }
            IssueOutcome::Unknown => refuse(Refusal::UnknownCoupon(coupon_id)),
        }
    }

    /// The campaign as Redis holds it, else as MySQL keeps it once retired.
    pub async fn campaign(&self, coupon_id: u64) -> Result<Campaign, Error> {
        if let Some(info) = self.coupons.info(coupon_id).await? {
            return Ok(Campaign {
                total: info.total,
                remaining: info.remaining,
                issued: info.issued,
                starts_at: info.starts_at,
                ends_at: info.ends_at,
                retired: false,
            });
        }
        let Some(c) = self.retired.campaign(coupon_id).await? else {
            return refuse(Refusal::UnknownCoupon(coupon_id));
        };
        Ok(Campaign {
            total: c.total,
            remaining: c.remaining(),
            issued: c.issued,
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            retired: true,
        })
    }

    /// Every campaign id Redis holds.
    pub async fn live_ids(&self) -> Result<Vec<u64>, Error> {
        Ok(self.coupons.ids().await?)
    }
}
