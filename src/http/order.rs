//! One order: `GET .../orders/{order_id}`, `POST .../confirm` (the payment
//! gateway's signed callback) and `POST .../cancel`. An order of a sale that
//! retired (Redis let it go) is answered from MySQL, as Redis would have:
//! it is paid, cancelled or expired for good.

use hyper::{body::Incoming, header::AUTHORIZATION, HeaderMap, Request, StatusCode};
use serde::Deserialize;

use super::{
    body::{parse_body, read_bytes},
    error::{ApiError, Write},
    guard::{GatewayCall, Guard},
    order_view::OrderView,
    respond::{json, Reply},
};
use crate::{
    app::App,
    domain::{orders::Found, Refusal},
};

const MAX_PAYMENT_KEY: usize = 128;

/// A gateway's `payment_key` (confirm, charge): 1 to 128 bytes, and not
/// "wallet", which names wallet payments.
pub(super) fn check_payment_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_PAYMENT_KEY {
        return Err(ApiError::BadRequest(
            "invalid_field",
            format!("`payment_key` must be 1 to {MAX_PAYMENT_KEY} characters"),
        ));
    }
    if key == "wallet" {
        return Err(ApiError::BadRequest("invalid_field", "`payment_key` \"wallet\" names wallet payments".into()));
    }
    Ok(())
}

pub async fn get(app: &App, sale_id: u64, order_id: u64, headers: &HeaderMap) -> Result<Reply, ApiError> {
    // The token first: a missing order and another user's answer alike, 404.
    let caller = app.guard.caller(headers.get(AUTHORIZATION))?;
    let found = owned_order(app, caller, sale_id, order_id).await?;
    Ok(json(StatusCode::OK, &OrderView::of(&found)))
}

/// The order, live or as MySQL keeps it; unknown alike when missing and when
/// `caller` (see `Guard::caller`) does not own it.
pub(super) async fn owned_order(
    app: &App,
    caller: Option<u64>,
    sale_id: u64,
    order_id: u64,
) -> Result<Found, ApiError> {
    let found = app.domain.orders.find(sale_id, order_id).await?;
    if !Guard::owns(caller, found.order.user_id) {
        return Err(Refusal::UnknownOrder(sale_id, order_id).into());
    }
    Ok(found)
}

/// Largest amount a payment may name: exact in a double.
const MAX_AMOUNT: u64 = (1 << 53) - 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirmation {
    payment_key: String,
    amount: u64,
}

const FIELDS: &[(&str, &str)] = &[
    ("payment_key", "the payment gateway's reference, a string"),
    ("amount", "the amount paid in minor units, an integer"),
];

/// The gateway's callback: believed only when signed for this very path (before
/// the body is even parsed, so an unsigned caller learns nothing). One order,
/// one payment: the same payment again replays 200, another one is 409, and a
/// payment_key that paid anything else is 409 `payment_key_used`.
pub async fn confirm(app: &App, sale_id: u64, order_id: u64, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let call = GatewayCall::of(&req);
    let raw = read_bytes(req, &app.http).await?;
    app.guard.payment(&call, &raw)?;
    let body: Confirmation = parse_body(&raw, &app.http, FIELDS)?;
    check_payment_key(&body.payment_key)?;
    // The scripts compare amounts as Lua numbers (doubles): above 2^53 two
    // amounts could compare equal. No order costs that much.
    if body.amount > MAX_AMOUNT {
        return Err(ApiError::BadRequest(
            "invalid_amount",
            format!("`amount` must be at most {MAX_AMOUNT} (2^53 - 1 minor units), got {}", body.amount),
        ));
    }
    let paid = app.domain.orders.confirm(sale_id, order_id, body.amount, &body.payment_key).await;
    let paid = paid.map_err(ApiError::write(Write::ConfirmOrder))?;
    Ok(json(StatusCode::OK, &OrderView::of(&paid)))
}

pub async fn cancel(app: &App, sale_id: u64, order_id: u64, headers: &HeaderMap) -> Result<Reply, ApiError> {
    if let Some(caller) = app.guard.caller(headers.get(AUTHORIZATION))? {
        // The owner is checked before anything changes.
        owned_order(app, Some(caller), sale_id, order_id).await?;
    }
    let order = app.domain.orders.cancel(sale_id, order_id).await.map_err(ApiError::write(Write::CancelOrder))?;
    Ok(json(StatusCode::OK, &OrderView::from(&order)))
}
