//! `GET /v1/coupons/{coupon_id}` — a campaign's stock as Redis sees it now.

use hyper::StatusCode;
use serde::Serialize;

use super::{
    error::ApiError,
    respond::{json, Reply},
};
use crate::{app::App, time::rfc3339_ms};

#[derive(Serialize)]
struct Campaign {
    coupon_id: u64,
    total: u64,
    remaining: u64,
    issued: u64,
    starts_at: String,
    /// `null` when the campaign never closes.
    ends_at: Option<String>,
}

pub async fn handle(app: &App, coupon_id: u64) -> Result<Reply, ApiError> {
    let info = app.coupons.info(coupon_id).await?.ok_or(ApiError::UnknownCoupon(coupon_id))?;
    Ok(json(
        StatusCode::OK,
        &Campaign {
            coupon_id,
            total: info.total,
            remaining: info.remaining,
            issued: info.issued,
            starts_at: rfc3339_ms(info.starts_at),
            ends_at: (info.ends_at > 0).then(|| rfc3339_ms(info.ends_at)),
        },
    ))
}
