//! `GET /v1/coupons/{coupon_id}` — a campaign's stock as Redis sees it now,
//! or, once it retired and Redis let it go, as MySQL keeps it.

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
    /// True when answered from MySQL: the campaign retired and Redis let it go.
    retired: bool,
}

pub async fn handle(app: &App, coupon_id: u64) -> Result<Reply, ApiError> {
    let campaign = match app.coupons.info(coupon_id).await? {
        Some(info) => Campaign {
            coupon_id,
            total: info.total,
            remaining: info.remaining,
            issued: info.issued,
            starts_at: rfc3339_ms(info.starts_at),
            ends_at: (info.ends_at > 0).then(|| rfc3339_ms(info.ends_at)),
            retired: false,
        },
        None => {
            let c = app.retired.campaign(coupon_id).await?.ok_or(ApiError::UnknownCoupon(coupon_id))?;
            Campaign {
                coupon_id,
                total: c.total,
                remaining: c.remaining(),
                issued: c.issued,
                starts_at: rfc3339_ms(c.starts_at),
                ends_at: (c.ends_at > 0).then(|| rfc3339_ms(c.ends_at)),
                retired: true,
            }
        }
    };
    Ok(json(StatusCode::OK, &campaign))
}
