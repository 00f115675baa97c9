//! `lua/hold_coupon.lua`: on Redis Cluster, hold users' coupons in the
//! coupon's slot before their orders are reserved in the sale's.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use super::{int, unexpected};
use crate::keys::CouponKeys;

pub struct HoldCoupon(pub(super) Script, pub(super) Ack);

/// What one call held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The campaign has ended: nobody's coupon discounts an order.
    Expired,
    /// `seqs[i]`: the coupon_seq request i's order takes, or None when the
    /// coupon is not the user's to use (not issued, used, held or unknown).
    Holds { deadline: u64, discount: u64, seqs: Vec<Option<u64>> },
}

impl HoldCoupon {
    /// Holds the coupon of each (user, token, issued) for `sale_id` for
    /// `hold_ms`; `issued`: the caller found the user among the holders (a
    /// campaign with buckets), else the script looks. The campaign's keys
    /// outlive a hold by `keep_ms`.
    pub async fn call(
        &self,
        client: &Client,
        keys: &CouponKeys,
        sale_id: u64,
        hold_ms: u64,
        keep_ms: u64,
        requests: &[(u64, String, bool)],
    ) -> Result<Held, Error> {
        let mut args = vec![sale_id.to_string(), hold_ms.to_string(), keep_ms.to_string()];
        for (user, token, issued) in requests {
            args.extend([user.to_string(), token.clone(), if *issued { "1" } else { "" }.to_string()]);
        }
        let k = vec![keys.meta.as_str(), keys.users.as_str(), keys.used.as_str(), keys.holds.as_str()];
        let answer: Vec<Value> = self.1.evalsha(&self.0, client, k, args).await?;
        if answer.first().and_then(Value::as_str).as_deref() == Some("expired") {
            return Ok(Held::Expired);
        }
        let numbers: Option<Vec<i64>> = answer.iter().map(int).collect();
        match numbers.as_deref() {
            Some([deadline, discount, seqs @ ..]) if seqs.len() == requests.len() => Ok(Held::Holds {
                deadline: (*deadline).max(0) as u64,
                discount: (*discount).max(0) as u64,
                seqs: seqs.iter().map(|&s| (s > 0).then_some(s as u64)).collect(),
            }),
            _ => Err(unexpected("hold_coupon", &Value::Array(answer))),
        }
    }
}
