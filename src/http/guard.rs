//! The request guard: identity (JWT or body), payment-callback signatures,
//! rate limits and admission, built once from the HTTP settings and consulted
//! by the router and handlers.

use std::{net::IpAddr, sync::Arc};

use hyper::header::HeaderValue;

use super::{
    auth::{Jwt, KeyError},
    client_ip::ClientIp,
    error::ApiError,
    limit::{Admission, RateLimiter, Ticket},
};
use crate::{config::HttpSettings, signature::Signer, time::now_ms};

/// Who may call the payment gateway's routes.
enum Payments {
    /// Only callers holding the shared secret (`Flashsale-Signature`).
    Signed(Signer),
    /// Anyone: `--payments-unsigned`, for local demos.
    Unsigned,
    /// Nobody: no secret configured.
    NotConfigured,
}

pub struct Guard {
    jwt: Option<Jwt>,
    client_ip: ClientIp,
    payments: Payments,
    per_ip: Option<RateLimiter>,
    per_user: Option<RateLimiter>,
    admission: Option<Arc<Admission>>,
}

impl Guard {
    /// Fails on a configured JWT key that cannot verify anything.
    pub fn new(settings: &HttpSettings) -> Result<Guard, KeyError> {
        Ok(Guard {
            client_ip: ClientIp::new(&settings.trusted_proxies),
            jwt: Jwt::from_settings(settings)?,
            payments: match settings.payment_secret.as_ref().filter(|s| !s.0.is_empty()) {
                Some(secret) => Payments::Signed(Signer::new(secret)),
                None if settings.payments_unsigned => {
                    tracing::warn!(
                        "payment callbacks are NOT signed (--payments-unsigned): anyone can mark any order paid; \
                         for local demos only, set FLASHSALE_PAYMENT_SECRET in production"
                    );
                    Payments::Unsigned
                }
                None => {
                    tracing::info!("no FLASHSALE_PAYMENT_SECRET: payment callbacks (confirm) answer 403");
                    Payments::NotConfigured
                }
            },
            per_ip: (settings.rate_per_ip > 0).then(|| RateLimiter::new(settings.rate_per_ip)),
            per_user: (settings.rate_per_user > 0).then(|| RateLimiter::new(settings.rate_per_user)),
            admission: (settings.sale_admission > 0).then(|| Admission::new(settings.sale_admission)),
        })
    }

    pub fn auth_on(&self) -> bool {
        self.jwt.is_some()
    }

    /// The per-IP limit, for the client `peer` stands for (see `client_ip`).
    pub fn check_ip(&self, peer: IpAddr, headers: &hyper::HeaderMap) -> Result<(), ApiError> {
        match &self.per_ip {
            Some(limiter) => limiter.check(self.client_ip.of(peer, headers)).map_err(ApiError::TooManyRequests),
            None => Ok(()),
        }
    }

    /// The acting user: the token's with auth on (a body `user_id` must then
    /// match it), else the body's. Also takes the user's rate-limit token.
    pub fn user(&self, authorization: Option<&HeaderValue>, body_user: Option<u64>) -> Result<u64, ApiError> {
        let user = match (&self.jwt, body_user) {
            (Some(jwt), body) => {
                let user = jwt.user(authorization)?;
                if body.is_some_and(|b| b != user) {
                    return Err(ApiError::Unauthorized("`user_id` differs from the token's user"));
                }
                user
            }
            (None, Some(user)) => user,
            (None, None) => {
                return Err(ApiError::BadRequest(
                    "missing_field",
                    "`user_id` is required: an integer from 0 to 2^64-1".into(),
                ))
            }
        };
        if let Some(limiter) = &self.per_user {
            limiter.check(user).map_err(ApiError::TooManyRequests)?;
        }
        Ok(user)
    }

    /// With auth on, only the owner may act on an order.
    pub fn owner(&self, authorization: Option<&HeaderValue>, owner: u64) -> Result<(), ApiError> {
        match &self.jwt {
            Some(jwt) if jwt.user(authorization)? != owner => {
                Err(ApiError::Unauthorized("the order belongs to another user"))
            }
            _ => Ok(()),
        }
    }

    /// With auth on, only `user` themselves; `refusal` says what is theirs.
    pub fn same_user(
        &self,
        authorization: Option<&HeaderValue>,
        user: u64,
        refusal: &'static str,
    ) -> Result<(), ApiError> {
        match &self.jwt {
            Some(jwt) if jwt.user(authorization)? != user => Err(ApiError::Unauthorized(refusal)),
            _ => Ok(()),
        }
    }

    /// A payment callback is believed only when signed with the gateway's secret.
    /// The reason for a refusal is logged, never answered.
    /// `header` is the request's `Flashsale-Signature`, if any.
    pub fn payment(&self, header: Option<&HeaderValue>, body: &[u8]) -> Result<(), ApiError> {
        match &self.payments {
            Payments::Signed(signer) => {
                signer.verify(header.map(HeaderValue::as_bytes), body, now_ms() / 1000).map_err(|refused| {
                    tracing::warn!(reason = %refused, "payment callback refused");
                    ApiError::InvalidSignature
                })
            }
            Payments::Unsigned => Ok(()),
            Payments::NotConfigured => Err(ApiError::PaymentsNotConfigured),
        }
    }

    /// A place among the sale's reservations in flight, when capped.
    pub fn admit(&self, sale_id: u64) -> Result<Option<Ticket>, ApiError> {
        match &self.admission {
            Some(admission) => {
                admission.enter(sale_id).map(Some).ok_or(ApiError::TooManyRequests(std::time::Duration::from_secs(1)))
            }
            None => Ok(None),
        }
    }
}
