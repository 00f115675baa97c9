//! Tests of token verification (unit and property), with the test-only keys in tests/fixtures/jwt.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use clap::Parser;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use super::*;

pub const SECRET: &str = "a-test-secret-of-some-length";
/// A test-only key from tests/fixtures/jwt/ (generated with `openssl genpkey`; guards nothing).
/// Read at run time, not embedded, so building the service never needs tests/.
pub fn key(name: &str) -> String {
    let path = format!("{}/tests/fixtures/jwt/test-only-{name}.pem", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    http: HttpSettings,
}

/// The defaults, with no JWT setting taken from the environment.
fn settings(adjust: impl FnOnce(&mut HttpSettings)) -> HttpSettings {
    let mut http = Flags::parse_from(["flashsale"]).http;
    (http.jwt_secret, http.jwt_public_key, http.jwt_issuer, http.jwt_audience) = (None, None, None, None);
    http.jwt_leeway_secs = 30;
    adjust(&mut http);
    http
}

/// The verifier for these settings; with a public key and no audience, the
/// audience `flashsale` (which `rs_token` and `es_token` put in).
pub fn jwt(adjust: impl FnOnce(&mut HttpSettings)) -> Jwt {
    let mut settings = settings(adjust);
    if settings.jwt_public_key.is_some() && settings.jwt_audience.is_none() {
        settings.jwt_audience = Some(AUDIENCE.into());
    }
    Jwt::from_settings(&settings).unwrap().expect("a key is configured")
}

const AUDIENCE: &str = "flashsale";

/// `claims` with `aud` = [`AUDIENCE`] unless they name one.
fn ours(mut claims: serde_json::Value) -> serde_json::Value {
    if claims.get("aud").is_none() {
        claims["aud"] = AUDIENCE.into();
    }
    claims
}

fn hs() -> Jwt {
    jwt(|s| s.jwt_secret = Some(SECRET.parse().unwrap()))
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

pub fn sign(alg: Algorithm, key: &EncodingKey, claims: serde_json::Value) -> String {
    encode(&Header::new(alg), &claims, key).unwrap()
}

fn hs_token(claims: serde_json::Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(), ours(claims))
}

fn rs_token(private: &str, claims: serde_json::Value) -> String {
    sign(Algorithm::RS256, &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(), ours(claims))
}

/// Exactly `claims`, signed ES256 (no audience added).
fn es_token_as_is(claims: serde_json::Value) -> String {
    sign(Algorithm::ES256, &EncodingKey::from_ec_pem(key("es256-private").as_bytes()).unwrap(), claims)
}

fn es_token(claims: serde_json::Value) -> String {
    es_token_as_is(ours(claims))
}

fn refusal(result: Result<u64, ApiError>) -> &'static str {
    match result {
        Err(ApiError::Unauthorized(why)) => why,
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[test]
fn no_secret_and_no_public_key_means_auth_off() {
    assert!(Jwt::from_settings(&settings(|_| {})).unwrap().is_none());
    let empty = settings(|s| (s.jwt_secret, s.jwt_public_key) = (Some("".parse().unwrap()), Some(" ".into())));
    assert!(Jwt::from_settings(&empty).unwrap().is_none(), "empty values are unset");
}

#[test]
fn an_hs256_token_verifies_and_tampering_or_expiry_fails() {
    let later = now() + 60;
    let token = hs_token(json!({"sub": "42", "exp": later}));
    assert_eq!(hs().verify(&token).unwrap(), 42);
    let other = jwt(|s| s.jwt_secret = Some("another-secret-entirely!".parse().unwrap()));
    assert!(other.verify(&token).is_err(), "wrong secret");
    let (head, rest) = token.split_once('.').unwrap();
    let signature = &rest[rest.find('.').unwrap()..];
    let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"7","exp":{later}}}"#));
    assert!(hs().verify(&format!("{head}.{payload}{signature}")).is_err(), "payload swapped");
    let expired = hs_token(json!({"sub": "42", "exp": now() - 120}));
    assert_eq!(refusal(hs().verify(&expired)), "the token has expired");
    assert_eq!(refusal(hs().verify(&hs_token(json!({"sub": "42"})))), "the token has no `exp`");
    assert!(hs().verify("a.b").is_err());
}

#[test]
fn the_user_id_may_be_a_string_or_a_number_and_nothing_else() {
    let exp = now() + 60;
    assert_eq!(hs().verify(&hs_token(json!({"sub": 9, "exp": exp}))).unwrap(), 9);
    assert_eq!(hs().verify(&hs_token(json!({"sub": "9", "exp": exp}))).unwrap(), 9);
    for sub in [json!("nine"), json!(-9), json!(9.5), json!(null), json!("+7"), json!("007"), json!(" 7"), json!("")] {
        let why = refusal(hs().verify(&hs_token(json!({"sub": sub, "exp": exp}))));
        assert_eq!(why, "the token's `sub` must be the user id", "{sub}");
    }
}

