//! `POST /v1/coupons/{coupon_id}/issue` — first-come coupon issuance.

use hyper::{body::Incoming, header::AUTHORIZATION, Request, StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    body::read_json,
    error::{ApiError, Write},
    queue::ADMISSION,
    respond::{json, Reply},
};
use crate::{app::App, keys::Room, time::rfc3339_ms};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueRequest {
    /// Required unless auth is on (then the token names the user).
    #[serde(default)]
    user_id: Option<u64>,
}

const FIELDS: &[(&str, &str)] = &[("user_id", "an integer from 0 to 2^64-1")];

#[derive(Serialize)]
struct Issued {
    coupon_id: u64,
    user_id: u64,
    issued_at: String,
    remaining: u64,
}

pub async fn handle(app: &App, coupon_id: u64, req: Request<Incoming>) -> Result<Reply, ApiError> {
    // Only the one header identity needs, not a copy of them all.
    let authorization = req.headers().get(AUTHORIZATION).cloned();
    let admission = req.headers().get(ADMISSION).map(|v| v.to_str().unwrap_or_default().to_owned());
    let body: IssueRequest = read_json(req, &app.http, FIELDS).await?;
    let user_id = app.guard.user(authorization.as_ref(), body.user_id)?;
    let admitted = app.domain.queue.admitted(Room::Coupon(coupon_id), user_id, admission.as_deref());
    let issued =
        app.domain.coupons.issue(coupon_id, user_id, admitted).await.map_err(ApiError::write(Write::IssueCoupon))?;
    let (remaining, issued_at) = (issued.remaining, rfc3339_ms(issued.issued_at));
    Ok(json(StatusCode::CREATED, &Issued { coupon_id, user_id, issued_at, remaining }))
}
