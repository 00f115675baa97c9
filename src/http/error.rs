//! Every error the API answers with, and the one place that maps them to
//! status codes and JSON bodies `{"error": "<code>", "message": "..."}`.

use hyper::{header, StatusCode};
use serde::Serialize;

use super::respond::{json, Reply};
use crate::{caller::WriteError, order::OrderStatus};

fn list(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no coupon campaign {0}")]
    UnknownCoupon(u64),
    #[error("user already has coupon {0}")]
    AlreadyIssued(u64),
    #[error("coupon {0} is sold out")]
    SoldOut(u64),
    /// What has not started: "coupon campaign 5", "sale 7".
    #[error("{0} has not started yet")]
    NotStarted(String),
    #[error("{0} has ended")]
    Ended(String),
    #[error("no sale {0}")]
    UnknownSale(u64),
    #[error("no order {1} in sale {0}")]
    UnknownOrder(u64, u64),
    #[error("unknown SKU(s) {}", list(.0))]
    UnknownSkus(Vec<u64>),
    #[error("not enough stock for SKU(s) {}", list(.0))]
    SkusSoldOut(Vec<u64>),
    #[error("the per-user limit of this sale allows {0} more unit(s)")]
    LimitExceeded(u64),
    /// The user made the most orders a sale allows one user.
    #[error("a user may make at most {0} orders in a sale, cancelled and expired ones included")]
    TooManyOrders(u64),
    #[error("the coupon was not issued to this user, or is already used")]
    CouponUnavailable,
    #[error("the coupon's campaign has ended; the coupon no longer applies")]
    CouponExpired,
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("the amount paid must equal the amount to pay, {0}")]
    AmountMismatch(u64),
    #[error("the order is {}", .0.as_str())]
    OrderClosed(OrderStatus),
    /// The order was paid by another payment (its key is answered: refund the new one).
    #[error("the order is already paid by another payment; refund this one")]
    AlreadyPaid(String),
    #[error("the wallet holds {balance}, less than the {to_pay} to pay; nothing was taken")]
    InsufficientBalance { balance: u64, to_pay: u64 },
    /// A charge would take the balance past FLASHSALE_WALLET_MAX_BALANCE; `left` more fits.
    #[error("the charge would take the balance past its maximum; at most {0} more can be charged")]
    BalanceLimitExceeded(u64),
    #[error("a wallet payment of this order is under way; retry shortly")]
    PaymentInProgress,
    /// The payment_key already paid another order or charge (which is not named).
    #[error("this payment_key was already used for another order or charge; a payment pays once")]
    PaymentKeyUsed,
    #[error("the Flashsale-Signature header is missing, malformed, stale or does not match the method, path and body")]
    InvalidSignature,
    #[error("payment callbacks are not accepted: the service has no FLASHSALE_PAYMENT_SECRET")]
    PaymentsNotConfigured,
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
    #[error("too many requests; retry after the Retry-After seconds")]
    TooManyRequests(std::time::Duration),
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid token, for another user's resource.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Not done: the request's time ran out before anything was sent.
    #[error("the request took too long; nothing was done")]
    Timeout,
    /// Sent, and no answer came back: it may or may not have happened.
    #[error("{}", .0.message())]
    OutcomeUnknown(Write),
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownCoupon(_)
            | ApiError::NotFound(_)
            | ApiError::UnknownSale(_)
            | ApiError::UnknownOrder(..)
            | ApiError::UnknownSkus(_) => StatusCode::NOT_FOUND,
            ApiError::AlreadyIssued(_)
            | ApiError::LimitExceeded(_)
            | ApiError::TooManyOrders(_)
            | ApiError::CouponUnavailable
            | ApiError::CouponExpired
            | ApiError::OrderClosed(_)
            | ApiError::AlreadyPaid(_)
            | ApiError::PaymentKeyUsed
            | ApiError::PaymentInProgress => StatusCode::CONFLICT,
            ApiError::InsufficientBalance { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::SoldOut(_) | ApiError::SkusSoldOut(_) => StatusCode::GONE,
            ApiError::IdempotencyKeyReused | ApiError::AmountMismatch(_) | ApiError::BalanceLimitExceeded(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::NotStarted(_) | ApiError::Ended(_) | ApiError::PaymentsNotConfigured | ApiError::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable | ApiError::Timeout | ApiError::OutcomeUnknown(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unauthorized(_) | ApiError::InvalidSignature => StatusCode::UNAUTHORIZED,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownCoupon(_) => "unknown_coupon",
            ApiError::AlreadyIssued(_) => "already_issued",
            ApiError::SoldOut(_) | ApiError::SkusSoldOut(_) => "sold_out",
            ApiError::NotStarted(_) => "not_started",
            ApiError::Ended(_) => "ended",
            ApiError::UnknownSale(_) => "unknown_sale",
            ApiError::UnknownOrder(..) => "unknown_order",
            ApiError::UnknownSkus(_) => "unknown_sku",
            ApiError::LimitExceeded(_) => "limit_exceeded",
            ApiError::TooManyOrders(_) => "too_many_orders",
            ApiError::CouponUnavailable => "coupon_unavailable",
            ApiError::CouponExpired => "coupon_expired",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::AmountMismatch(_) => "amount_mismatch",
            ApiError::OrderClosed(OrderStatus::Paid) => "order_paid",
            ApiError::OrderClosed(OrderStatus::Cancelled) => "order_cancelled",
            ApiError::OrderClosed(_) => "order_expired",
            ApiError::AlreadyPaid(_) => "already_paid",
            ApiError::InsufficientBalance { .. } => "insufficient_balance",
            ApiError::BalanceLimitExceeded(_) => "balance_limit_exceeded",
            ApiError::PaymentInProgress => "payment_in_progress",
            ApiError::PaymentKeyUsed => "payment_key_used",
            ApiError::InvalidSignature => "invalid_signature",
            ApiError::PaymentsNotConfigured => "payments_not_configured",
            ApiError::BadRequest(code, _) => code,
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Unavailable => "unavailable",
            ApiError::TooManyRequests(_) => "rate_limited",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Timeout => "timeout",
            ApiError::OutcomeUnknown(_) => "outcome_unknown",
            ApiError::Internal => "internal",
        }
    }

    pub fn into_reply(self) -> Reply {
        let message = self.to_string();
        let mut body = ErrorBody {
            error: self.code(),
            message: &message,
            skus: None,
            left: None,
            to_pay: None,
            payment_key: None,
            balance: None,
        };
        // Details a client can act on without parsing the message.
        match &self {
            ApiError::UnknownSkus(skus) | ApiError::SkusSoldOut(skus) => body.skus = Some(skus),
            ApiError::LimitExceeded(left) => body.left = Some(*left),
            ApiError::AmountMismatch(to_pay) => body.to_pay = Some(*to_pay),
            ApiError::AlreadyPaid(key) => body.payment_key = Some(key),
            ApiError::InsufficientBalance { balance, to_pay } => {
                body.balance = Some(*balance);
                body.to_pay = Some(*to_pay);
            }
            ApiError::BalanceLimitExceeded(left) => body.left = Some(*left),
            _ => {}
        }
        let mut reply = json(self.status(), &body);
        let headers = reply.headers_mut();
        match self {
            ApiError::Unavailable | ApiError::Timeout | ApiError::OutcomeUnknown(_) => {
                headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            ApiError::TooManyRequests(wait) => {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                headers.insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
            }
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed(allow) => {
                headers.insert(header::ALLOW, header::HeaderValue::from_static(allow));
            }
            _ => {}
        }
        reply
    }
}

/// Every error reply's body: `error` (the stable code) and `message`, plus the
/// details some errors carry.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    skus: Option<&'a [u64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    left: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_pay: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    balance: Option<u64>,
}

