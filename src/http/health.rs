//! `GET /healthz` (the process answers) and `GET /readyz` (Redis, the Kafka
//! broker and MySQL all answer within a second, and no partition of this
//! process's sink is stalled).

use hyper::StatusCode;
use serde_json::json as value;

use super::{
    error::ApiError,
    respond::{json, Reply},
};
use crate::app::App;

pub fn healthz() -> Result<Reply, ApiError> {
    Ok(json(StatusCode::OK, &value!({ "status": "ok" })))
}

pub async fn readyz(app: &App) -> Result<Reply, ApiError> {
    let report = app.probes.check().await;
    let status = if report.all_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok(json(status, &report))
}
