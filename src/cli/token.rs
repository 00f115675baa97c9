//! `flashsale token --user 7 [--ttl 1h]`: mint a user token signed with the
//! service's JWT secret, for load tests and demos with auth on.

use crate::{config::Secret, http::Jwt, time::now_ms};

#[derive(clap::Args)]
pub struct Args {
    /// The user id the token names (`sub`).
    #[arg(long)]
    user: u64,
    /// How long the token stays valid.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: std::time::Duration,
    /// The HS256 secret the service verifies with.
    #[arg(long, env = "FLASHSALE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Secret,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(!args.jwt_secret.0.is_empty(), "FLASHSALE_JWT_SECRET is empty: auth is off, no token needed");
    let exp = now_ms() / 1000 + args.ttl.as_secs();
    println!("{}", Jwt::new(&args.jwt_secret).sign(args.user, exp));
    Ok(())
}
