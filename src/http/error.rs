//! Every error the API answers with, and the one place that maps them to
//! status codes and JSON bodies `{"error": "<code>", "message": "..."}`.

use hyper::{header, StatusCode};

use super::respond::{json, Reply};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no coupon campaign {0}")]
    UnknownCoupon(u64),
    #[error("user already has coupon {0}")]
    AlreadyIssued(u64),
    #[error("coupon {0} is sold out")]
    SoldOut(u64),
    #[error("coupon campaign {0} has not started yet")]
    NotStarted(u64),
    #[error("coupon campaign {0} has ended")]
    Ended(u64),
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method not allowed here; allowed: {0}")]
    MethodNotAllowed(&'static str),
    #[error("a backing service is unavailable; retry shortly")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownCoupon(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::AlreadyIssued(_) => StatusCode::CONFLICT,
            ApiError::SoldOut(_) => StatusCode::GONE,
            ApiError::NotStarted(_) | ApiError::Ended(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownCoupon(_) => "unknown_coupon",
            ApiError::AlreadyIssued(_) => "already_issued",
            ApiError::SoldOut(_) => "sold_out",
            ApiError::NotStarted(_) => "not_started",
            ApiError::Ended(_) => "ended",
            ApiError::BadRequest(code, _) => code,
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal => "internal",
        }
    }

    pub fn into_reply(self) -> Reply {
        let body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        let mut reply = json(self.status(), &body);
        let headers = reply.headers_mut();
        match self {
            ApiError::Unavailable => {
                headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            ApiError::MethodNotAllowed(allow) => {
                headers.insert(header::ALLOW, header::HeaderValue::from_static(allow));
            }
            _ => {}
        }
        reply
    }
}

/// Redis failures seen by a handler: the client could not reach Redis in time
/// (503, retry) or something unexpected happened (500, logged).
impl From<fred::error::Error> for ApiError {
    fn from(e: fred::error::Error) -> Self {
        use fred::error::ErrorKind::*;
        match e.kind() {
            IO | Timeout | Canceled | Backpressure | Cluster | Routing => {
                tracing::warn!(error = %e, "redis unavailable");
                ApiError::Unavailable
            }
            _ => {
                tracing::error!(error = ?e, "redis error");
                ApiError::Internal
            }
        }
    }
}
