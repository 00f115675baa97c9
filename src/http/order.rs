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
    gateway::{self, PaidFor},
    metrics::METRICS,
    order::{Order, OrderStatus},
    scripts::ConfirmOutcome,
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
    let (order, live) = owned_order(app, caller, sale_id, order_id).await?;
    let view = if live { OrderView::from(&order) } else { OrderView::retired(&order) };
    Ok(json(StatusCode::OK, &view))
}

/// The order as Redis has it (live: true), else as MySQL keeps it; unknown
/// alike when missing and when `caller` (see `Guard::caller`) does not own it.
pub(super) async fn owned_order(
    app: &App,
    caller: Option<u64>,
    sale_id: u64,
    order_id: u64,
) -> Result<(Order, bool), ApiError> {
    let (order, live) = match app.sales.order(sale_id, order_id).await? {
        Some(order) => (order, true),
        None => (retired(app, sale_id, order_id).await?, false),
    };
    if !Guard::owns(caller, order.user_id) {
        return Err(ApiError::UnknownOrder(sale_id, order_id));
    }
    Ok((order, live))
}

/// The order from MySQL once its sale retired; else it is unknown.
async fn retired(app: &App, sale_id: u64, order_id: u64) -> Result<Order, ApiError> {
    app.retired.order(sale_id, order_id).await?.ok_or(ApiError::UnknownOrder(sale_id, order_id))
}

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
    // The key is bound to this order before it can pay it: a payment pays once.
    if !gateway::claim(&app.mysql, &body.payment_key, &PaidFor::Order { sale_id, order_id }).await? {
        METRICS.outcome("confirm_order", "payment_key_used");
        return Err(ApiError::PaymentKeyUsed);
    }
    let outcome = app.sales.confirm(sale_id, order_id, body.amount, &body.payment_key).await;
    let outcome = outcome.map_err(ApiError::write(Write::ConfirmOrder))?;
    METRICS.outcome("confirm_order", outcome.name());
    match outcome {
        ConfirmOutcome::Paid(order) => Ok(json(StatusCode::OK, &OrderView::from(&order))),
        ConfirmOutcome::Closed(order) => Err(ApiError::OrderClosed(order.status)),
        ConfirmOutcome::AlreadyPaid(order) => Err(ApiError::AlreadyPaid(order.payment_key.unwrap_or_default())),
        ConfirmOutcome::Paying => Err(ApiError::PaymentInProgress),
        ConfirmOutcome::AmountMismatch { to_pay } => Err(ApiError::AmountMismatch(to_pay)),
        ConfirmOutcome::Late => Err(ApiError::UnknownOrder(sale_id, order_id)),
        // What confirm_order.lua answers for an order that is no longer reserved.
        ConfirmOutcome::UnknownOrder => {
            let order = retired(app, sale_id, order_id).await?;
            match order.status {
                OrderStatus::Paid
                    if order.payment_key.as_deref() == Some(&body.payment_key) && order.to_pay == body.amount =>
                {
                    Ok(json(StatusCode::OK, &OrderView::retired(&order)))
                }
                OrderStatus::Paid => Err(ApiError::AlreadyPaid(order.payment_key.unwrap_or_default())),
                OrderStatus::Reserved => Err(ApiError::UnknownOrder(sale_id, order_id)),
                closed => Err(ApiError::OrderClosed(closed)),
            }
        }
    }
}

pub async fn cancel(app: &App, sale_id: u64, order_id: u64, headers: &HeaderMap) -> Result<Reply, ApiError> {
    if let Some(caller) = app.guard.caller(headers.get(AUTHORIZATION))? {
        // The owner is checked before anything changes.
        owned_order(app, Some(caller), sale_id, order_id).await?;
    }
    let Some(order) = app.sales.cancel(sale_id, order_id).await.map_err(ApiError::write(Write::CancelOrder))? else {
        let order = retired(app, sale_id, order_id).await;
        METRICS.outcome("cancel_order", if order.is_ok() { "closed" } else { "unknown_order" });
        // A retired sale's orders are paid, cancelled or expired for good.
        return match order?.status {
            OrderStatus::Reserved => Err(ApiError::UnknownOrder(sale_id, order_id)),
            closed => Err(ApiError::OrderClosed(closed)),
        };
    };
    match order.status {
        // Left alone: a wallet payment holds it.
        OrderStatus::Reserved => {
            METRICS.outcome("cancel_order", "closed");
            Err(ApiError::PaymentInProgress)
        }
        OrderStatus::Cancelled => {
            METRICS.outcome("cancel_order", "cancelled");
            Ok(json(StatusCode::OK, &OrderView::from(&order)))
        }
        other => {
            METRICS.outcome("cancel_order", "closed");
            Err(ApiError::OrderClosed(other))
        }
    }
}
