//! The request guard: identity (JWT or body), payment-callback signatures,
//! rate limits and admission, built once from the HTTP settings and consulted
//! by the router and handlers.

use std::{net::IpAddr, sync::Arc};

use hyper::header::HeaderValue;

use super::{
    auth::{Jwt, KeyError},
    client_ip::{limit_key, ClientIp, Malformed},
    error::ApiError,
    limit::{Admission, RateLimiter, Ticket},
};
use crate::{
    config::HttpSettings,
    signature::{Signer, Target, HEADER},
    time::now_ms,
};

/// What of a gateway call outlives reading its body: its signature header,
/// method and path (without the query), which the signature must cover.
pub struct GatewayCall {
    signature: Option<HeaderValue>,
    method: hyper::Method,
    path: String,
}

impl GatewayCall {
    pub fn of<B>(req: &hyper::Request<B>) -> GatewayCall {
        GatewayCall {
            signature: req.headers().get(HEADER).cloned(),
            method: req.method().clone(),
            path: req.uri().path().to_string(),
        }
    }
}

/// Who may call the payment gateway's routes.
enum Payments {
    /// Only callers holding the shared secret (`Flashsale-Signature`).
    Signed(Signer),
    /// Anyone: `--payments-unsigned`, for local demos.
    Unsigned,
    /// Nobody: no secret configured.
    NotConfigured,
}

/// Said at start-up, every minute and in /readyz while auth is off outside a demo.
const AUTH_OFF: &str = "auth is off (no FLASHSALE_JWT_SECRET or FLASHSALE_JWT_PUBLIC_KEY): any caller acts as any \
                        user_id, and no owner check runs on orders, wallets or lists; pass --demo for a local demo";

pub struct Guard {
    jwt: Option<Jwt>,
    demo: bool,
    client_ip: ClientIp,
    payments: Payments,
    per_ip: Option<RateLimiter<IpAddr>>,
    /// Waiting-room joins per client IP (per minute).
    joins_per_ip: Option<RateLimiter<IpAddr>>,
    per_user: Option<RateLimiter<u64>>,
    admission: Option<Arc<Admission>>,
}

impl Guard {
    /// Fails on a configured JWT key that cannot verify anything.
    pub fn new(settings: &HttpSettings) -> Result<Guard, KeyError> {
        Ok(Guard {
            client_ip: ClientIp::new(&settings.trusted_proxies),
            demo: settings.demo,
            jwt: Jwt::from_settings(settings)?,
            payments: match settings.payment_secret.as_ref().filter(|s| !s.0.is_empty()) {
                Some(secret) => Payments::Signed(Signer::new(secret)),
                None if settings.payments_unsigned => {
                    tracing::warn!(
                        "payment callbacks are NOT signed (--payments-unsigned): anyone can mark any order paid and \
                         charge any wallet; \
                         for local demos only, set FLASHSALE_PAYMENT_SECRET in production"
                    );
                    Payments::Unsigned
                }
                None => {
                    tracing::info!("no FLASHSALE_PAYMENT_SECRET: gateway calls (confirm, charge) answer 403");
                    Payments::NotConfigured
                }
            },
            per_ip: (settings.rate_per_ip > 0).then(|| RateLimiter::new(settings.rate_per_ip)),
            joins_per_ip: (settings.queue_joins_per_ip > 0)
                .then(|| RateLimiter::per_minute(settings.queue_joins_per_ip)),
            per_user: (settings.rate_per_user > 0).then(|| RateLimiter::new(settings.rate_per_user)),
            admission: (settings.sale_admission > 0).then(|| Admission::new(settings.sale_admission)),
        })
    }

    pub fn auth_on(&self) -> bool {
        self.jwt.is_some()
    }

    /// What to tell operators while auth is off outside a demo.
    pub fn auth_warning(&self) -> Option<&'static str> {
        (self.jwt.is_none() && !self.demo).then_some(AUTH_OFF)
    }

    /// Whether `caller` (from [`Guard::caller`]) may see what `owner` owns.
    pub fn owns(caller: Option<u64>, owner: u64) -> bool {
        caller.is_none_or(|caller| caller == owner)
    }

    /// The per-IP limit, for the client `peer` stands for (see `client_ip`);
    /// a trusted proxy's unreadable `X-Forwarded-For` is 400. Without the
    /// limit the header is not read at all.
    pub fn check_ip(&self, peer: IpAddr, headers: &hyper::HeaderMap) -> Result<(), ApiError> {
        self.check(self.per_ip.as_ref(), peer, headers)
    }

    /// The per-IP limit on joining waiting rooms, as `check_ip`.
    pub fn check_join(&self, peer: IpAddr, headers: &hyper::HeaderMap) -> Result<(), ApiError> {
        self.check(self.joins_per_ip.as_ref(), peer, headers)
    }

    fn check(
        &self,
        limiter: Option<&RateLimiter<IpAddr>>,
        peer: IpAddr,
        headers: &hyper::HeaderMap,
    ) -> Result<(), ApiError> {
        let Some(limiter) = limiter else { return Ok(()) };
        let client = self.client_ip.of(peer, headers).map_err(|Malformed| {
            ApiError::BadRequest(
                "invalid_forwarded_for",
                "X-Forwarded-For from a trusted proxy must be a list of addresses".into(),
            )
        })?;
        limiter.check(limit_key(client)).map_err(ApiError::TooManyRequests)
    }

    /// Whether connections from `peer` are exempt from the per-IP cap (a trusted proxy).
    pub fn trusted_proxy(&self, peer: IpAddr) -> bool {
        self.client_ip.trusts(peer)
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

    /// With auth on, the token's user (401 without a valid token); else None.
    /// Check it before looking anything up, so a missing and another user's
    /// resource answer alike.
    pub fn caller(&self, authorization: Option<&HeaderValue>) -> Result<Option<u64>, ApiError> {
        match &self.jwt {
            Some(jwt) => jwt.user(authorization).map(Some),
            None => Ok(None),
        }
    }

    /// With auth on, only `user` themselves: another user is 403 `forbidden`;
    /// `refusal` says what is theirs.
    pub fn same_user(
        &self,
        authorization: Option<&HeaderValue>,
        user: u64,
        refusal: &'static str,
    ) -> Result<(), ApiError> {
        match self.caller(authorization)? {
            Some(caller) if caller != user => Err(ApiError::Forbidden(refusal)),
            _ => Ok(()),
        }
    }

    /// A gateway call (confirm, charge) is believed only when signed with the
    /// gateway's secret over its method, path and body. The reason for a
    /// refusal is logged, never answered.
    pub fn payment(&self, call: &GatewayCall, body: &[u8]) -> Result<(), ApiError> {
        match &self.payments {
            Payments::Signed(signer) => {
                let target = Target { method: call.method.as_str(), path: &call.path };
                let header = call.signature.as_ref().map(HeaderValue::as_bytes);
                signer.verify(header, &target, body, now_ms() / 1000).map_err(|refused| {
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
