//! `flashsale stock set|add`: ops top-up of one SKU mid-sale, atomic in Redis,
//! recorded in MySQL.

use crate::{
    config::{MysqlSettings, RedisSettings},
    db::queries,
    scripts::StockChange,
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Set a SKU's remaining stock to N.
    Set(Args),
    /// Add N to a SKU's remaining stock.
    Add(Args),
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    sale: u64,
    #[arg(long)]
    sku: u64,
    #[arg(long)]
    quantity: u64,
    #[command(flatten)]
    redis: RedisSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
}

pub async fn run(cmd: Command) -> anyhow::Result<()> {
    let (args, change) = match cmd {
        Command::Set(a) => {
            let q = a.quantity;
            (a, StockChange::Set(q))
        }
        Command::Add(a) => {
            let q = a.quantity;
            (a, StockChange::Add(q))
        }
    };
    let ctx = super::Context::connect(&args.redis, &args.mysql).await?;
    let Some((remaining, supplied)) = ctx.sales.adjust_stock(args.sale, args.sku, change).await? else {
        anyhow::bail!("sale {} has no SKU {}", args.sale, args.sku);
    };
    queries::set_sku_stock(&ctx.mysql, args.sale, args.sku, supplied).await?;
    println!("sale {} SKU {}: remaining {remaining}, supplied in all {supplied}", args.sale, args.sku);
    ctx.close().await
}
