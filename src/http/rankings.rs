//! `GET /v1/rankings/products?window=3d&limit=5` — most-paid products over a
//! sliding window (paid orders containing the SKU, not quantities), from
//! hourly Redis tallies the confirm script keeps.

use hyper::StatusCode;
use serde::Serialize;

use super::{
    error::ApiError,
    respond::{json, Reply},
};
use crate::{app::App, domain::orders::MAX_RANKING_HOURS};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;

#[derive(Serialize)]
struct Ranking {
    window: String,
    products: Vec<Product>,
}

#[derive(Serialize)]
struct Product {
    sku: u64,
    paid_orders: u64,
}

pub async fn get(app: &App, query: Option<&str>) -> Result<Reply, ApiError> {
    let bad_window = || {
        ApiError::BadRequest(
            "invalid_query",
            format!("`window` must be like 6h or 3d, at most {} days", MAX_RANKING_HOURS / 24),
        )
    };
    let bad_limit = || ApiError::BadRequest("invalid_query", format!("`limit` must be from 1 to {MAX_LIMIT}"));
    let (mut window, mut limit) = ("1d", DEFAULT_LIMIT);
    let mut hours = 24;
    // Every occurrence is checked: a bad value is never hidden by a later good one.
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("window", w)) => {
                hours = window_hours(w).ok_or_else(bad_window)?;
                window = w;
            }
            Some(("limit", l)) => {
                limit = super::decimal::count(l).filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(bad_limit)?
            }
            _ => {}
        }
    }
    let window = window.to_string();
    let products = app
        .domain
        .orders
        .top_products(hours, limit)
        .await?
        .into_iter()
        .map(|(sku, paid_orders)| Product { sku, paid_orders })
        .collect();
    Ok(json(StatusCode::OK, &Ranking { window, products }))
}

/// `6h` or `3d` in hours. The unit is stripped as a char, never by byte
/// index: a query is any UTF-8, and `3é` must be a 400, not a panic.
fn window_hours(window: &str) -> Option<u64> {
    let (n, per_unit) = match window.strip_suffix('h') {
        Some(n) => (n, 1),
        None => (window.strip_suffix('d')?, 24u64),
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours = n.parse::<u64>().ok()?.checked_mul(per_unit)?;
    (1..=MAX_RANKING_HOURS).contains(&hours).then_some(hours)
}

#[cfg(test)]
mod tests {
    #[test]
    fn windows_parse_in_hours_and_days_within_bounds() {
        assert_eq!(super::window_hours("3d"), Some(72));
        assert_eq!(super::window_hours("6h"), Some(6));
        assert_eq!(super::window_hours("0h"), None);
        assert_eq!(super::window_hours("31d"), None);
        assert_eq!(super::window_hours("d"), None);
        assert_eq!(super::window_hours("3w"), None);
        assert_eq!(super::window_hours("+3d"), None);
        assert_eq!(super::window_hours("99999999999999999999d"), None);
    }

    #[test]
    fn a_window_ending_in_a_multibyte_character_is_rejected_not_a_panic() {
        for window in ["3\u{e9}", "\u{e9}", "3d\u{e9}", "\u{1F600}", "3\u{e9}d", ""] {
            assert_eq!(super::window_hours(window), None, "{window}");
        }
    }
}
