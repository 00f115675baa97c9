//! The events that travel outbox -> relay -> Kafka -> sink. Shared by the relay
//! and the sink, which know nothing else of each other.
//!
//! On Kafka a record's key is the campaign id (decimal) and its value is the
//! event as JSON, tagged by `type`. `event_id` is stable across retries (it is
//! built from the outbox entry id), so a consumer can recognise a replay.

use serde::{Deserialize, Serialize};

use crate::order::Order;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    CouponIssued(CouponIssued),
    /// An order reached a new state (reserved, paid, cancelled, expired):
    /// the whole order as it is after the change.
    Order(OrderChanged),
    /// A wallet's balance changed: a charge or a payment.
    Wallet(WalletChanged),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalletKind {
    /// Money in (`amount` added).
    Charge,
    /// An order paid from the wallet (`amount` taken).
    Payment,
    /// `reconcile --repair` filled a gap of MySQL's history (events lost on
    /// the way) up to Redis's balance: `amount` added, or taken (`RepairDebit`).
    /// Never an event of the outbox.
    RepairCredit,
    RepairDebit,
}

impl WalletKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WalletKind::Charge => "charge",
            WalletKind::Payment => "payment",
            WalletKind::RepairCredit => "repair_credit",
            WalletKind::RepairDebit => "repair_debit",
        }
    }

    /// A `wallet_transactions.kind` read back; None for one no version writes.
    pub fn parse(kind: &str) -> Option<WalletKind> {
        [WalletKind::Charge, WalletKind::Payment, WalletKind::RepairCredit, WalletKind::RepairDebit]
            .into_iter()
            .find(|k| k.as_str() == kind)
    }
}

/// One change of one wallet, as `wallet_apply.lua` writes it to the outbox
/// (without `event_id`, which the relay adds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletChanged {
    /// `w<shard>-<outbox entry id>`, then `-<n>` for the entry's n-th change
    /// after its first (an entry holds one script call's changes).
    #[serde(default)]
    pub event_id: String,
    pub user_id: u64,
    pub kind: WalletKind,
    /// Minor units, always positive; `kind` says which way.
    pub amount: u64,
    pub balance_after: u64,
    /// The wallet's version after the change: 1 for its first change, +1 per change.
    pub version: u64,
    #[serde(default)]
    pub sale_id: Option<u64>,
    #[serde(default)]
    pub order_id: Option<u64>,
    /// Milliseconds since the epoch, Redis clock.
    pub at: u64,
}