/// A state change a route makes, named for how its caller learns whether a
/// change whose answer was lost happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    IssueCoupon,
    ReserveOrder,
    ConfirmOrder,
    CancelOrder,
    ChargeWallet,
    PayOrder,
}

impl Write {
    fn message(self) -> &'static str {
        match self {
            Write::IssueCoupon => {
                "no answer came back from Redis in time: the coupon may or may not have been issued. \
                 Retrying with the same user is safe and tells: 201 if it is issued now, \
                 409 `already_issued` if it was"
            }
            Write::ReserveOrder => {
                "no answer came back from Redis in time: the order may or may not have been reserved. \
                 Retrying with the same Idempotency-Key is safe and tells: it answers the order if it was \
                 reserved and reserves it if not (without a key, a retry may reserve a second order)"
            }
            Write::ConfirmOrder => {
                "no answer came back from Redis in time: the order may or may not have been paid. \
                 Retrying the same confirmation is safe and tells: 200 with the paid order if it was paid \
                 (GET the order to see its state)"
            }
            Write::CancelOrder => {
                "no answer came back from Redis in time: the order may or may not have been cancelled. \
                 Retrying the cancel is safe and tells: 200 with the cancelled order if it was cancelled \
                 (GET the order to see its state)"
            }
            Write::ChargeWallet => {
                "no answer came back from Redis in time: the wallet may or may not have been charged. \
                 Retrying with the same Idempotency-Key is safe and tells: it answers the charge if it was \
                 made and makes it if not"
            }
            Write::PayOrder => {
                "no answer came back from Redis in time: the order may or may not have been paid from the \
                 wallet (never one without the other). Retrying the payment is safe and tells: 200 with the \
                 paid order if it is paid now, 409 `order_paid` if it was paid before; an interrupted \
                 payment is settled within FLASHSALE_WALLET_HOLD_MS (GET the order to see its state)"
            }
        }
    }
}

