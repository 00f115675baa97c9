//! `POST /v1/sales/{sale_id}/orders` — reserve a multi-SKU order.

use std::collections::HashSet;

use hyper::{
    body::Incoming,
    header::{HeaderValue, AUTHORIZATION},
    Request, StatusCode,
};
use serde::Deserialize;

use super::{
    body::read_json,
    error::{ApiError, Write},
    order_view::OrderView,
    respond::{json, Reply},
};
use crate::{app::App, db::archive::Kind, metrics::METRICS, sales::NewOrder, scripts::ReserveOutcome};

/// Most lines in one order.
pub const MAX_LINES: usize = 20;
/// Most units of one SKU in one line.
pub const MAX_QUANTITY: i64 = 1000;
/// Longest Idempotency-Key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 128;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRequest {
    /// Required unless auth is on (then the token names the user).
    #[serde(default)]
    user_id: Option<u64>,
    items: Vec<Line>,
    #[serde(default)]
    coupon_id: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    sku: u64,
    quantity: i64,
}

const FIELDS: &[(&str, &str)] = &[
    ("user_id", "an integer from 0 to 2^64-1"),
    ("items", "a list of {\"sku\": integer, \"quantity\": integer} objects"),
];

pub async fn handle(app: &App, sale_id: u64, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let idempotency_key = idempotency_key(req.headers().get("idempotency-key"))?;
    // Only the one header identity needs, not a copy of them all.
    let authorization = req.headers().get(AUTHORIZATION).cloned();
    let body: OrderRequest = read_json(req, &app.http, FIELDS).await?;
    let user_id = app.guard.user(authorization.as_ref(), body.user_id)?;
    let lines = validate(&body.items)?;
    let _ticket = app.guard.admit(sale_id)?;
    let new = NewOrder {
        sale_id,
        user_id,
        lines: &lines,
        coupon_id: body.coupon_id,
        idempotency_key: idempotency_key.as_deref(),
    };
    let outcome = app.sales.reserve(&new).await.map_err(ApiError::write(Write::ReserveOrder))?;
    METRICS.outcome("reserve_order", outcome.name());
    match outcome {
        ReserveOutcome::Reserved(order) => Ok(json(StatusCode::CREATED, &OrderView::from(&order))),
        ReserveOutcome::Replay(first) => {
            // Still 201 for the replay, but the order as it is now: it may
            // have been paid, cancelled or expired since the first answer.
            let mut reply = match app.sales.order(sale_id, first.order_id).await? {
                Some(order) => json(StatusCode::CREATED, &OrderView::from(&order)),
                None => match app.retired.order(sale_id, first.order_id).await? {
                    Some(order) => json(StatusCode::CREATED, &OrderView::retired(&order)),
                    None => json(StatusCode::CREATED, &OrderView::from(&first)),
                },
            };
            reply.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(reply)
        }
        ReserveOutcome::IdempotencyMismatch => Err(ApiError::IdempotencyKeyReused),
        // Redis let a retired sale go: it ended, as Redis would have said.
        ReserveOutcome::UnknownSale if app.retired.is_retired(Kind::Sale, sale_id).await? => {
            Err(ApiError::Ended(format!("sale {sale_id}")))
        }
        ReserveOutcome::UnknownSale => Err(ApiError::UnknownSale(sale_id)),
        ReserveOutcome::NotStarted => Err(ApiError::NotStarted(format!("sale {sale_id}"))),
        ReserveOutcome::Ended => Err(ApiError::Ended(format!("sale {sale_id}"))),
        ReserveOutcome::UnknownSkus(skus) => Err(ApiError::UnknownSkus(skus)),
        ReserveOutcome::SoldOut(skus) => Err(ApiError::SkusSoldOut(skus)),
        ReserveOutcome::LimitExceeded { left } => Err(ApiError::LimitExceeded(left)),
        ReserveOutcome::TooManyOrders(cap) => Err(ApiError::TooManyOrders(cap)),
        ReserveOutcome::CouponUnavailable => match body.coupon_id {
            // Redis let a retired campaign go: an unused coupon of it had expired.
            Some(coupon) if app.retired.is_retired(Kind::Coupon, coupon).await? => {
                if app.retired.coupon_unused(coupon, user_id).await? {
                    Err(ApiError::CouponExpired)
                } else {
                    Err(ApiError::CouponUnavailable)
                }
            }
            _ => Err(ApiError::CouponUnavailable),
        },
        ReserveOutcome::CouponExpired => Err(ApiError::CouponExpired),
        // Nothing reserved and the hold given back: the request may be sent again.
        // Sales::reserve routes again on these; one left means the count kept changing.
        ReserveOutcome::HoldLapsed | ReserveOutcome::Buckets(_) => Err(ApiError::Unavailable),
    }
}

fn validate(items: &[Line]) -> Result<Vec<(u64, u64)>, ApiError> {
    if items.is_empty() {
        return Err(ApiError::BadRequest("invalid_field", "`items` must hold at least one line".into()));
    }
    if items.len() > MAX_LINES {
        return Err(ApiError::BadRequest("too_many_items", format!("an order holds at most {MAX_LINES} lines")));
    }
    let mut seen = HashSet::with_capacity(items.len());
    let mut lines = Vec::with_capacity(items.len());
    for line in items {
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(ApiError::BadRequest(
                "invalid_quantity",
                format!("quantity of SKU {} must be from 1 to {MAX_QUANTITY}, got {}", line.sku, line.quantity),
            ));
        }
        if !seen.insert(line.sku) {
            return Err(ApiError::BadRequest(
                "duplicate_sku",
                format!("SKU {} appears on more than one line", line.sku),
            ));
        }
        lines.push((line.sku, line.quantity as u64));
    }
    Ok(lines)
}

pub(super) fn idempotency_key(header: Option<&HeaderValue>) -> Result<Option<String>, ApiError> {
    let Some(value) = header else { return Ok(None) };
    let bad = || {
        ApiError::BadRequest(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )
    };
    let key = value.to_str().map_err(|_| bad())?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(key.to_string()))
}
