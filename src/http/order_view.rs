//! The JSON an order is answered with (times as RFC 3339).

use serde::Serialize;

use crate::{
    domain::orders::Found,
    order::{Order, OrderItem},
    time::rfc3339_ms,
};

#[derive(Serialize)]
pub struct OrderView<'a> {
    order_id: u64,
    sale_id: u64,
    user_id: u64,
    status: &'static str,
    items: &'a [OrderItem],
    total: u64,
    discount: u64,
    to_pay: u64,
    coupon_id: Option<u64>,
    created_at: String,
    expires_at: String,
    updated_at: String,
    /// True when answered from MySQL: the order's sale retired, or the order
    /// was released (cancelled, expired) and Redis let it go.
    retired: bool,
}

impl<'a> OrderView<'a> {
    /// The order as found: live in Redis, or as MySQL keeps it once Redis let it go.
    pub fn of(found: &'a Found) -> Self {
        OrderView { retired: found.retired, ..OrderView::from(&found.order) }
    }
}

impl<'a> From<&'a Order> for OrderView<'a> {
    fn from(o: &'a Order) -> Self {
        OrderView {
            order_id: o.order_id,
            sale_id: o.sale_id,
            user_id: o.user_id,
            status: o.status.as_str(),
            items: &o.items,
            total: o.total,
            discount: o.discount,
            to_pay: o.to_pay,
            coupon_id: o.coupon_id,
            created_at: rfc3339_ms(o.created_at),
            expires_at: rfc3339_ms(o.expires_at),
            updated_at: rfc3339_ms(o.updated_at),
            retired: false,
        }
    }
}
