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
use crate::app::App;

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
    let paid = app.domain.orders.pay_from_wallet(sale_id, order_id).await.map_err(ApiError::write(Write::PayOrder))?;
    Ok(json(StatusCode::OK, &OrderView::from(&paid)))
}
