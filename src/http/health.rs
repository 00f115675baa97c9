//! `GET /healthz` (the process answers) and `GET /readyz` (Redis, the Kafka
//! broker and MySQL all answer within a second, and no partition of this
//! process's sink is stalled — or Redis alone, with FLASHSALE_READY_REQUIRES=redis;
//! the Redis primary's address on the ops listener only).

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

/// `names_servers`: include the Redis primary's address (the ops listener
/// only, unless the operator serves the ops routes publicly).
pub async fn readyz(app: &App, names_servers: bool) -> Result<Reply, ApiError> {
    let mut report = app.probes.check().await;
    if !names_servers {
        report.redis_primary = None;
    }
    report.warning = app.guard.auth_warning();
    let status = if report.ready(app.http.ready_requires) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok(json(status, &report))
}
