//! The packed record reserve_order.lua stores, answers and appends for a new
//! order (lua/lib/order.lua's `decode_order` reads it too):
//! `R|order|sale|user|total|discount|coupon|coupon_seq|created|expires|sku:quantity:price,...`
//! (coupon and coupon_seq empty when none): reserved, version 1, nothing paid.
//! Every later version of an order is JSON.

use super::{Order, OrderItem, OrderStatus};

pub(super) const TAG: &str = "R|";

pub(super) fn decode(record: &str) -> Result<Order, String> {
    let bad = || format!("bad packed order `{record}`");
    let mut fields = record.strip_prefix(TAG).ok_or_else(bad)?.split('|');
    let mut next = || fields.next().ok_or_else(bad);
    let [order, sale, user, total, discount, coupon, coupon_seq, created, expires, items] =
        [next()?, next()?, next()?, next()?, next()?, next()?, next()?, next()?, next()?, next()?];
    if fields.next().is_some() {
        return Err(bad());
    }
    let num = |v: &str| v.parse::<u64>().map_err(|_| bad());
    let optional = |v: &str| if v.is_empty() { Ok(None) } else { num(v).map(Some) };
    let items = items
        .split(',')
        .map(|item| {
            let mut parts = item.split(':');
            let mut part = || parts.next().ok_or_else(bad).and_then(num);
            let line = OrderItem { sku: part()?, quantity: part()?, price: part()? };
            if parts.next().is_some() {
                return Err(bad());
            }
            Ok(line)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (total, discount, created_at) = (num(total)?, num(discount)?, num(created)?);
    Ok(Order {
        order_id: num(order)?,
        sale_id: num(sale)?,
        user_id: num(user)?,
        status: OrderStatus::Reserved,
        items,
        total,
        discount,
        to_pay: total.checked_sub(discount).ok_or_else(bad)?,
        coupon_id: optional(coupon)?,
        coupon_seq: optional(coupon_seq)?,
        payment_key: None,
        created_at,
        expires_at: num(expires)?,
        updated_at: created_at,
        version: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_record_with_and_without_a_coupon() {
        let order =
            decode("R|3|7|18446744073709551615|19805|500|42|3|1700000000123|1700000600123|12:2:9900,13:1:5").unwrap();
        assert_eq!((order.order_id, order.sale_id, order.user_id), (3, 7, u64::MAX));
        assert_eq!(
            order.items,
            vec![OrderItem { sku: 12, quantity: 2, price: 9900 }, OrderItem { sku: 13, quantity: 1, price: 5 }]
        );
        assert_eq!((order.total, order.discount, order.to_pay), (19805, 500, 19305));
        assert_eq!((order.coupon_id, order.coupon_seq), (Some(42), Some(3)));
        assert_eq!((order.status, order.version, order.updated_at), (OrderStatus::Reserved, 1, 1_700_000_000_123));
        let plain = decode("R|4|7|9|100|0|||1|2|1:1:100").unwrap();
        assert_eq!((plain.coupon_id, plain.coupon_seq, plain.payment_key), (None, None, None));
    }

    #[test]
    fn refuses_what_is_not_a_whole_record() {
        for bad in [
            "R|",
            "R|4|7|9|100|0|||1|2",
            "R|4|7|9|100|0|||1|2|1:1",
            "R|4|7|9|100|0|||1|2|1:1:100|extra",
            "R|4|7|9|100|200|||1|2|1:1:100",
            "R|x|7|9|100|0|||1|2|1:1:100",
            "R|4|7|9|100|0|||1|2|",
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
