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
    queue::ADMISSION,
    respond::{json, Reply},
};
use crate::{app::App, domain::orders::NewOrder, keys::Room};

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
    let admission = req.headers().get(ADMISSION).map(|v| v.to_str().unwrap_or_default().to_owned());
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
        admitted: app.domain.queue.admitted(Room::Sale(sale_id), user_id, admission.as_deref()),
    };
    let reserved = app.domain.orders.reserve(&new).await.map_err(ApiError::write(Write::ReserveOrder))?;
    // A replay is the order as it is now: it may have been paid, cancelled
    // or expired since the first answer.
    let mut reply = json(StatusCode::CREATED, &OrderView::of(&reserved.order));
    if reserved.replayed {
        reply.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(reply)
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
