//! `lua/settle_coupon.lua`: on Redis Cluster, turn coupon holds into the
//! orders' marks or free them, and list the overdue holds.

use crate::durability::Ack;
use fred::{prelude::*, types::scripts::Script};

use crate::keys::CouponKeys;

pub struct SettleCoupon(pub(super) Script, pub(super) Ack);

/// How one hold (or one released order's coupon) ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub user_id: u64,
    pub sale_id: u64,
    /// The hold's token; None for an order whose hold is unknown.
    pub token: Option<String>,
    pub order_id: Option<u64>,
    /// Some(the order's deadline) when the order took the coupon; None gives it back.
    pub taken_until: Option<u64>,
}

impl SettleCoupon {
    /// Settles each hold; returns how many used-marks changed.
    pub async fn settle(&self, client: &Client, keys: &CouponKeys, settlements: &[Settlement]) -> Result<u64, Error> {
        let mut args = vec!["settle".to_string()];
        for s in settlements {
            args.extend([
                s.user_id.to_string(),
                s.sale_id.to_string(),
                s.token.clone().unwrap_or_default(),
                s.order_id.map(|o| o.to_string()).unwrap_or_default(),
                s.taken_until.map(|t| t.to_string()).unwrap_or_default(),
            ]);
        }
        let k = vec![keys.meta.as_str(), keys.used.as_str(), keys.holds.as_str()];
        let changed: i64 = self.1.evalsha(&self.0, client, k, args).await?;
        Ok(changed.max(0) as u64)
    }

    /// Up to `limit` holds whose deadline passed over `margin_ms` ago by the
    /// coupon's node's clock: (user, sale, token).
    pub async fn due(
        &self,
        client: &Client,
        keys: &CouponKeys,
        margin_ms: u64,
        limit: u64,
    ) -> Result<Vec<(u64, u64, String)>, Error> {
        let k = vec![keys.meta.as_str(), keys.used.as_str(), keys.holds.as_str()];
        let args = vec!["due".to_string(), margin_ms.to_string(), limit.to_string()];
        let members: Vec<String> = self.0.evalsha_with_reload(client, k, args).await?;
        Ok(members
            .iter()
            .filter_map(|m| {
                let mut parts = m.splitn(3, ':');
                Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.to_string()))
            })
            .collect())
    }
}
