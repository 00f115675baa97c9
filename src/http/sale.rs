//! `GET /v1/sales/{sale_id}` — a sale's window, limit and stock as Redis sees
//! it now, or, once it retired and Redis let it go, as MySQL keeps it.

use hyper::StatusCode;
use serde::Serialize;

use super::{
    error::ApiError,
    respond::{json, Reply},
};
use crate::{app::App, time::rfc3339_ms};

#[derive(Serialize)]
struct SaleView {
    sale_id: u64,
    starts_at: String,
    ends_at: Option<String>,
    per_user_limit: u64,
    hold_seconds: u64,
    skus: Vec<SkuView>,
    /// True when answered from MySQL: the sale retired and Redis let it go.
    retired: bool,
}

#[derive(Serialize)]
struct SkuView {
    sku: u64,
    price: u64,
    /// Supplied in all (seed + top-ups).
    stock: u64,
    remaining: u64,
}

pub async fn get(app: &App, sale_id: u64) -> Result<Reply, ApiError> {
    if let Some(info) = app.sales.summary(sale_id).await? {
        let view = SaleView {
            sale_id,
            starts_at: rfc3339_ms(info.starts_at),
            ends_at: (info.ends_at > 0).then(|| rfc3339_ms(info.ends_at)),
            per_user_limit: info.per_user_limit,
            hold_seconds: info.hold_ms / 1000,
            skus: info
                .skus
                .iter()
                .map(|s| SkuView { sku: s.sku, price: s.price, stock: s.stock, remaining: s.remaining })
                .collect(),
            retired: false,
        };
        return Ok(json(StatusCode::OK, &view));
    }
    let (spec, held) = app.retired.sale(sale_id).await?.ok_or(ApiError::UnknownSale(sale_id))?;
    let view = SaleView {
        sale_id,
        starts_at: rfc3339_ms(spec.starts_at),
        ends_at: (spec.ends_at > 0).then(|| rfc3339_ms(spec.ends_at)),
        per_user_limit: spec.per_user_limit,
        hold_seconds: spec.hold_ms / 1000,
        skus: spec
            .skus
            .iter()
            .map(|s| SkuView {
                sku: s.sku,
                price: s.price,
                stock: s.stock,
                remaining: crate::retired::retired_remaining(s.sku, s.stock, &held),
            })
            .collect(),
        retired: true,
    };
    Ok(json(StatusCode::OK, &view))
}
