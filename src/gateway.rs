//! Gateway payments pay once: a `payment_key` is bound, in MySQL, to the one
//! order or charge it paid before that payment takes effect.

use mysql_async::Pool;

/// What a gateway payment paid for.
pub enum PaidFor<'a> {
    Order {
        sale_id: u64,
        order_id: u64,
    },
    /// A wallet charge, named by its Idempotency-Key (the gateway's retry of
    /// the same charge carries the same key).
    Charge {
        user_id: u64,
        idempotency_key: &'a str,
    },
}

impl PaidFor<'_> {
    fn name(&self) -> String {
        match self {
            PaidFor::Order { sale_id, order_id } => format!("order:{sale_id}:{order_id}"),
            PaidFor::Charge { user_id, idempotency_key } => format!("charge:{user_id}:{idempotency_key}"),
        }
    }
}

/// Binds `payment_key` to `paid_for`, unless it is bound already: true when
/// it is (now or before) bound to `paid_for`, false when to something else.
pub async fn claim(mysql: &Pool, payment_key: &str, paid_for: &PaidFor<'_>) -> Result<bool, mysql_async::Error> {
    crate::db::payment_keys::claim(mysql, payment_key.as_bytes(), paid_for.name().as_bytes()).await
}
