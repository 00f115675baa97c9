//! `POST /v1/sales/{sale_id}/orders/{order_id}/pay` `{"method": "wallet"}`:
//! the order's owner pays it from their wallet (see `wallet::pay`).

use hyper::{body::Incoming, header::AUTHORIZATION, Request, StatusCode};
use serde::Deserialize;

use super::{
    body::read_json,
    error::{ApiError, Write},
    order::owned_order,
    order_view::OrderView,
    respond::{json, Reply},
};
use crate::{app::App, metrics::METRICS, order::OrderStatus, wallet::pay::PayOutcome};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayRequest {
    method: String,
}

const FIELDS: &[(&str, &str)] = &[("method", "how to pay: \"wallet\"")];

pub async fn handle(app: &App, sale_id: u64, order_id: u64, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let authorization = req.headers().get(AUTHORIZATION).cloned();
    let body: PayRequest = read_json(req, &app.http, FIELDS).await?;
    if body.method != "wallet" {
        return Err(ApiError::BadRequest("invalid_method", "`method` must be \"wallet\"".into()));
    }
    if let Some(caller) = app.guard.caller(authorization.as_ref())? {
        // The owner is checked before anything changes.
        owned_order(app, Some(caller), sale_id, order_id).await?;
    }
    let outcome = app.payments.pay(sale_id, order_id).await.map_err(ApiError::write(Write::PayOrder))?;
    let name = match &outcome {
        PayOutcome::Paid(_) => "paid",
        PayOutcome::Closed(_) => "closed",
        PayOutcome::Insufficient { .. } => "insufficient",
        PayOutcome::GivenUp => "given_up",
        PayOutcome::UnknownOrder => "unknown_order",
    };
    METRICS.outcome("pay_order", name);
    match outcome {
        PayOutcome::Paid(order) => Ok(json(StatusCode::OK, &OrderView::from(&order))),
        PayOutcome::Closed(order) => Err(ApiError::OrderClosed(order.status)),
        PayOutcome::Insufficient { balance, to_pay } => Err(ApiError::InsufficientBalance { balance, to_pay }),
        // Outlived its hold: nothing was taken, as after a timeout.
        PayOutcome::GivenUp => Err(ApiError::Timeout),
        // Redis let it go: released for good, or its sale retired (MySQL says which).
        PayOutcome::UnknownOrder => match app.retired.order(sale_id, order_id).await? {
            Some(order) if order.status != OrderStatus::Reserved => Err(ApiError::OrderClosed(order.status)),
            _ => Err(ApiError::UnknownOrder(sale_id, order_id)),
        },
    }
}
