//! The Redis key layout. Every key this service owns is built here.
//!
//! All keys of one campaign share the hash tag `{coupon:ID}` so one Lua script
//! may touch them together on a Redis Cluster:
//!
//! | key                          | type   | holds                                             |
//! |------------------------------|--------|---------------------------------------------------|
//! | `P{coupon:ID}:meta`          | hash   | `total`, `remaining`, `starts_at`, `ends_at` (ms) |
//! | `P{coupon:ID}:users`         | set    | ids of users who got the coupon                   |
//! | `P{coupon:ID}:outbox`        | stream | issue events not yet acknowledged by Kafka        |
//! | `Pcoupons`                   | set    | ids of every campaign (the relay's stream list)   |
//!
//! `P` is the configured prefix (`FLASHSALE_KEY_PREFIX`, default `fs:`).

/// Consumer group the relay reads the outbox streams with.
pub const OUTBOX_GROUP: &str = "relay";

/// Key builder bound to one deployment's prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

/// The keys of one coupon campaign, in the order the scripts take them.
#[derive(Clone, Debug)]
pub struct CouponKeys {
    pub meta: String,
    pub users: String,
    pub outbox: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys {
            prefix: prefix.into(),
        }
    }

    pub fn coupon(&self, coupon_id: u64) -> CouponKeys {
        let tag = format!("{}{{coupon:{coupon_id}}}", self.prefix);
        CouponKeys {
            meta: format!("{tag}:meta"),
            users: format!("{tag}:users"),
            outbox: format!("{tag}:outbox"),
        }
    }

    /// The set of every campaign id.
    pub fn coupons(&self) -> String {
        format!("{}coupons", self.prefix)
    }

    /// The campaign id an outbox key belongs to.
    pub fn coupon_of_outbox(&self, key: &str) -> Option<u64> {
        key.strip_prefix(&self.prefix)?
            .strip_prefix("{coupon:")?
            .strip_suffix("}:outbox")?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn campaign_keys_share_one_hash_tag_and_round_trip() {
        let keys = Keys::new("t1:");
        let c = keys.coupon(42);
        assert_eq!(c.meta, "t1:{coupon:42}:meta");
        assert_eq!(c.users, "t1:{coupon:42}:users");
        assert_eq!(keys.coupon_of_outbox(&c.outbox), Some(42));
        assert_eq!(keys.coupon_of_outbox("t2:{coupon:42}:outbox"), None);
    }
}
