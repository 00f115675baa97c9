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
    let sale = app.domain.orders.sale(sale_id).await?;
    let view = SaleView {
        sale_id,
        starts_at: rfc3339_ms(sale.starts_at),
        ends_at: (sale.ends_at > 0).then(|| rfc3339_ms(sale.ends_at)),
        per_user_limit: sale.per_user_limit,
        hold_seconds: sale.hold_ms / 1000,
        skus: sale
            .skus
            .iter()
            .map(|s| SkuView { sku: s.sku, price: s.price, stock: s.stock, remaining: s.remaining })
            .collect(),
        retired: sale.retired,
    };
    Ok(json(StatusCode::OK, &view))
}
