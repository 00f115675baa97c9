//! The order record: what `reserve_order.lua` stores, every order script
//! answers, the outbox carries and the sink writes. One type everywhere; in
//! Redis a new order is a packed record (`order/packed.rs`), later ones JSON.
//!
//! Lua numbers are doubles, so the scripts write ids as strings; this type
//! reads ids written either way and writes them as numbers, except
//! [`Order::to_lua_json`], which writes them the scripts' way.

use serde::{Deserialize, Serialize};

mod packed;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Reserved,
    Paid,
    Cancelled,
    Expired,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 4] =
        [OrderStatus::Reserved, OrderStatus::Paid, OrderStatus::Cancelled, OrderStatus::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Reserved => "reserved",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
        }
    }

    /// The order takes stock and counts toward the user's limit.
    pub fn holds_stock(self) -> bool {
        matches!(self, OrderStatus::Reserved | OrderStatus::Paid)
    }
}

impl std::str::FromStr for OrderStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown order status `{s}`"))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    #[serde(with = "id")]
    pub sku: u64,
    pub quantity: u64,
    /// Unit price at reservation, minor units.
    pub price: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    #[serde(with = "id")]
    pub order_id: u64,
    #[serde(with = "id")]
    pub sale_id: u64,
    #[serde(with = "id")]
    pub user_id: u64,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub total: u64,
    pub discount: u64,
    pub to_pay: u64,
    #[serde(with = "opt_id", default)]
    pub coupon_id: Option<u64>,
    /// The coupon's use sequence at this event (bumped when the coupon is taken
    /// or given back): orders coupon-use events exactly, however close in time.
    #[serde(default)]
    pub coupon_seq: Option<u64>,
    #[serde(default)]
    pub payment_key: Option<String>,
    /// Milliseconds since the epoch, Redis clock.
    pub created_at: u64,
    pub expires_at: u64,
    pub updated_at: u64,
    /// 1 when reserved, +1 per state change; the sink never moves a row back.
    pub version: u32,
}

impl Order {
    pub fn from_json(json: &str) -> Result<Order, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// An order as Redis holds it: the packed record of a new one
    /// ([`packed`]) or the JSON of any version.
    pub fn decode(stored: &str) -> Result<Order, String> {
        if stored.starts_with(packed::TAG) {
            return packed::decode(stored);
        }
        Self::from_json(stored).map_err(|e| e.to_string())
    }

    /// The JSON the Lua scripts store and read: every id (order, sale, user,
    /// coupon, each item's SKU) as a string, since a Lua number is a double and
    /// would round ids above 2^53 — and the scripts build keys from them.
    pub fn to_lua_json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("an order serializes");
        let text = |v: &mut serde_json::Value| {
            if let Some(n) = v.as_u64() {
                *v = n.to_string().into();
            }
        };
        for field in ["order_id", "sale_id", "user_id", "coupon_id"] {
            text(&mut v[field]);
        }
        for item in v["items"].as_array_mut().into_iter().flatten() {
            text(&mut item["sku"]);
        }
        v.to_string()
    }
}

/// An id as the scripts write it (a decimal string) or as a number. A plain
/// visitor, not an untagged enum: that one tries each form in turn and builds
/// an error for every miss, once per id of every order read.
struct IdRepr(u64);

impl<'de> Deserialize<'de> for IdRepr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IdRepr;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an id: an integer from 0 to 2^64-1, as a number or a decimal string")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<IdRepr, E> {
                Ok(IdRepr(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<IdRepr, E> {
                s.parse().map(IdRepr).map_err(|_| E::custom(format!("bad id `{s}`")))
            }
        }
        d.deserialize_any(Visitor)
    }
}

mod id {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(super::IdRepr::deserialize(d)?.0)
    }
}

mod opt_id {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_u64(*v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(Option::<super::IdRepr>::deserialize(d)?.map(|r| r.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_json_lua_writes_and_writes_ids_as_numbers() {
        let lua = r#"{"order_id":"3","sale_id":"7","user_id":"18446744073709551615","status":"reserved",
            "items":[{"sku":"1","quantity":2,"price":9900}],"total":19800,"discount":0,"to_pay":19800,
            "coupon_id":null,"payment_key":null,"created_at":1700000000123,"expires_at":1700000600123,
            "updated_at":1700000000123,"version":1}"#;
        let order = Order::from_json(lua).unwrap();
        assert_eq!(order.user_id, u64::MAX);
        assert_eq!(order.items[0].sku, 1);
        assert_eq!(order.coupon_id, None);
        let again = serde_json::to_string(&order).unwrap();
        assert!(again.contains(r#""user_id":18446744073709551615"#));
        assert_eq!(Order::from_json(&again).unwrap(), order);
    }

    #[test]
    fn lua_json_writes_every_id_as_a_string_and_round_trips() {
        let mut order = Order {
            order_id: 9_007_199_254_740_993, // 2^53 + 1: a double cannot hold it
            sale_id: 7,
            user_id: u64::MAX,
            status: OrderStatus::Paid,
            items: vec![OrderItem { sku: 12, quantity: 2, price: 9900 }, OrderItem { sku: 13, quantity: 1, price: 5 }],
            total: 19805,
            discount: 500,
            to_pay: 19305,
            coupon_id: Some(42),
            coupon_seq: Some(3),
            payment_key: Some("pay-1".into()),
            created_at: 1_700_000_000_123,
            expires_at: 1_700_000_600_123,
            updated_at: 1_700_000_000_456,
            version: 2,
        };
        let json = order.to_lua_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        for field in ["order_id", "sale_id", "user_id", "coupon_id"] {
            assert!(v[field].is_string(), "{field} in {json}");
        }
        assert_eq!(v["items"][1]["sku"], "13");
        assert_eq!(v["user_id"], "18446744073709551615");
        assert_eq!(
            (v["total"].as_u64(), v["items"][0]["quantity"].as_u64()),
            (Some(19805), Some(2)),
            "amounts stay numbers"
        );
        assert_eq!(Order::from_json(&json).unwrap(), order);

        order.coupon_id = None;
        order.payment_key = None;
        let json = order.to_lua_json();
        assert!(json.contains(r#""coupon_id":null"#), "{json}");
        assert_eq!(Order::from_json(&json).unwrap(), order);
    }

    #[test]
    fn status_parses_what_as_str_writes() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>(), Ok(status));
        }
        assert!("refunded".parse::<OrderStatus>().is_err());
    }
}
