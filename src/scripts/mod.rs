//! Typed wrappers around the Lua scripts in `lua/`: one file per script, each
//! binding KEYS and ARGV and decoding the answer into an outcome enum.
//!
//! Each is loaded once at start-up with the `lua/lib/` pieces it includes
//! (`source`) and called by SHA, reloaded once when Redis forgot it (restart,
//! failover, SCRIPT FLUSH). Writing scripts wait for the ack mode (`durability`).

mod ack_outbox;
mod adjust_stock;
mod confirm_order;
mod coupon_info;
mod drop_consumer;
mod forget_orders;
mod hold_coupon;
mod issue_coupon;
mod join_outbox;
mod move_stock;
mod pay_order;
mod queue;
mod release_orders;
mod reserve_order;
mod retire;
mod sale_info;
mod seed_coupon;
mod seed_sale;
mod settle_coupon;
mod source;
mod wallet_apply;

pub use ack_outbox::AckOutbox;
pub use adjust_stock::{AdjustStock, StockChange};
pub use confirm_order::{ConfirmOrder, ConfirmOutcome};
pub use coupon_info::{CouponInfo, CouponInfoScript};
pub use drop_consumer::DropConsumer;
pub use forget_orders::ForgetOrders;
pub use hold_coupon::{Held, HoldCoupon};
pub use issue_coupon::{IssueCall, IssueCoupon, IssueOutcome};
pub use join_outbox::JoinOutbox;
pub use move_stock::{Given, Move, MoveStock};
pub use pay_order::{HoldOutcome, PayHold, PaySettle, SettleOutcome};
pub use queue::{AdmitOutcome, JoinOutcome, QueueScripts, QueueSpec, QueueState};
pub use release_orders::{Expired, ReleaseOrders};
pub use reserve_order::{CouponUse, HoldState, InBucket, Reservation, ReserveOrder, ReserveOutcome, ReserveRules};
pub use retire::{DropRetired, Dropped, Keep, Owner, Retire, Retired, Seen};
pub use sale_info::{SaleInfo, SaleInfoScript, SkuInfo};
pub use seed_coupon::{CampaignSpec, SeedCoupon, SeedMode, SeedOutcome};
pub use seed_sale::{SaleSpec, SeedSale, SkuSpec};
pub use settle_coupon::{SettleCoupon, Settlement};
pub use wallet_apply::{Charged, Debited, WalletApply, WalletOp, WalletOutcome};

use fred::{prelude::*, types::scripts::Script};

use crate::durability::Ack;

/// Every script, loaded.
pub struct Scripts {
    pub ack_outbox: AckOutbox,
    pub issue_coupon: IssueCoupon,
    pub coupon_info: CouponInfoScript,
    pub seed_coupon: SeedCoupon,
    pub seed_sale: SeedSale,
    pub reserve_order: ReserveOrder,
    pub confirm_order: ConfirmOrder,
    pub release_orders: ReleaseOrders,
    pub adjust_stock: AdjustStock,
    pub sale_info: SaleInfoScript,
    /// The acknowledgement mode the writing scripts follow.
    pub ack: Ack,
    pub join_outbox: JoinOutbox,
    pub drop_consumer: DropConsumer,
    pub retire: Retire,
    pub drop_retired: DropRetired,
    pub pay_hold: PayHold,
    pub pay_settle: PaySettle,
    pub wallet_apply: WalletApply,
    pub hold_coupon: HoldCoupon,
    pub settle_coupon: SettleCoupon,
    pub move_stock: MoveStock,
    pub forget_orders: ForgetOrders,
    pub queue: QueueScripts,
}

