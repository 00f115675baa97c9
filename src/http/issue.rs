//! `POST /v1/coupons/{coupon_id}/issue` — first-come coupon issuance.

use hyper::{body::Incoming, header::AUTHORIZATION, Request, StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    body::read_json,
    error::{ApiError, Write},
    respond::{json, Reply},
};
use crate::{app::App, db::archive::Kind, scripts::IssueOutcome, time::rfc3339_ms};

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
    let body: IssueRequest = read_json(req, &app.http, FIELDS).await?;
    let user_id = app.guard.user(authorization.as_ref(), body.user_id)?;
    match app.coupons.issue(coupon_id, user_id).await.map_err(ApiError::write(Write::IssueCoupon))? {
        IssueOutcome::Issued { remaining, issued_at } => {
            Ok(json(StatusCode::CREATED, &Issued { coupon_id, user_id, issued_at: rfc3339_ms(issued_at), remaining }))
        }
        IssueOutcome::AlreadyIssued => Err(ApiError::AlreadyIssued(coupon_id)),
        IssueOutcome::SoldOut => Err(ApiError::SoldOut(coupon_id)),
        IssueOutcome::NotStarted => Err(ApiError::NotStarted(format!("coupon campaign {coupon_id}"))),
        IssueOutcome::Ended => Err(ApiError::Ended(format!("coupon campaign {coupon_id}"))),
        // Redis let a retired campaign go: it ended, as Redis would have said.
        IssueOutcome::Unknown if app.retired.is_retired(Kind::Coupon, coupon_id).await? => {
            Err(ApiError::Ended(format!("coupon campaign {coupon_id}")))
        }
        IssueOutcome::Unknown => Err(ApiError::UnknownCoupon(coupon_id)),
    }
}
