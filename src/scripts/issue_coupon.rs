//! `lua/issue_coupon.lua`: check window, dedup user, decrement stock and
//! append the outbox entry, atomically.

use fred::{prelude::*, types::scripts::Script};

use super::{int, unexpected};
use crate::keys::CouponKeys;

pub struct IssueCoupon(pub(super) Script);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueOutcome {
    /// The user got the coupon; `issued_at` is the Redis clock in ms.
    Issued {
        remaining: u64,
        issued_at: u64,
    },
    AlreadyIssued,
    SoldOut,
    NotStarted,
    Ended,
    Unknown,
}

impl IssueOutcome {
    /// The outcome's name in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            IssueOutcome::Issued { .. } => "issued",
            IssueOutcome::AlreadyIssued => "already_issued",
            IssueOutcome::SoldOut => "sold_out",
            IssueOutcome::NotStarted => "not_started",
            IssueOutcome::Ended => "ended",
            IssueOutcome::Unknown => "unknown",
        }
    }
}

impl IssueCoupon {
    pub async fn call(
        &self,
        client: &Client,
        keys: &CouponKeys,
        coupon_id: u64,
        user_id: u64,
    ) -> Result<IssueOutcome, Error> {
        let answer: Vec<Value> = self
            .0
            .evalsha_with_reload(
                client,
                vec![keys.meta.as_str(), keys.users.as_str(), keys.outbox.as_str()],
                vec![user_id.to_string(), coupon_id.to_string()],
            )
            .await?;
        let outcome = match answer.first().and_then(Value::as_str).as_deref() {
            Some("issued") => match (answer.get(1).and_then(int), answer.get(2).and_then(int)) {
                (Some(remaining), Some(issued_at)) => {
                    IssueOutcome::Issued { remaining: remaining.max(0) as u64, issued_at: issued_at.max(0) as u64 }
                }
                _ => return Err(unexpected("issue_coupon", &Value::Array(answer))),
            },
            Some("already") => IssueOutcome::AlreadyIssued,
            Some("sold_out") => IssueOutcome::SoldOut,
            Some("not_started") => IssueOutcome::NotStarted,
            Some("ended") => IssueOutcome::Ended,
            Some("unknown") => IssueOutcome::Unknown,
            _ => return Err(unexpected("issue_coupon", &Value::Array(answer))),
        };
        Ok(outcome)
    }
}
