//! `flashsale wallet show --user N`: a wallet's balance in Redis (the source
//! of truth), its row in MySQL and its latest history.

use crate::{
    config::{MysqlSettings, RedisSettings},
    time::rfc3339_ms,
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the user's balance (Redis and MySQL) and latest transactions.
    Show(ShowArgs),
}

#[derive(clap::Args)]
pub struct ShowArgs {
    /// The wallet's user.
    #[arg(long)]
    user: u64,
    /// How many of the latest transactions to print.
    #[arg(long, default_value_t = 10)]
    last: u64,
    #[command(flatten)]
    redis: RedisSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    let Command::Show(args) = command;
    let ctx = super::Context::connect(&args.redis, &args.mysql).await?;
    let wallet = ctx.wallets().get(args.user).await?;
    let updated = if wallet.version == 0 { "never".to_string() } else { rfc3339_ms(wallet.updated_at) };
    println!("wallet {}: balance {} (version {}, updated {updated})", args.user, wallet.balance, wallet.version);
    match crate::db::wallet::wallet(&ctx.mysql, args.user).await? {
        Some((balance, version)) => println!("MySQL: balance {balance} (version {version})"),
        None => println!("MySQL: no row yet"),
    }
    for t in crate::db::wallet::transactions(&ctx.mysql, args.user, args.last, None).await? {
        let order = match (t.sale_id, t.order_id) {
            (Some(sale), Some(order)) => format!(" for order {order} of sale {sale}"),
            _ => String::new(),
        };
        println!(
            "  {} v{} {} {}{order}, balance after {}",
            rfc3339_ms(t.created_at),
            t.version,
            t.kind.as_str(),
            t.amount,
            t.balance_after
        );
    }
    ctx.close().await
}
