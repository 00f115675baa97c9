//! Wallets: `POST /v1/wallets/{user_id}/charge`, `GET /v1/wallets/{user_id}`
//! and `GET /v1/wallets/{user_id}/transactions` (the history, from MySQL).
//! A charge is the payment gateway's signed call; with auth on, a user reads
//! only their own wallet.

use hyper::{
    body::Incoming,
    header::{HeaderValue, AUTHORIZATION},
    HeaderMap, Request, StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{
    body::{parse_body, read_bytes},
    error::{ApiError, Write},
    guard::GatewayCall,
    order::check_payment_key,
    query::{cursor, limit, pairs},
    reserve::idempotency_key,
    respond::{json, Reply},
};
use crate::{app::App, time::rfc3339_ms};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChargeRequest {
    amount: i64,
    payment_key: String,
}

const FIELDS: &[(&str, &str)] = &[
    ("amount", "the amount to add in minor units, an integer"),
    ("payment_key", "the payment gateway's reference of the payment that funds it, a string"),
];

#[derive(Serialize)]
struct ChargeView {
    user_id: u64,
    balance: u64,
    charged: u64,
    charged_at: String,
}

/// Adds money to the wallet: a gateway payment, so believed only when signed
/// for this wallet's path (checked on the raw body, before it is parsed), once
/// per Idempotency-Key, and once per `payment_key` whatever the key.
pub async fn charge(app: &App, user_id: u64, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let key = idempotency_key(req.headers().get("idempotency-key"))?.ok_or(ApiError::BadRequest(
        "missing_idempotency_key",
        "a charge needs an Idempotency-Key header (1 to 128 visible ASCII characters)".into(),
    ))?;
    let call = GatewayCall::of(&req);
    let raw = read_bytes(req, &app.http).await?;
    app.guard.payment(&call, &raw)?;
    let settings = app.domain.wallets.settings();
    let body: ChargeRequest = parse_body(&raw, &app.http, FIELDS)?;
    check_payment_key(&body.payment_key)?;
    let (min, max) = (settings.wallet_min_charge, settings.wallet_max_charge);
    let amount = u64::try_from(body.amount).ok().filter(|a| (min..=max).contains(a)).ok_or_else(|| {
        ApiError::BadRequest(
            "invalid_amount",
            format!("`amount` must be from {min} to {max} (minor units), got {}", body.amount),
        )
    })?;
    let charge = app.domain.wallets.charge(user_id, amount, &body.payment_key, &key).await;
    let charge = charge.map_err(ApiError::write(Write::ChargeWallet))?;
    let view =
        ChargeView { user_id, balance: charge.balance, charged: charge.charged, charged_at: rfc3339_ms(charge.at) };
    let mut reply = json(StatusCode::OK, &view);
    if charge.replayed {
        reply.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(reply)
}

#[derive(Serialize)]
struct WalletView {
    user_id: u64,
    balance: u64,
    /// None: never charged.
    updated_at: Option<String>,
}

pub async fn get(app: &App, user_id: u64, headers: &HeaderMap) -> Result<Reply, ApiError> {
    app.guard.same_user(headers.get(AUTHORIZATION), user_id, "the wallet belongs to another user")?;
    let wallet = app.domain.wallets.get(user_id).await?;
    let updated_at = (wallet.version > 0).then(|| rfc3339_ms(wallet.updated_at));
    Ok(json(StatusCode::OK, &WalletView { user_id, balance: wallet.balance, updated_at }))
}

#[derive(Serialize)]
struct TransactionView {
    event_id: String,
    kind: &'static str,
    amount: u64,
    balance_after: u64,
    sale_id: Option<u64>,
    order_id: Option<u64>,
    created_at: String,
}

#[derive(Serialize)]
struct Transactions {
    transactions: Vec<TransactionView>,
    /// Pass as `before` for the next (older) page; None: no more.
    next: Option<String>,
}

/// The wallet's history from MySQL, newest first (`limit` 1-100, default 20;
/// `before`: the `next` of the previous page).
pub async fn transactions(
    app: &App,
    user_id: u64,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    app.guard.same_user(headers.get(AUTHORIZATION), user_id, "the wallet belongs to another user")?;
    let (mut page, mut before) = (limit::DEFAULT, None);
    for (name, value) in pairs(query) {
        match name {
            "limit" => page = limit::parse(value)?,
            "before" => before = Some(cursor::number(value)?),
            _ => {}
        }
    }
    let rows = app.domain.wallets.transactions(user_id, page as u64, before).await?;
    let next = (rows.len() == page).then(|| rows.last().map(|t| t.version.to_string())).flatten();
    let transactions = rows
        .into_iter()
        .map(|t| TransactionView {
            event_id: t.event_id,
            kind: t.kind.as_str(),
            amount: t.amount,
            balance_after: t.balance_after,
            sale_id: t.sale_id,
            order_id: t.order_id,
            created_at: rfc3339_ms(t.created_at),
        })
        .collect();
    Ok(json(StatusCode::OK, &Transactions { transactions, next }))
}
