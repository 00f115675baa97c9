//! What a user holds: `GET /v1/users/{user_id}/coupons` and
//! `GET /v1/users/{user_id}/orders?limit=&before=` (newest first, across
//! sales). From MySQL merged with Redis's live state (see `mine`); with auth
//! on, only one's own.

use hyper::{header::AUTHORIZATION, HeaderMap, StatusCode};
use serde::Serialize;

use super::{
    error::ApiError,
    order_view::OrderView,
    query::{cursor, limit, pairs},
    respond::{json, Reply},
};
use crate::{app::App, time::rfc3339_ms};

const NOT_YOURS: &str = "these are another user's";

#[derive(Serialize)]
struct UsedOrder {
    sale_id: u64,
    order_id: u64,
}

#[derive(Serialize)]
struct CouponView {
    coupon_id: u64,
    /// None: issued moments ago, not yet recorded.
    issued_at: Option<String>,
    used_order: Option<UsedOrder>,
}

#[derive(Serialize)]
struct Coupons {
    coupons: Vec<CouponView>,
}

pub async fn coupons(app: &App, user_id: u64, headers: &HeaderMap) -> Result<Reply, ApiError> {
    app.guard.same_user(headers.get(AUTHORIZATION), user_id, NOT_YOURS)?;
    let live = app.domain.coupons.live_ids().await?;
    let coupons = app
        .mine
        .coupons(user_id, &live)
        .await?
        .into_iter()
        .map(|h| CouponView {
            coupon_id: h.coupon_id,
            issued_at: h.issued_at.map(rfc3339_ms),
            used_order: h.used.map(|(sale_id, order_id)| UsedOrder { sale_id, order_id }),
        })
        .collect();
    Ok(json(StatusCode::OK, &Coupons { coupons }))
}

#[derive(Serialize)]
struct Orders<'a> {
    orders: Vec<OrderView<'a>>,
    /// Pass as `before` for the next (older) page; None: no more.
    next: Option<String>,
}

pub async fn orders(app: &App, user_id: u64, headers: &HeaderMap, query: Option<&str>) -> Result<Reply, ApiError> {
    app.guard.same_user(headers.get(AUTHORIZATION), user_id, NOT_YOURS)?;
    let (mut page, mut before) = (limit::DEFAULT, None);
    for (name, value) in pairs(query) {
        match name {
            "limit" => page = limit::parse(value)?,
            "before" => before = Some(cursor::pair(value)?),
            _ => {}
        }
    }
    let live = app.domain.orders.live_ids().await?;
    let orders = app.mine.orders(user_id, &live, page as u64, before).await?;
    let next = (orders.len() == page).then(|| orders.last().map(|o| format!("{}-{}", o.order_id, o.sale_id))).flatten();
    Ok(json(StatusCode::OK, &Orders { orders: orders.iter().map(OrderView::from).collect(), next }))
}
