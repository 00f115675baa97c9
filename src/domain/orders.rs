//! Sales and their orders as the API sees them: reserve, read, confirm (a
//! gateway payment), cancel, pay from the wallet, and read a sale — live from
//! Redis, or from MySQL once Redis let the sale or a released order go.

use std::sync::Arc;

use mysql_async::Pool as Mysql;

use super::{record, refuse, Error, Refusal};
use crate::{
    db::archive::Kind,
    gateway::{self, PaidFor},
    order::{Order, OrderStatus},
    retired_records::RetiredRecords,
    sales::Sales,
    scripts::{ConfirmOutcome, ReserveOutcome},
    wallet::pay::{PayOutcome, Payments},
};

pub use crate::sales::{NewOrder, MAX_RANKING_HOURS};

#[derive(Clone)]
pub struct OrderService {
    sales: Sales,
    payments: Payments,
    retired: Arc<RetiredRecords>,
    mysql: Mysql,
}

/// An order, and where it was read.
pub struct Found {
    pub order: Order,
    /// Read from MySQL: its sale retired, or it was released and Redis let it go.
    pub retired: bool,
}

/// A reservation's answer.
pub struct Reserved {
    pub order: Found,
    /// The Idempotency-Key's earlier reservation (the order as it is now).
    pub replayed: bool,
}

/// A sale's window, limit and stock.
pub struct Sale {
    pub starts_at: u64,
    /// 0: never closes.
    pub ends_at: u64,
    pub per_user_limit: u64,
    pub hold_ms: u64,
    /// Sorted by SKU.
    pub skus: Vec<SkuStock>,
    /// Read from MySQL: the sale retired and Redis let it go.
    pub retired: bool,
}

pub struct SkuStock {
    pub sku: u64,
    pub price: u64,
    /// Supplied in all (seed + top-ups).
    pub stock: u64,
    pub remaining: u64,
}

impl OrderService {
    pub fn new(sales: Sales, payments: Payments, retired: Arc<RetiredRecords>, mysql: Mysql) -> Self {
        OrderService { sales, payments, retired, mysql }
    }

    /// Reserves the order's units (and its coupon) until paid, cancelled or expired.
    pub async fn reserve(&self, new: &NewOrder<'_>) -> Result<Reserved, Error> {
        let result = self.try_reserve(new).await;
        record("reserve_order", &result, |r| if r.replayed { "replay" } else { "reserved" });
        result
    }

    async fn try_reserve(&self, new: &NewOrder<'_>) -> Result<Reserved, Error> {
        let sale_id = new.sale_id;
        let sale = || format!("sale {sale_id}");
        match self.sales.reserve(new).await? {
            ReserveOutcome::Reserved(order) => Ok(Reserved { order: Found { order, retired: false }, replayed: false }),
            // The order as it is now: it may have been paid, cancelled or
            // expired since the first answer.
            ReserveOutcome::Replay(first) => {
                let order = match Box::pin(self.lookup(sale_id, first.order_id)).await? {
                    Some(found) => found,
                    None => Found { order: first, retired: false },
                };
                Ok(Reserved { order, replayed: true })
            }
            ReserveOutcome::IdempotencyMismatch => refuse(Refusal::IdempotencyKeyReused),
            // Redis let a retired sale go: it ended, as Redis would have said.
            ReserveOutcome::UnknownSale if Box::pin(self.retired.is_retired(Kind::Sale, sale_id)).await? => {
                refuse(Refusal::Ended(sale()))
            }
            ReserveOutcome::UnknownSale => refuse(Refusal::UnknownSale(sale_id)),
            ReserveOutcome::NotStarted => refuse(Refusal::NotStarted(sale())),
            ReserveOutcome::Ended => refuse(Refusal::Ended(sale())),
            ReserveOutcome::UnknownSkus(skus) => refuse(Refusal::UnknownSkus(skus)),
            ReserveOutcome::SoldOut(skus) => refuse(Refusal::SkusSoldOut(skus)),
            ReserveOutcome::LimitExceeded { left } => refuse(Refusal::LimitExceeded(left)),
            ReserveOutcome::TooManyOrders(cap) => refuse(Refusal::TooManyOrders(cap)),
            ReserveOutcome::NotAdmitted => refuse(Refusal::NotAdmitted),
            ReserveOutcome::CouponUnavailable => match new.coupon_id {
                // Redis let a retired campaign go: an unused coupon of it had expired.
                Some(coupon) if Box::pin(self.retired.is_retired(Kind::Coupon, coupon)).await? => {
                    if Box::pin(self.retired.coupon_unused(coupon, new.user_id)).await? {
                        refuse(Refusal::CouponExpired)
                    } else {
                        refuse(Refusal::CouponUnavailable)
                    }
                }
                _ => refuse(Refusal::CouponUnavailable),
            },
            ReserveOutcome::CouponExpired => refuse(Refusal::CouponExpired),
            // Nothing reserved and the hold given back: the request may be sent again.
            // Sales::reserve routes again on these; one left means the count kept changing.
            ReserveOutcome::HoldLapsed | ReserveOutcome::Buckets(_) => {
                Err(Error::Unavailable("the sale's buckets kept changing; nothing was reserved".into()))
            }
        }
    }

