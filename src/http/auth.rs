//! Who is calling: with a JWT key configured, users are identified by a
//! verified token (`Authorization: Bearer <JWT>`, `sub` = user id) instead of
//! the request body. Off by default for the local demo.
//!
//! The cryptography and claim checks are the `jsonwebtoken` crate's; this
//! module owns which keys and claims are accepted. HS256 verifies with the
//! shared secret, RS256 or ES256 with the configured public key. A token's
//! `alg` picks the key and each key verifies its own algorithm only, so an
//! HS256 token is never checked with the public key as an HMAC secret (the
//! algorithm-confusion attack). `exp` is required, `iss` and `aud` are
//! required and must match when configured (an audience must be, with a
//! public key), and `exp`/`nbf` get the leeway.

use hyper::header::HeaderValue;
use jsonwebtoken::{crypto::CryptoProvider, errors::ErrorKind, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::ApiError;
use crate::config::HttpSettings;

pub struct Jwt {
    /// One per accepted `alg`: HS256 with the secret, RS256 or ES256 with the public key.
    verifiers: Vec<Verifier>,
}

struct Verifier {
    alg: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

/// A configured key that cannot verify anything: start-up stops on it.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("FLASHSALE_JWT_PUBLIC_KEY: cannot read the PEM file `{path}`")]
    Read { path: String, source: std::io::Error },
    #[error("FLASHSALE_JWT_PUBLIC_KEY holds a private key: configure its public half (`openssl pkey -pubout`)")]
    Private,
    #[error("FLASHSALE_JWT_PUBLIC_KEY is not a PEM RSA or P-256 EC public key: {0}")]
    Malformed(String),
    #[error(
        "FLASHSALE_JWT_PUBLIC_KEY needs FLASHSALE_JWT_AUDIENCE: without it a token your identity provider \
         minted for any other application would be accepted here"
    )]
    AudienceRequired,
}

/// The claims this service reads; `exp`, `nbf`, `iss` and `aud` are checked by `jsonwebtoken`.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: serde_json::Value,
}

impl Jwt {
    /// The verifier the settings ask for; `None` (auth off) when neither a
    /// secret nor a public key is set. Empty values count as unset.
    pub fn from_settings(settings: &HttpSettings) -> Result<Option<Jwt>, KeyError> {
        let issuer = settings.jwt_issuer.as_deref().filter(|s| !s.is_empty());
        let audience = settings.jwt_audience.as_deref().filter(|s| !s.is_empty());
        let validation = |alg| validation(alg, issuer, audience, settings.jwt_leeway_secs);
        let mut verifiers = Vec::new();
        if let Some(secret) = settings.jwt_secret.as_ref().filter(|s| !s.0.is_empty()) {
            let key = DecodingKey::from_secret(secret.0.as_bytes()).expect("a set secret is not empty");
            verifiers.push(Verifier { alg: Algorithm::HS256, key, validation: validation(Algorithm::HS256) });
        }
        if let Some(configured) = settings.jwt_public_key.as_deref().filter(|s| !s.trim().is_empty()) {
            // An identity provider mints tokens for many applications: ours name us.
            if audience.is_none() {
                return Err(KeyError::AudienceRequired);
            }
            let (alg, key) = public_key(&pem_text(configured)?)?;
            verifiers.push(Verifier { alg, key, validation: validation(alg) });
        }
        Ok((!verifiers.is_empty()).then_some(Jwt { verifiers }))
    }

    /// The user id of a valid bearer token in an `Authorization` header.
    pub fn user(&self, authorization: Option<&HeaderValue>) -> Result<u64, ApiError> {
        let token = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthorized("an `Authorization: Bearer <JWT>` header is required"))?;
        self.verify(token)
    }

    fn verify(&self, token: &str) -> Result<u64, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(rejection)?;
        let verifier = self
            .verifiers
            .iter()
            .find(|v| v.alg == header.alg)
            .ok_or(ApiError::Unauthorized("the token's `alg` is not one this service accepts"))?;
        let claims =
            jsonwebtoken::decode::<Claims>(token, &verifier.key, &verifier.validation).map_err(rejection)?.claims;
        match claims.sub {
            // `"+7"` and `"007"` would otherwise name user 7 too.
            serde_json::Value::String(s) => super::decimal::canonical(&s),
            serde_json::Value::Number(n) => n.as_u64(),
            _ => None,
        }
        .ok_or(ApiError::Unauthorized("the token's `sub` must be the user id"))
    }
}

/// The token of a `Bearer` credential. The scheme is case-insensitive (RFC 9110
/// section 11.1) and whitespace around the value is tolerated.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn validation(alg: Algorithm, issuer: Option<&str>, audience: Option<&str>, leeway: u64) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = leeway;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    // Without a configured audience the service names none, so a token's
    // `aud` (meant for whoever) is not checked; with one, it must be there.
    validation.validate_aud = audience.is_some();
    if let Some(audience) = audience {
        validation.set_audience(&[audience]);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// The PEM itself, or the contents of the file it names.
fn pem_text(configured: &str) -> Result<String, KeyError> {
    let configured = configured.trim();
    if configured.starts_with("-----BEGIN") {
        return Ok(configured.to_string());
    }
    std::fs::read_to_string(configured).map_err(|source| KeyError::Read { path: configured.to_string(), source })
}

/// The algorithm a public key verifies and the key, checked now so that a
/// bad key stops the start instead of failing the first request.
fn public_key(pem: &str) -> Result<(Algorithm, DecodingKey), KeyError> {
    if pem.contains("PRIVATE KEY-----") {
        return Err(KeyError::Private);
    }
    let malformed = |e: jsonwebtoken::errors::Error| KeyError::Malformed(e.to_string());
    if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        // The PEM parser only classifies the key; the RSA numbers are parsed
        // at verification, so parse them once here.
        let provider = CryptoProvider::try_get_default().expect("jsonwebtoken's rust_crypto feature is on");
        let der = key.try_get_as_bytes().map_err(malformed)?;
        (provider.key_utils.rsa_pub_components_from_public_key)(der).map_err(malformed)?;
        return Ok((Algorithm::RS256, key));
    }
    let key = DecodingKey::from_ec_pem(pem.as_bytes()).map_err(malformed)?;
    // Building an ES256 verifier parses the point: other curves fail here.
    jsonwebtoken::crypto::verify("AA", b"", &key, Algorithm::ES256)
        .map_err(|_| KeyError::Malformed("an EC key must be on P-256 (ES256)".into()))?;
    Ok((Algorithm::ES256, key))
}

/// Why a token was refused, for the 401's message. Claim checks run only
/// after the signature verified, so these say nothing to a forger.
fn rejection(e: jsonwebtoken::errors::Error) -> ApiError {
    ApiError::Unauthorized(match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)",
        ErrorKind::InvalidIssuer => "the token's `iss` is not the configured issuer",
        ErrorKind::InvalidAudience => "the token's `aud` does not name this service",
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "iss" => "the token has no `iss`",
            "aud" => "the token has no `aud`",
            _ => "the token has no `exp`",
        },
        ErrorKind::InvalidClaimFormat(_) => "the token's `exp`, `nbf`, `iss` or `aud` has the wrong type",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token's `alg` is not one this service accepts"
        }
        _ => "the token is malformed or its signature is wrong",
    })
}

#[cfg(test)]
mod tests;
