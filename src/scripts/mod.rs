//! Typed wrappers around the Lua scripts in `lua/`: one file per script, each
//! binding KEYS and ARGV and decoding the answer into an outcome enum.
//!
//! Scripts are loaded once at start-up (SCRIPT LOAD) and called by SHA; when
//! Redis has forgotten them (restart, failover, SCRIPT FLUSH) the call reloads
//! and retries once.

mod ack_outbox;
mod coupon_info;
mod issue_coupon;
mod seed_coupon;

pub use ack_outbox::AckOutbox;
pub use coupon_info::{CouponInfo, CouponInfoScript};
pub use issue_coupon::{IssueCoupon, IssueOutcome};
pub use seed_coupon::{SeedCoupon, SeedMode, SeedOutcome};

use fred::{prelude::*, types::scripts::Script};

/// Every script, loaded.
pub struct Scripts {
    pub ack_outbox: AckOutbox,
    pub issue_coupon: IssueCoupon,
    pub coupon_info: CouponInfoScript,
    pub seed_coupon: SeedCoupon,
}

impl Scripts {
    pub async fn load(client: &Client) -> Result<Self, Error> {
        Ok(Scripts {
            ack_outbox: AckOutbox(load(client, include_str!("../../lua/ack_outbox.lua")).await?),
            issue_coupon: IssueCoupon(
                load(client, include_str!("../../lua/issue_coupon.lua")).await?,
            ),
            coupon_info: CouponInfoScript(
                load(client, include_str!("../../lua/coupon_info.lua")).await?,
            ),
            seed_coupon: SeedCoupon(load(client, include_str!("../../lua/seed_coupon.lua")).await?),
        })
    }
}

async fn load(client: &Client, source: &'static str) -> Result<Script, Error> {
    let script = Script::from_lua(source);
    script.load(client).await?;
    Ok(script)
}

/// A script answered something its wrapper does not know: a bug, never user input.
fn unexpected(script: &str, value: &Value) -> Error {
    Error::new(
        ErrorKind::Parse,
        format!("{script}.lua answered unexpectedly: {value:?}"),
    )
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(*i),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
