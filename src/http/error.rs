//! Every error the API answers with, and the one place that maps them to
//! status codes and JSON bodies `{"error": "<code>", "message": "..."}`.

use hyper::{header, StatusCode};
use serde::Serialize;

use super::respond::{json, Reply};
use crate::domain::{Error as DomainError, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Refused by the domain, for its reason: nothing was done.
    #[error(transparent)]
    Refused(#[from] Refusal),
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
            ApiError::Refused(refusal) => refusal_status(refusal),
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PaymentsNotConfigured | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
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
            ApiError::Refused(refusal) => refusal.code(),
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
            ApiError::Refused(Refusal::UnknownSkus(skus) | Refusal::SkusSoldOut(skus)) => body.skus = Some(skus),
            ApiError::Refused(Refusal::LimitExceeded(left) | Refusal::BalanceLimitExceeded(left)) => {
                body.left = Some(*left)
            }
            ApiError::Refused(Refusal::AmountMismatch(to_pay)) => body.to_pay = Some(*to_pay),
            ApiError::Refused(Refusal::AlreadyPaid(key)) => body.payment_key = Some(key),
            ApiError::Refused(Refusal::InsufficientBalance { balance, to_pay }) => {
                body.balance = Some(*balance);
                body.to_pay = Some(*to_pay);
            }
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

/// The status a refusal is answered with.
fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::UnknownCoupon(_) | Refusal::UnknownSale(_) | Refusal::UnknownOrder(..) | Refusal::UnknownSkus(_) => {
            StatusCode::NOT_FOUND
        }
        Refusal::AlreadyIssued(_)
        | Refusal::LimitExceeded(_)
        | Refusal::TooManyOrders(_)
        | Refusal::CouponUnavailable
        | Refusal::CouponExpired
        | Refusal::OrderClosed(_)
        | Refusal::AlreadyPaid(_)
        | Refusal::PaymentKeyUsed
        | Refusal::PaymentInProgress
        | Refusal::NoQueue
        | Refusal::PowNotRequired => StatusCode::CONFLICT,
        Refusal::PowRequired | Refusal::PowInvalid => StatusCode::BAD_REQUEST,
        Refusal::InvalidTicket => StatusCode::UNAUTHORIZED,
        Refusal::InsufficientBalance { .. } => StatusCode::PAYMENT_REQUIRED,
        Refusal::SoldOut(_) | Refusal::SkusSoldOut(_) | Refusal::NothingLeft(_) => StatusCode::GONE,
        Refusal::IdempotencyKeyReused | Refusal::AmountMismatch(_) | Refusal::BalanceLimitExceeded(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Refusal::NotStarted(_) | Refusal::Ended(_) | Refusal::NotAdmitted | Refusal::QueueNotConfigured => {
            StatusCode::FORBIDDEN
        }
    }
}

impl ApiError {
    /// Maps a failed `write`: sent with no answer is `outcome_unknown`, with
    /// the message that tells its caller how to learn what happened.
    pub fn write(write: Write) -> impl Fn(DomainError) -> ApiError {
        move |e| match e {
            DomainError::OutcomeUnknown(_) => ApiError::OutcomeUnknown(write),
            other => ApiError::from(other),
        }
    }
}

/// A domain failure of a read (a write's maps through [`ApiError::write`]):
/// not done and retry (503), or a bug (500; logged where it was found).
impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Refused(refusal) => ApiError::Refused(refusal),
            DomainError::Abandoned => ApiError::Timeout,
            DomainError::Unavailable(_) | DomainError::OutcomeUnknown(_) => ApiError::Unavailable,
            DomainError::Bug(_) => ApiError::Internal,
        }
    }
}
