//! Who is calling: with a JWT secret configured, users are identified by a
//! verified HS256 token (`Authorization: Bearer ...`, `sub` = user id, `exp`
//! checked) instead of the request body. Off by default for the local demo.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use hyper::header::HeaderValue;
use serde::Deserialize;
use sha2::Sha256;

use super::error::ApiError;
use crate::{config::Secret, time::now_ms};

pub struct Jwt {
    key: Hmac<Sha256>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: serde_json::Value,
    exp: Option<u64>,
}

impl Jwt {
    pub fn new(secret: &Secret) -> Jwt {
        Jwt { key: Hmac::new_from_slice(secret.0.as_bytes()).expect("HMAC takes any key length") }
    }

    /// The user id of a valid bearer token in an `Authorization` header.
    pub fn user(&self, authorization: Option<&HeaderValue>) -> Result<u64, ApiError> {
        let token = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized("an `Authorization: Bearer <JWT>` header is required"))?;
        self.verify(token)
    }

    fn verify(&self, token: &str) -> Result<u64, ApiError> {
        let invalid = || ApiError::Unauthorized("the token is malformed or its signature is wrong");
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let header: Header = decode(header).ok_or_else(invalid)?;
        if header.alg != "HS256" {
            return Err(ApiError::Unauthorized("only HS256 tokens are accepted"));
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
        let mut mac = self.key.clone();
        mac.update(&token.as_bytes()[..header_and_payload_len(token)]);
        mac.verify_slice(&signature).map_err(|_| invalid())?;
        let claims: Claims = decode(payload).ok_or_else(invalid)?;
        match claims.exp {
            // Saturating: `exp` is the client's number; far future means valid, never a wrap.
            Some(exp) if exp.saturating_mul(1000) > now_ms() => {}
            Some(_) => return Err(ApiError::Unauthorized("the token has expired")),
            None => return Err(ApiError::Unauthorized("the token has no `exp`")),
        }
        match claims.sub {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.as_u64(),
            _ => None,
        }
        .ok_or(ApiError::Unauthorized("the token's `sub` must be the user id"))
    }

    /// Signs claims (tests and tooling mint tokens with the same secret).
    pub fn sign(&self, sub: u64, exp: u64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{sub}","exp":{exp}}}"#));
        let mut mac = self.key.clone();
        mac.update(format!("{header}.{payload}").as_bytes());
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

fn decode<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt() -> Jwt {
        Jwt::new(&"a-test-secret-of-some-length".parse().unwrap())
    }

    #[test]
    fn a_signed_token_verifies_and_tampering_or_expiry_fails() {
        let later = now_ms() / 1000 + 60;
        let token = jwt().sign(42, later);
        assert_eq!(jwt().verify(&token).unwrap(), 42);
        let other = Jwt::new(&"another-secret-entirely!".parse().unwrap());
        assert!(other.verify(&token).is_err(), "wrong secret");
        let forged = token.replacen(
            &token[token.find('.').unwrap() + 1..token.rfind('.').unwrap()],
            &URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"7","exp":{later}}}"#)),
            1,
        );
        assert!(jwt().verify(&forged).is_err(), "payload swapped");
        assert!(jwt().verify(&jwt().sign(42, 1)).is_err(), "expired");
        assert!(jwt().verify("a.b").is_err());
    }

    #[test]
    fn an_expiry_too_large_for_milliseconds_is_far_future_not_an_overflow() {
        for exp in [u64::MAX / 1000 + 1, u64::MAX] {
            assert_eq!(jwt().verify(&jwt().sign(42, exp)).unwrap(), 42, "exp {exp}");
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_tokens_are_rejected_without_panicking(token in "[A-Za-z0-9_.-]{0,200}") {
            let jwt = Jwt::new(&"a-test-secret-of-some-length".parse().unwrap());
            prop_assert!(jwt.verify(&token).is_err());
        }

        #[test]
        fn every_user_id_survives_sign_and_verify(user in any::<u64>()) {
            let jwt = Jwt::new(&"a-test-secret-of-some-length".parse().unwrap());
            let token = jwt.sign(user, now_ms() / 1000 + 60);
            prop_assert_eq!(jwt.verify(&token).unwrap(), user);
        }
    }
}
