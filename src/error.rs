//! The domain's one error type (re-exported by `domain`): what a caller of a
//! domain service must tell its own caller — refused with a reason,
//! unavailable, outcome unknown, a bug. The stores convert their errors into it.

use crate::order::OrderStatus;

fn list(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing was done, for this reason.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Nothing was done: the caller stopped waiting before anything was sent.
    #[error("not sent: the caller stopped waiting")]
    Abandoned,
    /// Nothing was done: a backing service could not be reached, or refused
    /// for now (failover, loading, too few replicas). Retry shortly.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A change was sent and no answer came back: it may or may not have happened.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// What should not happen; logged where it was found.
    #[error("bug: {0}")]
    Bug(String),
}

impl Error {
    /// The name outcome metrics count it under.
    pub fn name(&self) -> &'static str {
        match self {
            Error::Refused(refusal) => refusal.code(),
            Error::Abandoned => "timeout",
            Error::Unavailable(_) => "unavailable",
            Error::OutcomeUnknown(_) => "outcome_unknown",
            Error::Bug(_) => "internal",
        }
    }
}

/// Why a request was refused; nothing of it took effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no coupon campaign {0}")]
    UnknownCoupon(u64),
    #[error("user already has coupon {0}")]
    AlreadyIssued(u64),
    #[error("coupon {0} is sold out")]
    SoldOut(u64),
    /// What is sold out, by name: "sale 7" (a waiting room's answer).
    #[error("{0} is sold out")]
    NothingLeft(String),
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
    /// The sale or campaign has a waiting room that has not admitted this user (or the admission lapsed or was used).
    #[error("this has a waiting room: join it, and come back with the admission it gives (Flashsale-Admission)")]
    NotAdmitted,
    #[error("this has no waiting room: ask directly")]
    NoQueue,
    #[error("the ticket is not one this service gave for this waiting room")]
    InvalidTicket,
    #[error("this waiting room asks for proof of work: solve GET /v1/queue/challenge and send it as `altcha`")]
    PowRequired,
    #[error("the proof of work is not a solved challenge of this waiting room, expired, or used before")]
    PowInvalid,
    #[error("this waiting room asks for no proof of work: join directly")]
    PowNotRequired,
    #[error("the waiting room needs FLASHSALE_QUEUE_SECRET, which this service does not have")]
    QueueNotConfigured,
}

impl Refusal {
    /// The stable code the API answers it with (and metrics count it under).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownCoupon(_) => "unknown_coupon",
            Refusal::AlreadyIssued(_) => "already_issued",
            Refusal::SoldOut(_) | Refusal::SkusSoldOut(_) | Refusal::NothingLeft(_) => "sold_out",
            Refusal::NotStarted(_) => "not_started",
            Refusal::Ended(_) => "ended",
            Refusal::UnknownSale(_) => "unknown_sale",
            Refusal::UnknownOrder(..) => "unknown_order",
            Refusal::UnknownSkus(_) => "unknown_sku",
            Refusal::LimitExceeded(_) => "limit_exceeded",
            Refusal::TooManyOrders(_) => "too_many_orders",
            Refusal::CouponUnavailable => "coupon_unavailable",
            Refusal::CouponExpired => "coupon_expired",
            Refusal::IdempotencyKeyReused => "idempotency_key_reused",
            Refusal::AmountMismatch(_) => "amount_mismatch",
            Refusal::OrderClosed(OrderStatus::Paid) => "order_paid",
            Refusal::OrderClosed(OrderStatus::Cancelled) => "order_cancelled",
            Refusal::OrderClosed(_) => "order_expired",
            Refusal::AlreadyPaid(_) => "already_paid",
            Refusal::InsufficientBalance { .. } => "insufficient_balance",
            Refusal::BalanceLimitExceeded(_) => "balance_limit_exceeded",
            Refusal::PaymentInProgress => "payment_in_progress",
            Refusal::PaymentKeyUsed => "payment_key_used",
            Refusal::NotAdmitted => "not_admitted",
            Refusal::NoQueue => "no_queue",
            Refusal::InvalidTicket => "invalid_ticket",
            Refusal::PowRequired => "pow_required",
            Refusal::PowInvalid => "pow_invalid",
            Refusal::PowNotRequired => "pow_not_required",
            Refusal::QueueNotConfigured => "queue_not_configured",
        }
    }
}

/// `Err(refusal)` as the domain's error.
pub fn refuse<T>(refusal: Refusal) -> Result<T, Error> {
    Err(Error::Refused(refusal))
}
