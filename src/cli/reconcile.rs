//! `flashsale reconcile [--sale 7 | --coupon 42] [--repair]`: compare Redis
//! with MySQL, print the differences, optionally write what MySQL lacks; exit
//! non-zero while any difference remains.

use crate::{
    config::{MysqlSettings, RedisSettings},
    reconcile::{self, Report},
};

#[derive(clap::Args)]
pub struct Args {
    /// Only this sale.
    #[arg(long, conflicts_with = "coupon")]
    sale: Option<u64>,
    /// Only this coupon campaign.
    #[arg(long)]
    coupon: Option<u64>,
    /// Write the rows MySQL lacks or holds stale (Redis wins).
    #[arg(long)]
    repair: bool,
    #[command(flatten)]
    redis: RedisSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let ctx = super::Context::connect(&args.redis, &args.mysql).await?;
    let (coupons, sales, wallets) = match (args.coupon, args.sale) {
        (Some(c), _) => (vec![c], vec![], false),
        (_, Some(s)) => (vec![], vec![s], false),
        _ => (ctx.coupons.ids().await?, ctx.sales.ids().await?, true),
    };
    let mut reports = Vec::new();
    for id in coupons {
        reports.push(reconcile::coupon(&ctx.coupons, &ctx.mysql, id, args.repair).await?);
    }
    for id in sales {
        reports.push(reconcile::sale(&ctx.sales, &ctx.mysql, id, args.repair).await?);
    }
    if wallets {
        reports.push(reconcile::wallet::wallets(&ctx.wallets(), &ctx.mysql, args.repair).await?);
    }
    let drift: usize = reports.iter().map(Report::drift).sum();
    for r in &reports {
        println!("{}: {}", r.subject, r.summary);
        for line in r.repairable.iter().chain(&r.other) {
            println!("  {line}");
        }
    }
    ctx.close().await?;
    if drift > 0 {
        let hint = if args.repair { "" } else { " (--repair writes what MySQL lacks)" };
        anyhow::bail!("{drift} difference(s) between Redis and MySQL{hint}");
    }
    println!("Redis and MySQL agree");
    Ok(())
}