#[test]
fn rs256_and_es256_tokens_verify_with_the_configured_public_key() {
    let claims = json!({"sub": "5", "exp": now() + 60});
    let rs = jwt(|s| s.jwt_public_key = Some(key("rs256-public")));
    assert_eq!(rs.verify(&rs_token(&key("rs256-private"), claims.clone())).unwrap(), 5);
    assert!(rs.verify(&rs_token(&key("other-rs256-private"), claims.clone())).is_err(), "another key's signature");
    assert!(rs.verify(&es_token(claims.clone())).is_err(), "ES256 with an RSA key configured");
    assert!(rs.verify(&hs_token(claims.clone())).is_err(), "HS256 without a secret configured");
    let es = jwt(|s| s.jwt_public_key = Some(key("es256-public")));
    assert_eq!(es.verify(&es_token(claims.clone())).unwrap(), 5);
    assert!(es.verify(&rs_token(&key("rs256-private"), claims)).is_err(), "RS256 with an EC key configured");
}

#[test]
fn with_a_secret_and_a_public_key_the_tokens_alg_picks_the_key() {
    let both = jwt(|s| (s.jwt_secret, s.jwt_public_key) = (Some(SECRET.parse().unwrap()), Some(key("rs256-public"))));
    let claims = json!({"sub": "5", "exp": now() + 60});
    assert_eq!(both.verify(&hs_token(claims.clone())).unwrap(), 5);
    assert_eq!(both.verify(&rs_token(&key("rs256-private"), claims)).unwrap(), 5);
}

#[test]
fn an_hs256_token_keyed_with_the_public_key_is_refused() {
    // Algorithm confusion: the public key is public, so anyone can HMAC with it.
    let claims = json!({"sub": "5", "exp": now() + 60});
    let (rs, es) = (key("rs256-public"), key("es256-public"));
    for pem in [rs.as_str(), rs.trim(), es.as_str()] {
        let forged = sign(Algorithm::HS256, &EncodingKey::from_secret(pem.as_bytes()).unwrap(), claims.clone());
        let public_only = jwt(|s| s.jwt_public_key = Some(pem.into()));
        assert!(public_only.verify(&forged).is_err());
        let both = jwt(|s| (s.jwt_secret, s.jwt_public_key) = (Some(SECRET.parse().unwrap()), Some(pem.into())));
        assert!(both.verify(&forged).is_err());
    }
}

#[test]
fn an_unsigned_token_is_refused() {
    let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"5","exp":{}}}"#, now() + 60));
    let both = jwt(|s| (s.jwt_secret, s.jwt_public_key) = (Some(SECRET.parse().unwrap()), Some(key("rs256-public"))));
    for token in [format!("{head}.{payload}."), format!("{head}.{payload}")] {
        assert!(both.verify(&token).is_err(), "{token}");
    }
}

#[test]
fn exp_and_nbf_get_the_leeway_and_no_more() {
    let rs = jwt(|s| (s.jwt_public_key, s.jwt_leeway_secs) = (Some(key("rs256-public")), 30));
    let at = |claims| rs.verify(&rs_token(&key("rs256-private"), claims));
    assert_eq!(at(json!({"sub": 1, "exp": now() - 10})).unwrap(), 1, "just expired, within the leeway");
    assert_eq!(refusal(at(json!({"sub": 1, "exp": now() - 60}))), "the token has expired");
    assert_eq!(at(json!({"sub": 1, "exp": now() + 60, "nbf": now() + 10})).unwrap(), 1);
    let early = at(json!({"sub": 1, "exp": now() + 600, "nbf": now() + 300}));
    assert_eq!(refusal(early), "the token is not valid yet (`nbf`)");
    let strict = jwt(|s| (s.jwt_public_key, s.jwt_leeway_secs) = (Some(key("rs256-public")), 0));
    assert!(strict.verify(&rs_token(&key("rs256-private"), json!({"sub": 1, "exp": now() - 10}))).is_err());
}