impl ApiError {
    /// Maps a failed `write`: never sent is `timeout` or `unavailable` (it did
    /// not happen); sent, with the connection lost or no answer in time, is
    /// `outcome_unknown`; an error Redis answered maps as any Redis error.
    pub fn write(write: Write) -> impl Fn(WriteError) -> ApiError {
        move |e| match e {
            WriteError::Abandoned => ApiError::Timeout,
            WriteError::NotSent(e) => {
                tracing::warn!(error = %e, "write not sent");
                ApiError::Unavailable
            }
            WriteError::Failed(e) => {
                use fred::error::ErrorKind::*;
                match e.kind() {
                    _ if crate::redis::lost_in_flight(&e) => {
                        tracing::warn!(error = %e, ?write, "write outcome unknown");
                        ApiError::OutcomeUnknown(write)
                    }
                    IO | Timeout | Canceled => {
                        tracing::warn!(error = %e, ?write, "write outcome unknown");
                        ApiError::OutcomeUnknown(write)
                    }
                    _ => ApiError::from(e),
                }
            }
        }
    }
}

/// Redis failures seen by a handler: the client could not reach Redis in time
/// (503, retry) or something unexpected happened (500, logged). For a read;
/// a write maps through [`ApiError::write`].
impl From<crate::retired::Unavailable> for ApiError {
    fn from(e: crate::retired::Unavailable) -> Self {
        tracing::warn!(error = %e, "cannot read a retired record");
        ApiError::Unavailable
    }
}

impl From<fred::error::Error> for ApiError {
    fn from(e: fred::error::Error) -> Self {
        use fred::error::ErrorKind::*;
        if crate::redis::cross_slot(&e) {
            tracing::error!(error = %e, "Redis Cluster refused keys of several slots in one command");
            return ApiError::Unavailable;
        }
        if crate::redis::refused_write(&e) || crate::redis::not_sent(&e) || crate::redis::lost_in_flight(&e) {
            tracing::warn!(error = %e, "redis refused the call (failover, loading, too few replicas)");
            return ApiError::Unavailable;
        }
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

/// MySQL failures seen by a handler of a route served from MySQL: 503, logged.
impl From<mysql_async::Error> for ApiError {
    fn from(e: mysql_async::Error) -> Self {
        tracing::warn!(error = %e, "mysql unavailable");
        ApiError::Unavailable
    }
}
