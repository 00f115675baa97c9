//! The order record: what `reserve_order.lua` stores, every order script
//! answers, the outbox carries and the sink writes. One shape everywhere.
//!
//! Lua numbers are doubles, so the scripts write ids as strings; this type
//! reads ids written either way and writes them as numbers.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Reserved,
    Paid,
    Cancelled,
    Expired,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Reserved => "reserved",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
        }
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
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdRepr {
    Num(u64),
    Text(String),
}

impl IdRepr {
    fn into_u64<E: serde::de::Error>(self) -> Result<u64, E> {
        match self {
            IdRepr::Num(n) => Ok(n),
            IdRepr::Text(s) => s.parse().map_err(|_| E::custom(format!("bad id `{s}`"))),
        }
    }
}

mod id {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        super::IdRepr::deserialize(d)?.into_u64()
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
        Option::<super::IdRepr>::deserialize(d)?.map(|r| r.into_u64()).transpose()
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
}