#[test]
fn a_configured_issuer_and_audience_are_required_and_must_match() {
    let checked = jwt(|s| {
        s.jwt_public_key = Some(key("es256-public"));
        (s.jwt_issuer, s.jwt_audience) = (Some("https://idp.example".into()), Some("flashsale".into()));
    });
    let exp = now() + 60;
    let at = |claims| checked.verify(&es_token_as_is(claims));
    assert_eq!(at(json!({"sub": 1, "exp": exp, "iss": "https://idp.example", "aud": "flashsale"})).unwrap(), 1);
    let listed = json!({"sub": 1, "exp": exp, "iss": "https://idp.example", "aud": ["other", "flashsale"]});
    assert_eq!(at(listed).unwrap(), 1, "an audience list naming us");
    let cases = [
        (json!({"sub": 1, "exp": exp, "aud": "flashsale"}), "the token has no `iss`"),
        (json!({"sub": 1, "exp": exp, "iss": "https://idp.example"}), "the token has no `aud`"),
        (
            json!({"sub": 1, "exp": exp, "iss": "https://evil.example", "aud": "flashsale"}),
            "the token's `iss` is not the configured issuer",
        ),
        (
            json!({"sub": 1, "exp": exp, "iss": "https://idp.example", "aud": "other"}),
            "the token's `aud` does not name this service",
        ),
    ];
    for (claims, why) in cases {
        assert_eq!(refusal(at(claims.clone())), why, "{claims}");
    }
    // A public key without an audience would take any app's token: it stops the start.
    let unchecked = settings(|s| s.jwt_public_key = Some(key("es256-public")));
    assert!(matches!(Jwt::from_settings(&unchecked), Err(KeyError::AudienceRequired)));
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_whitespace_is_tolerated() {
    for value in ["Bearer t", "bearer t", "BEARER t", "  Bearer   t  ", "bEaReR\tt"] {
        assert_eq!(bearer_token(value), Some("t"), "{value:?}");
    }
    for value in ["", "Bearer", "Bearer   ", "Basic t", "Bearert", "t"] {
        assert_eq!(bearer_token(value), None, "{value:?}");
    }
}

#[test]
fn a_public_key_is_the_pem_itself_or_a_file_holding_it() {
    let path = std::env::temp_dir().join(format!("flashsale-test-key-{}.pem", std::process::id()));
    std::fs::write(&path, key("es256-public")).unwrap();
    let from_file = jwt(|s| s.jwt_public_key = Some(format!(" {} ", path.display())));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(from_file.verify(&es_token(json!({"sub": 3, "exp": now() + 60}))).unwrap(), 3);
    let missing =
        settings(|s| (s.jwt_public_key, s.jwt_audience) = (Some("/nonexistent/key.pem".into()), Some(AUDIENCE.into())));
    assert!(matches!(Jwt::from_settings(&missing), Err(KeyError::Read { .. })));
}

#[test]
fn a_key_that_cannot_verify_is_refused_at_start_up() {
    let (rs, p384) = (key("rs256-public"), key("p384-public"));
    let broken_rsa = rs.replacen("MII", "MIJ", 1);
    let truncated = format!("{}\n-----END PUBLIC KEY-----", &rs[..120]);
    for pem in ["-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----", &broken_rsa, &truncated, &p384] {
        let result = Jwt::from_settings(&settings(|s| {
            (s.jwt_public_key, s.jwt_audience) = (Some(pem.into()), Some(AUDIENCE.into()))
        }));
        assert!(matches!(result, Err(KeyError::Malformed(_))), "{pem}");
    }
    for private in [key("rs256-private"), key("es256-private")] {
        let result = Jwt::from_settings(&settings(|s| {
            (s.jwt_public_key, s.jwt_audience) = (Some(private), Some(AUDIENCE.into()))
        }));
        assert!(matches!(result, Err(KeyError::Private)));
    }
}

mod properties {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use jsonwebtoken::EncodingKey;
    use proptest::prelude::*;
    use serde_json::json;

    use super::super::*;
    use super::*;

    fn both() -> Jwt {
        jwt(|s| (s.jwt_secret, s.jwt_public_key) = (Some(SECRET.parse().unwrap()), Some(key("rs256-public"))))
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn number() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            any::<u64>().prop_map(|n| json!(n)),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            "\\PC{0,12}".prop_map(|s| json!(s)),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_tokens_are_refused_without_panicking(token in "[A-Za-z0-9_.-]{0,200}") {
            prop_assert!(both().verify(&token).is_err());
        }

        #[test]
        fn arbitrary_headers_and_payloads_are_refused_without_panicking(
            header in prop_oneof![Just(r#"{"alg":"HS256"}"#.to_string()), Just(r#"{"alg":"RS256"}"#.to_string()), "\\PC{0,60}"],
            payload in "\\PC{0,80}",
            signature in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let token = format!("{}.{}.{}", b64(header), b64(payload), b64(signature));
            prop_assert!(both().verify(&token).is_err());
        }

        #[test]
        fn signed_tokens_with_arbitrary_claim_values_never_panic(sub in number(), exp in number(), nbf in number()) {
            let claims = json!({"sub": sub, "exp": exp, "nbf": nbf, "aud": AUDIENCE});
            let token = sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(), claims);
            if let Ok(user) = both().verify(&token) {
                prop_assert!(sub == json!(user) || sub.as_str().and_then(|s| s.parse().ok()) == Some(user));
            }
        }

        #[test]
        fn every_user_id_survives_sign_and_verify(user in any::<u64>()) {
            let exp = jsonwebtoken::get_current_timestamp() + 60;
            let key = EncodingKey::from_rsa_pem(key("rs256-private").as_bytes()).unwrap();
            let token = sign(Algorithm::RS256, &key, json!({"sub": user.to_string(), "exp": exp, "aud": AUDIENCE}));
            prop_assert_eq!(both().verify(&token).unwrap(), user);
        }
    }
}