impl WalletChanged {
    /// The id of the `nth` (from 0) change of outbox entry `entry_id` of wallet shard `shard`.
    pub fn event_id(shard: u64, entry_id: &str, nth: usize) -> String {
        entry_event_id('w', shard, entry_id, nth)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderChanged {
    /// `s<sale_id>-<outbox entry id>` (`s<sale_id>b<bucket>-...` from a
    /// bucket B > 0, see `sales::moves`) for an entry's first order change,
    /// `s<sale_id>-<outbox entry id>-<n>` for its n-th after that (an entry
    /// holds one reservation call's new orders): unique and stable.
    pub event_id: String,
    pub order: Order,
}

impl OrderChanged {
    /// The id of the `nth` (from 0) order change of outbox entry `entry_id`
    /// of the sale's bucket `bucket` (see `sales::moves`; 0 without buckets;
    /// bucket B > 0 adds `b<B>` to the sale id: two buckets' streams make the
    /// same entry ids).
    pub fn event_id(sale_id: u64, bucket: u32, entry_id: &str, nth: usize) -> String {
        match bucket {
            0 => entry_event_id('s', sale_id, entry_id, nth),
            b => entry_event_id('s', format_args!("{sale_id}b{b}"), entry_id, nth),
        }
    }
}

/// `<kind><owner>-<entry id>`, then `-<nth>` after an entry's first event.
fn entry_event_id(kind: char, owner: impl std::fmt::Display, entry_id: &str, nth: usize) -> String {
    if nth == 0 {
        format!("{kind}{owner}-{entry_id}")
    } else {
        format!("{kind}{owner}-{entry_id}-{nth}")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponIssued {
    /// `c<coupon_id>-<outbox entry id>` for an entry's first issue,
    /// `c<coupon_id>-<outbox entry id>-<n>` for its n-th after that (an entry
    /// holds one script call's issues): unique and stable.
    pub event_id: String,
    pub coupon_id: u64,
    pub user_id: u64,
    /// Milliseconds since the epoch, from the Redis clock at issue time.
    pub issued_at: u64,
}

impl CouponIssued {
    /// The id of the `nth` (from 0) issue of outbox entry `entry_id` of the
    /// campaign's bucket `bucket` (see `buckets`; `c<coupon>b<B>-...` for B > 0,
    /// as for sales).
    pub fn event_id(coupon_id: u64, bucket: u32, entry_id: &str, nth: usize) -> String {
        match bucket {
            0 => entry_event_id('c', coupon_id, entry_id, nth),
            b => entry_event_id('c', format_args!("{coupon_id}b{b}"), entry_id, nth),
        }
    }
}

impl Event {
    /// The Kafka record key: events of one campaign (or sale) share it, hence a partition.
    pub fn key(&self) -> u64 {
        match self {
            Event::CouponIssued(e) => e.coupon_id,
            Event::Order(e) => e.order.sale_id,
            Event::Wallet(e) => e.user_id,
        }
    }

    /// Milliseconds since the epoch at which the event happened (Redis clock).
    pub fn at(&self) -> u64 {
        match self {
            Event::CouponIssued(e) => e.issued_at,
            Event::Order(e) => e.order.updated_at,
            Event::Wallet(e) => e.at,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events always serialise")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Partition for a key: stable across processes and restarts (no random hasher).
pub fn partition_for(key: u64, partitions: i32) -> i32 {
    // splitmix64 finaliser: spreads consecutive ids evenly.
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % partitions.max(1) as u64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips_through_json_with_its_type_tag() {
        let e = Event::CouponIssued(CouponIssued {
            event_id: CouponIssued::event_id(42, 0, "1-0", 0),
            coupon_id: 42,
            user_id: 7,
            issued_at: 1,
        });
        let json = e.to_json();
        assert!(String::from_utf8_lossy(&json).contains(r#""type":"coupon_issued""#));
        assert_eq!(Event::from_json(&json).unwrap(), e);
    }

    #[test]
    fn a_wallet_entry_as_lua_writes_it_decodes_and_round_trips() {
        let lua = r#"{"user_id":18446744073709551615,"kind":"payment","amount":900,"balance_after":100,"version":3,"sale_id":7,"order_id":1700000000000001,"at":1700000000123}"#;
        let mut change: WalletChanged = serde_json::from_str(lua).unwrap();
        assert_eq!(
            (change.user_id, change.kind, change.order_id),
            (u64::MAX, WalletKind::Payment, Some(1700000000000001))
        );
        change.event_id = WalletChanged::event_id(15, "1-0", 2);
        assert_eq!(change.event_id, "w15-1-0-2");
        let charge = r#"{"user_id":5,"kind":"charge","amount":900,"balance_after":900,"version":1,"sale_id":null,"order_id":null,"at":1}"#;
        assert_eq!(serde_json::from_str::<WalletChanged>(charge).unwrap().sale_id, None);
        let e = Event::Wallet(change);
        assert_eq!(Event::from_json(&e.to_json()).unwrap(), e);
        assert_eq!(e.key(), u64::MAX);
    }

    #[test]
    fn two_buckets_entries_of_one_id_make_distinct_event_ids() {
        assert_eq!(OrderChanged::event_id(7, 0, "5-0", 0), "s7-5-0");
        assert_eq!(OrderChanged::event_id(7, 3, "5-0", 1), "s7b3-5-0-1");
        assert_eq!(CouponIssued::event_id(7, 0, "5-0", 0), "c7-5-0");
        assert_eq!(CouponIssued::event_id(7, 2, "5-0", 0), "c7b2-5-0");
        assert_ne!(OrderChanged::event_id(7, 1, "5-0", 0), OrderChanged::event_id(7, 2, "5-0", 0));
    }

    #[test]
    fn partition_is_stable_and_in_range() {
        for key in 0..1000 {
            let p = partition_for(key, 4);
            assert!((0..4).contains(&p));
            assert_eq!(p, partition_for(key, 4));
        }
    }
}