/// Where a payment bumps the hourly ranking tally it names (chosen by
/// `placement`): in its script (KEYS[5]), or apart after it with
/// [`rank_apart`] (the script then gets no KEYS[5]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking<'a> {
    InScript(&'a str),
    Apart(&'a str),
}

impl<'a> Ranking<'a> {
    /// The payment script's keys: the sale's four, then the hour's tally when in the script.
    fn keys(&self, keys: &'a crate::keys::SaleKeys) -> Vec<&'a str> {
        let mut k = vec![keys.orders.as_str(), keys.deadlines.as_str(), keys.paying.as_str(), keys.outbox.as_str()];
        if let Ranking::InScript(hour) = self {
            k.push(hour);
        }
        k
    }
}

/// Bumps the hourly ranking tally `hour` for a just-paid `order`, outside its
/// script (the tally is in another slot than the sale). The
/// payment stands whatever becomes of this; a failure (or a crash just before)
/// leaves the ranking one order short, which is logged.
async fn rank_apart(client: &Client, hour: &str, ttl_secs: u64, order: &crate::order::Order) {
    let pipe = client.pipeline();
    for item in &order.items {
        let _: Result<(), _> = pipe.zincrby(hour, 1.0, item.sku.to_string()).await;
    }
    let _: Result<(), _> = pipe.expire(hour, ttl_secs as i64, None).await;
    if let Err(e) = pipe.all::<Value>().await {
        tracing::warn!(error = %e, order_id = order.order_id, "ranking not bumped for a paid order");
    }
}

/// Loads `lua/<name>.lua`, with the libraries it includes (see `source`).
macro_rules! script {
    ($client:expr, $name:literal) => {
        load($client, $name, include_str!(concat!("../../lua/", $name, ".lua")))
    };
}

impl Scripts {
    /// Loads every script; writing ones are acknowledged as `ack` says (see
    /// `durability`; `placement::Placement::ack` sets its mark).
    pub async fn load(client: &Client, ack: Ack) -> Result<Self, Error> {
        Ok(Scripts {
            ack_outbox: AckOutbox(script!(client, "ack_outbox").await?),
            issue_coupon: IssueCoupon(script!(client, "issue_coupon").await?, ack),
            coupon_info: CouponInfoScript(script!(client, "coupon_info").await?),
            seed_coupon: SeedCoupon(script!(client, "seed_coupon").await?, ack),
            seed_sale: SeedSale(script!(client, "seed_sale").await?, ack),
            reserve_order: ReserveOrder(script!(client, "reserve_order").await?, ack),
            confirm_order: ConfirmOrder(script!(client, "confirm_order").await?, ack),
            release_orders: ReleaseOrders(script!(client, "release_orders").await?, ack),
            adjust_stock: AdjustStock(script!(client, "adjust_stock").await?, ack),
            sale_info: SaleInfoScript(script!(client, "sale_info").await?),
            ack,
            join_outbox: JoinOutbox(script!(client, "join_outbox").await?),
            drop_consumer: DropConsumer(script!(client, "drop_consumer").await?),
            retire: Retire(script!(client, "retire").await?),
            drop_retired: DropRetired(script!(client, "drop_retired").await?),
            pay_hold: PayHold(script!(client, "pay_hold").await?, ack),
            pay_settle: PaySettle(script!(client, "pay_settle").await?, ack),
            wallet_apply: WalletApply(script!(client, "wallet_apply").await?, ack),
            hold_coupon: HoldCoupon(script!(client, "hold_coupon").await?, ack),
            settle_coupon: SettleCoupon(script!(client, "settle_coupon").await?, ack),
            move_stock: MoveStock(script!(client, "move_stock").await?, ack),
            forget_orders: ForgetOrders(script!(client, "forget_orders").await?),
            queue: QueueScripts {
                setup: script!(client, "queue_setup").await?,
                join: script!(client, "queue_join").await?,
                admit: script!(client, "queue_admit").await?,
                seen: script!(client, "queue_seen").await?,
                state: script!(client, "queue_state").await?,
                fate: script!(client, "queue_fate").await?,
                ack,
            },
        })
    }
}

async fn load(client: &Client, name: &str, script: &str) -> Result<Script, Error> {
    let script = Script::from_lua(source::assemble(name, script)?);
    script.load(client).await?;
    Ok(script)
}

/// A script answered something its wrapper does not know: a bug, never user input.
fn unexpected(script: &str, value: &Value) -> Error {
    Error::new(ErrorKind::Parse, format!("{script}.lua answered unexpectedly: {value:?}"))
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(*i),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_string)
}

/// Decodes the order (packed or JSON) a script answered with.
fn order_of(script: &str, value: Option<&Value>) -> Result<crate::order::Order, Error> {
    let json = text(value).ok_or_else(|| unexpected(script, value.unwrap_or(&Value::Null)))?;
    crate::order::Order::decode(&json)
        .map_err(|e| Error::new(ErrorKind::Parse, format!("{script}.lua answered a bad order ({e}): {json}")))
}
