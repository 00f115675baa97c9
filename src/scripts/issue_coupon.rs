//! `lua/issue_coupon.lua`: check window, dedup user, decrement stock and
//! append the outbox entry, atomically.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::{int, unexpected};
use crate::keys::CouponKeys;

pub struct IssueCoupon(pub(super) Script, pub(super) Ack);

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
    /// The campaign has a waiting room, and it has not admitted this user (or
    /// the admission lapsed, or was used).
    NotAdmitted,
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
            IssueOutcome::NotAdmitted => "not_admitted",
        }
    }
}

/// A call's answer: one outcome per user, or nothing done because the
/// campaign has another bucket count than the caller believed (see `buckets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueCall {
    Outcomes(Vec<IssueOutcome>),
    Buckets(u32),
}

impl IssueCoupon {
    /// Serves `users` in order in one call on one bucket's `keys` of a
    /// campaign believed to have `buckets` buckets; one outcome per user. Each
    /// user comes with whether they showed a valid admission (a waiting room's).
    pub async fn call(
        &self,
        client: &Client,
        keys: &CouponKeys,
        coupon_id: u64,
        buckets: u32,
        users: &[(u64, bool)],
    ) -> Result<IssueCall, Error> {
        let mut args = Vec::with_capacity(users.len() + 2);
        args.push(coupon_id.to_string());
        args.push(buckets.to_string());
        args.extend(users.iter().map(|&(user, admitted)| if admitted { format!("+{user}") } else { user.to_string() }));
        let k = vec![keys.meta.as_str(), keys.users.as_str(), keys.outbox.as_str(), keys.room.admitted.as_str()];
        let answer: Vec<Value> = self.1.evalsha(&self.0, client, k, args).await?;
        let every = |outcome| Ok(IssueCall::Outcomes(vec![outcome; users.len()]));
        match answer.first().and_then(Value::as_str).as_deref() {
            Some("buckets") => {
                let n = answer.get(1).and_then(int).unwrap_or(1).clamp(1, crate::buckets::MAX_BUCKETS as i64);
                return Ok(IssueCall::Buckets(n as u32));
            }
            Some("unknown") => return every(IssueOutcome::Unknown),
            Some("not_started") => return every(IssueOutcome::NotStarted),
            Some("ended") => return every(IssueOutcome::Ended),
            _ => {}
        }
        let (Some(issued_at), true) = (answer.first().and_then(int), answer.len() == users.len() + 1) else {
            return Err(unexpected("issue_coupon", &Value::Array(answer)));
        };
        let issued_at = issued_at.max(0) as u64;
        answer[1..]
            .iter()
            .map(|r| match int(r) {
                Some(-1) => Ok(IssueOutcome::AlreadyIssued),
                Some(-2) => Ok(IssueOutcome::SoldOut),
                Some(-3) => Ok(IssueOutcome::NotAdmitted),
                Some(remaining) if remaining >= 0 => {
                    Ok(IssueOutcome::Issued { remaining: remaining as u64, issued_at })
                }
                _ => Err(unexpected("issue_coupon", r)),
            })
            .collect::<Result<_, _>>()
            .map(IssueCall::Outcomes)
    }
}