    /// The order as Redis holds it, else as MySQL keeps it.
    pub async fn find(&self, sale_id: u64, order_id: u64) -> Result<Found, Error> {
        match self.lookup(sale_id, order_id).await? {
            Some(found) => Ok(found),
            None => refuse(Refusal::UnknownOrder(sale_id, order_id)),
        }
    }

    async fn lookup(&self, sale_id: u64, order_id: u64) -> Result<Option<Found>, Error> {
        if let Some(order) = self.sales.order(sale_id, order_id).await? {
            return Ok(Some(Found { order, retired: false }));
        }
        Ok(self.retired.order(sale_id, order_id).await?.map(|order| Found { order, retired: true }))
    }

    /// The order as MySQL keeps it once Redis let it go; else unknown.
    async fn retired_order(&self, sale_id: u64, order_id: u64) -> Result<Order, Error> {
        match self.retired.order(sale_id, order_id).await? {
            Some(order) => Ok(order),
            None => refuse(Refusal::UnknownOrder(sale_id, order_id)),
        }
    }

    /// The payment gateway's confirmation: one order, one payment. The same
    /// payment again answers the paid order; another is `AlreadyPaid`; a
    /// payment_key that paid anything else is `PaymentKeyUsed`.
    pub async fn confirm(&self, sale_id: u64, order_id: u64, amount: u64, payment_key: &str) -> Result<Found, Error> {
        let result = self.try_confirm(sale_id, order_id, amount, payment_key).await;
        record("confirm_order", &result, |_| "paid");
        result
    }

    async fn try_confirm(&self, sale_id: u64, order_id: u64, amount: u64, payment_key: &str) -> Result<Found, Error> {
        // The key is bound to this order before it can pay it: a payment pays once.
        if !gateway::claim(&self.mysql, payment_key, &PaidFor::Order { sale_id, order_id }).await? {
            return refuse(Refusal::PaymentKeyUsed);
        }
        match self.sales.confirm(sale_id, order_id, amount, payment_key).await? {
            ConfirmOutcome::Paid(order) => Ok(Found { order, retired: false }),
            ConfirmOutcome::Closed(order) => refuse(Refusal::OrderClosed(order.status)),
            ConfirmOutcome::AlreadyPaid(order) => refuse(Refusal::AlreadyPaid(order.payment_key.unwrap_or_default())),
            ConfirmOutcome::Paying => refuse(Refusal::PaymentInProgress),
            ConfirmOutcome::AmountMismatch { to_pay } => refuse(Refusal::AmountMismatch(to_pay)),
            ConfirmOutcome::Late => refuse(Refusal::UnknownOrder(sale_id, order_id)),
            // What confirm_order.lua answers for an order Redis no longer holds.
            ConfirmOutcome::UnknownOrder => {
                let order = self.retired_order(sale_id, order_id).await?;
                match order.status {
                    OrderStatus::Paid
                        if order.payment_key.as_deref() == Some(payment_key) && order.to_pay == amount =>
                    {
                        Ok(Found { order, retired: true })
                    }
                    OrderStatus::Paid => refuse(Refusal::AlreadyPaid(order.payment_key.unwrap_or_default())),
                    OrderStatus::Reserved => refuse(Refusal::UnknownOrder(sale_id, order_id)),
                    closed => refuse(Refusal::OrderClosed(closed)),
                }
            }
        }
    }

