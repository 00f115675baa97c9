//! `flashsale payment sign --path P --body '{...}'`: prints the
//! `Flashsale-Signature` header a payment gateway would send with that call,
//! so a confirm or charge can be made by hand (curl) or by a test tool.

use crate::{
    config::Secret,
    signature::{Signer, Target, TOLERANCE_SECS},
    time::now_ms,
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print `Flashsale-Signature: t=...,v1=...` for a gateway call (valid for 300 s).
    Sign(SignArgs),
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// The secret shared with the service (its FLASHSALE_PAYMENT_SECRET).
    #[arg(long, env = "FLASHSALE_PAYMENT_SECRET", hide_env_values = true)]
    secret: Secret,
    /// The path the call goes to, without the query (e.g. /v1/sales/1/orders/7/confirm):
    /// the signature is valid there only.
    #[arg(long)]
    path: String,
    /// The call's method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// The exact request body to sign: send these bytes unchanged.
    #[arg(long)]
    body: String,
    /// Signing time in unix seconds (default: now).
    #[arg(long)]
    timestamp: Option<u64>,
    /// Print only the header's value, without `Flashsale-Signature: `.
    #[arg(long)]
    value_only: bool,
}

pub fn run(command: Command) -> anyhow::Result<()> {
    let Command::Sign(args) = command;
    anyhow::ensure!(!args.secret.0.is_empty(), "the payment secret is empty");
    let t = args.timestamp.unwrap_or_else(|| now_ms() / 1000);
    anyhow::ensure!(
        args.path.starts_with('/') && !args.path.contains('?'),
        "--path is a path without a query: /v1/..."
    );
    let target = Target { method: &args.method.to_ascii_uppercase(), path: &args.path };
    let value = Signer::new(&args.secret).sign(t, &target, args.body.as_bytes());
    if args.value_only {
        println!("{value}");
    } else {
        println!("Flashsale-Signature: {value}");
    }
    if t.abs_diff(now_ms() / 1000) > TOLERANCE_SECS {
        eprintln!("note: a timestamp more than {TOLERANCE_SECS} s from now is refused by the service");
    }
    Ok(())
}
