//! `flashsale token --user 7 [--ttl 1h]`: mint an HS256 user token signed with
//! the service's JWT secret (and its issuer and audience, when it has them),
//! for load tests and demos with auth on.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::{config::TokenSettings, time::now_ms};

#[derive(clap::Args)]
pub struct Args {
    /// The user id the token names (`sub`).
    #[arg(long)]
    user: u64,
    /// How long the token stays valid.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: std::time::Duration,
    #[command(flatten)]
    jwt: TokenSettings,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: String,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let secret = &args.jwt.jwt_secret.0;
    anyhow::ensure!(!secret.is_empty(), "FLASHSALE_JWT_SECRET is empty: auth is off, no token needed");
    let claims = Claims {
        sub: args.user.to_string(),
        exp: now_ms() / 1000 + args.ttl.as_secs(),
        iss: args.jwt.jwt_issuer.as_deref().filter(|s| !s.is_empty()),
        aud: args.jwt.jwt_audience.as_deref().filter(|s| !s.is_empty()),
    };
    let key = EncodingKey::from_secret(secret.as_bytes())?;
    println!("{}", encode(&Header::new(Algorithm::HS256), &claims, &key)?);
    Ok(())
}
