//! JWT identity through the real listener: HS256 with the secret, RS256 and
//! ES256 with a configured public key, `iss`/`aud`, leeway, the `Bearer`
//! scheme, and a bad key stopping the start. Tokens are signed here with
//! `jsonwebtoken` and the test-only keys in tests/fixtures/jwt/.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hyper::StatusCode;
use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::{helpers::TestApp, requests::Response};

const SECRET: &str = "test-secret-0123456789abcdef";
// Test-only keys (generated with `openssl genpkey` for these tests); they guard nothing.
const RS_PUBLIC: &str = include_str!("../fixtures/jwt/test-only-rs256-public.pem");
const RS_PRIVATE: &str = include_str!("../fixtures/jwt/test-only-rs256-private.pem");
const OTHER_RS_PRIVATE: &str = include_str!("../fixtures/jwt/test-only-other-rs256-private.pem");
const ES_PUBLIC: &str = include_str!("../fixtures/jwt/test-only-es256-public.pem");
const ES_PRIVATE: &str = include_str!("../fixtures/jwt/test-only-es256-private.pem");

fn rs256(private: &str, claims: Value) -> String {
    encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap()).unwrap()
}

fn es256(claims: Value) -> String {
    encode(&Header::new(Algorithm::ES256), &claims, &EncodingKey::from_ec_pem(ES_PRIVATE.as_bytes()).unwrap()).unwrap()
}

fn hs256(secret: &[u8], claims: Value) -> String {
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

/// `sub`, an `exp` `ttl` seconds from now (negative: in the past) and our `aud`.
fn claims(user: u64, ttl: i64) -> Value {
    json!({"sub": user.to_string(), "exp": get_current_timestamp().checked_add_signed(ttl).unwrap(), "aud": AUDIENCE})
}

/// The audience every service here with a public key names (one is required).
const AUDIENCE: &str = "flashsale";

async fn issue_with(app: &TestApp, coupon: u64, authorization: &str) -> Response {
    app.post(&format!("/v1/coupons/{coupon}/issue"), &json!({}), &[("authorization", authorization)]).await
}

fn assert_refused(response: &Response, why: &str) {
    assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{why}: {}", response.body);
    assert_eq!(response.body["error"], "unauthorized", "{why}");
    assert_eq!(response.headers["www-authenticate"], "Bearer", "{why}");
}

#[tokio::test]
async fn an_rs256_token_signed_for_the_configured_public_key_issues_a_coupon() {
    let app = TestApp::spawn_with(|c| {
        c.http.jwt_public_key = Some(RS_PUBLIC.into());
        c.http.jwt_audience = Some(AUDIENCE.into());
    })
    .await;
    app.create_coupon(1, 10, &[]);

    let issued = issue_with(&app, 1, &format!("Bearer {}", rs256(RS_PRIVATE, claims(7, 60)))).await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    assert_eq!(issued.body["user_id"], 7);

    let other_key = issue_with(&app, 1, &format!("Bearer {}", rs256(OTHER_RS_PRIVATE, claims(8, 60)))).await;
    assert_refused(&other_key, "signed by another RSA key");
    let confused = hs256(RS_PUBLIC.as_bytes(), claims(9, 60));
    assert_refused(&issue_with(&app, 1, &format!("Bearer {confused}")).await, "HS256 keyed with the public PEM");
    assert_eq!(app.coupon(1).await.body["issued"], 1, "only the verified request counted");
}

#[tokio::test]
async fn an_es256_token_signed_for_the_configured_public_key_reserves_an_order() {
    let app = TestApp::spawn_with(|c| {
        c.http.jwt_public_key = Some(ES_PUBLIC.into());
        c.http.jwt_audience = Some(AUDIENCE.into());
    })
    .await;
    app.create_sale(1, &["1:100:10"], &[]);
    let body = json!({"items": [{"sku": 1, "quantity": 1}]});

    let bearer = format!("Bearer {}", es256(claims(5, 60)));
    let order = app.post("/v1/sales/1/orders", &body, &[("authorization", &bearer)]).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    assert_eq!(order.body["user_id"], 5);

    let rs = format!("Bearer {}", rs256(RS_PRIVATE, claims(6, 60)));
    assert_refused(&app.post("/v1/sales/1/orders", &body, &[("authorization", &rs)]).await, "RS256 with an EC key");
    assert_eq!(app.remaining(1).await[&1], 9, "one reservation took stock");
}

#[tokio::test]
async fn with_a_secret_and_a_public_key_either_signs_but_forged_algorithms_are_refused() {
    let app = TestApp::spawn_with(|c| {
        c.http.jwt_secret = Some(SECRET.parse().unwrap());
        c.http.jwt_public_key = Some(RS_PUBLIC.into());
        c.http.jwt_audience = Some(AUDIENCE.into());
    })
    .await;
    app.create_coupon(1, 10, &[]);

    let by_secret = issue_with(&app, 1, &format!("Bearer {}", hs256(SECRET.as_bytes(), claims(1, 60)))).await;
    assert_eq!(by_secret.status, StatusCode::CREATED, "{}", by_secret.body);
    let by_key = issue_with(&app, 1, &format!("Bearer {}", rs256(RS_PRIVATE, claims(2, 60)))).await;
    assert_eq!(by_key.status, StatusCode::CREATED, "{}", by_key.body);

    let confused = hs256(RS_PUBLIC.as_bytes(), claims(3, 60));
    assert_refused(&issue_with(&app, 1, &format!("Bearer {confused}")).await, "HS256 keyed with the public PEM");
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(4, 60).to_string())
    );
    assert_refused(&issue_with(&app, 1, &format!("Bearer {none}")).await, "alg none");
    assert_refused(&issue_with(&app, 1, &format!("Bearer {}", es256(claims(5, 60)))).await, "ES256 not configured");
    assert_eq!(app.coupon(1).await.body["issued"], 2);
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_is_accepted_and_beyond_it_refused() {
    let app = TestApp::spawn_with(|c| {
        c.http.jwt_public_key = Some(RS_PUBLIC.into());
        c.http.jwt_audience = Some(AUDIENCE.into());
        c.http.jwt_leeway_secs = 30;
    })
    .await;
    app.create_coupon(1, 10, &[]);

    let just_expired = issue_with(&app, 1, &format!("Bearer {}", rs256(RS_PRIVATE, claims(1, -5)))).await;
    assert_eq!(just_expired.status, StatusCode::CREATED, "{}", just_expired.body);
    let long_expired = issue_with(&app, 1, &format!("Bearer {}", rs256(RS_PRIVATE, claims(2, -120)))).await;
    assert_refused(&long_expired, "expired two minutes ago");
    assert_eq!(long_expired.body["message"], "the token has expired");
    let no_exp = issue_with(&app, 1, &format!("Bearer {}", rs256(RS_PRIVATE, json!({"sub": "3"})))).await;
    assert_refused(&no_exp, "no exp");
}

