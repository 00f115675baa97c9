//! Query strings of the list routes: `limit` and `before` (a page cursor),
//! every occurrence checked, so a bad value is never hidden by a later good one.

use super::error::ApiError;

/// The `name=value` pairs of a query, as sent (no percent-decoding: the
/// values read here are digits and `-`).
pub fn pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    query.unwrap_or("").split('&').filter(|p| !p.is_empty()).filter_map(|p| p.split_once('='))
}

pub mod limit {
    use super::ApiError;

    pub const DEFAULT: usize = 20;
    pub const MAX: usize = 100;

    pub fn parse(value: &str) -> Result<usize, ApiError> {
        crate::http::decimal::count(value)
            .filter(|l| (1..=MAX).contains(l))
            .ok_or_else(|| ApiError::BadRequest("invalid_query", format!("`limit` must be from 1 to {MAX}")))
    }
}

pub mod cursor {
    use super::ApiError;

    fn bad() -> ApiError {
        ApiError::BadRequest("invalid_query", "`before` must be the `next` of an earlier page".into())
    }

    /// A cursor that is one number.
    pub fn number(value: &str) -> Result<u64, ApiError> {
        crate::http::decimal::canonical(value).ok_or_else(bad)
    }

    /// A cursor of two numbers, `a-b`.
    pub fn pair(value: &str) -> Result<(u64, u64), ApiError> {
        let (a, b) = value.split_once('-').ok_or_else(bad)?;
        let number = |n| crate::http::decimal::canonical(n).ok_or_else(bad);
        Ok((number(a)?, number(b)?))
    }
}