    /// Cancels a reserved order: it answers the cancelled order; one paid,
    /// cancelled or expired before is `OrderClosed`; one a wallet payment
    /// holds is `PaymentInProgress`.
    pub async fn cancel(&self, sale_id: u64, order_id: u64) -> Result<Order, Error> {
        let result = self.try_cancel(sale_id, order_id).await;
        record("cancel_order", &result, |_| "cancelled");
        result
    }

    async fn try_cancel(&self, sale_id: u64, order_id: u64) -> Result<Order, Error> {
        let Some(order) = self.sales.cancel(sale_id, order_id).await? else {
            // A retired sale's orders are paid, cancelled or expired for good.
            return match self.retired_order(sale_id, order_id).await?.status {
                OrderStatus::Reserved => refuse(Refusal::UnknownOrder(sale_id, order_id)),
                closed => refuse(Refusal::OrderClosed(closed)),
            };
        };
        match order.status {
            // Left alone: a wallet payment holds it.
            OrderStatus::Reserved => refuse(Refusal::PaymentInProgress),
            OrderStatus::Cancelled => Ok(order),
            closed => refuse(Refusal::OrderClosed(closed)),
        }
    }

    /// Pays a reserved order from its owner's wallet: both or neither.
    pub async fn pay_from_wallet(&self, sale_id: u64, order_id: u64) -> Result<Order, Error> {
        let result = self.try_pay(sale_id, order_id).await;
        record("pay_order", &result, |_| "paid");
        result
    }

    async fn try_pay(&self, sale_id: u64, order_id: u64) -> Result<Order, Error> {
        match self.payments.pay(sale_id, order_id).await? {
            PayOutcome::Paid(order) => Ok(order),
            PayOutcome::Closed(order) => refuse(Refusal::OrderClosed(order.status)),
            PayOutcome::Insufficient { balance, to_pay } => refuse(Refusal::InsufficientBalance { balance, to_pay }),
            // Outlived its hold: nothing was taken, as after a timeout.
            PayOutcome::GivenUp => Err(Error::Abandoned),
            // Redis let it go: released for good, or its sale retired (MySQL says which).
            PayOutcome::UnknownOrder => match self.retired.order(sale_id, order_id).await? {
                Some(order) if order.status != OrderStatus::Reserved => refuse(Refusal::OrderClosed(order.status)),
                _ => refuse(Refusal::UnknownOrder(sale_id, order_id)),
            },
        }
    }

    /// The sale as Redis holds it (with buckets, a summary shared for a
    /// moment), else as MySQL keeps it once retired.
    pub async fn sale(&self, sale_id: u64) -> Result<Sale, Error> {
        if let Some(info) = self.sales.summary(sale_id).await? {
            return Ok(Sale {
                starts_at: info.starts_at,
                ends_at: info.ends_at,
                per_user_limit: info.per_user_limit,
                hold_ms: info.hold_ms,
                skus: info
                    .skus
                    .iter()
                    .map(|s| SkuStock { sku: s.sku, price: s.price, stock: s.stock, remaining: s.remaining })
                    .collect(),
                retired: false,
            });
        }
        let Some((spec, held)) = self.retired.sale(sale_id).await? else {
            return refuse(Refusal::UnknownSale(sale_id));
        };
        let skus = spec
            .skus
            .iter()
            .map(|s| SkuStock {
                sku: s.sku,
                price: s.price,
                stock: s.stock,
                remaining: crate::retired_records::retired_remaining(s.sku, s.stock, &held),
            })
            .collect();
        Ok(Sale {
            starts_at: spec.starts_at,
            ends_at: spec.ends_at,
            per_user_limit: spec.per_user_limit,
            hold_ms: spec.hold_ms,
            skus,
            retired: true,
        })
    }

    /// Most-paid products over the last `hours`: (sku, paid orders), best first.
    pub async fn top_products(&self, hours: u64, limit: usize) -> Result<Vec<(u64, u64)>, Error> {
        Ok(self.sales.top_products(hours, limit).await?)
    }

    /// Every sale id Redis holds.
    pub async fn live_ids(&self) -> Result<Vec<u64>, Error> {
        Ok(self.sales.ids().await?)
    }
}