#[tokio::test]
async fn with_an_issuer_and_audience_configured_a_token_must_carry_both() {
    let app = TestApp::spawn_with(|c| {
        c.http.jwt_secret = Some(SECRET.parse().unwrap());
        c.http.jwt_public_key = Some(ES_PUBLIC.into());
        c.http.jwt_issuer = Some("https://idp.test".into());
        c.http.jwt_audience = Some("flashsale".into());
    })
    .await;
    app.create_coupon(1, 10, &[]);
    let exp = get_current_timestamp() + 60;

    let refused = [
        (json!({"sub": "1", "exp": exp, "aud": "flashsale"}), "the token has no `iss`"),
        (json!({"sub": "1", "exp": exp, "iss": "https://idp.test"}), "the token has no `aud`"),
        (
            json!({"sub": "1", "exp": exp, "iss": "https://evil.test", "aud": "flashsale"}),
            "the token's `iss` is not the configured issuer",
        ),
        (
            json!({"sub": "1", "exp": exp, "iss": "https://idp.test", "aud": "billing"}),
            "the token's `aud` does not name this service",
        ),
    ];
    for (claims, why) in refused {
        let response = issue_with(&app, 1, &format!("Bearer {}", es256(claims))).await;
        assert_refused(&response, why);
        assert_eq!(response.body["message"], why);
    }
    let right = json!({"sub": "1", "exp": exp, "iss": "https://idp.test", "aud": ["billing", "flashsale"]});
    assert_eq!(issue_with(&app, 1, &format!("Bearer {}", es256(right))).await.status, StatusCode::CREATED);

    // `flashsale token` puts the configured issuer and audience in what it mints.
    let out = Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["token", "--user", "2"])
        .env("FLASHSALE_JWT_SECRET", SECRET)
        .env("FLASHSALE_JWT_ISSUER", "https://idp.test")
        .env("FLASHSALE_JWT_AUDIENCE", "flashsale")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let minted = format!("Bearer {}", String::from_utf8(out.stdout).unwrap().trim());
    let issued = issue_with(&app, 1, &minted).await;
    assert_eq!((issued.status, &issued.body["user_id"]), (StatusCode::CREATED, &json!(2)), "{}", issued.body);
}

#[tokio::test]
async fn the_bearer_scheme_is_read_in_any_case_with_whitespace_around() {
    let app = TestApp::spawn_with(|c| {
        c.http.jwt_public_key = Some(RS_PUBLIC.into());
        c.http.jwt_audience = Some(AUDIENCE.into());
    })
    .await;
    app.create_coupon(1, 10, &[]);

    for (user, scheme) in [(1, "bearer"), (2, "BEARER"), (3, "  Bearer  ")] {
        let response = issue_with(&app, 1, &format!("{scheme} {}  ", rs256(RS_PRIVATE, claims(user, 60)))).await;
        assert_eq!(response.status, StatusCode::CREATED, "{scheme:?}: {}", response.body);
        assert_eq!(response.body["user_id"], user);
    }
    let basic = issue_with(&app, 1, &format!("Basic {}", rs256(RS_PRIVATE, claims(4, 60)))).await;
    assert_refused(&basic, "another scheme");
}

#[test]
fn a_malformed_public_key_stops_the_start_with_a_clear_error() {
    let garbage = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-sink"])
        .env("FLASHSALE_JWT_PUBLIC_KEY", garbage)
        .env("FLASHSALE_JWT_AUDIENCE", AUDIENCE)
        // Nothing listens there: were the key checked late, the start would fail on these instead.
        .env("FLASHSALE_REDIS_URL", "redis://127.0.0.1:1")
        .env("FLASHSALE_KAFKA_BROKERS", "127.0.0.1:1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`serve` with a malformed key still runs after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("FLASHSALE_JWT_PUBLIC_KEY is not a PEM RSA or P-256 EC public key"), "{stderr}");
}

#[test]
fn a_public_key_without_an_audience_stops_the_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-sink"])
        .env("FLASHSALE_JWT_PUBLIC_KEY", RS_PUBLIC)
        .env_remove("FLASHSALE_JWT_AUDIENCE")
        .env("FLASHSALE_REDIS_URL", "redis://127.0.0.1:1")
        .env("FLASHSALE_KAFKA_BROKERS", "127.0.0.1:1")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("FLASHSALE_JWT_PUBLIC_KEY needs FLASHSALE_JWT_AUDIENCE"), "{stderr}");
}
