//! `flashsale coupon create`: write a campaign to MySQL and seed Redis.

use super::create_args::{Existing, Window};
use crate::{
    config::{MysqlSettings, RedisSettings},
    db::queries,
    scripts::{CampaignSpec, SeedMode},
    time::rfc3339_ms,
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a campaign: MySQL row, then Redis stock. An existing id is an
    /// error unless --replace (reset stock and issued users) or --if-absent.
    Create(CreateArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Campaign id.
    #[arg(long)]
    id: u64,
    /// Coupons to hand out.
    #[arg(long)]
    quantity: u64,
    #[command(flatten)]
    window: Window,
    /// What an order saves with this coupon, in minor units (cents).
    #[arg(long, default_value_t = 0)]
    discount: u64,
    #[command(flatten)]
    existing: Existing,
    #[command(flatten)]
    redis: RedisSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
}

pub async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create(args) => create(args).await,
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let (starts_at, ends_at) = args.window.resolve()?;
    let Existing { replace, if_absent } = args.existing;

    let ctx = super::Context::connect(&args.redis, &args.mysql).await?;
    let (coupons, mysql) = (&ctx.coupons, &ctx.mysql);

    if !replace {
        let in_mysql = queries::campaign_exists(mysql, args.id).await?;
        let in_redis = coupons.info(args.id).await?.is_some();
        if in_mysql || in_redis {
            if if_absent {
                println!("coupon {} exists; left as it is", args.id);
                return ctx.close().await;
            }
            anyhow::bail!("coupon {} exists; pass --replace to reset it", args.id);
        }
    }
    queries::put_campaign(mysql, args.id, args.quantity, starts_at, ends_at, args.discount, replace).await?;
    let mode = if replace { SeedMode::Replace } else { SeedMode::Create };
    let outcome = coupons
        .seed(args.id, CampaignSpec { total: args.quantity, starts_at, ends_at, discount: args.discount }, mode)
        .await?;
    let ends = if ends_at == 0 { "never".to_string() } else { rfc3339_ms(ends_at) };
    println!(
        "coupon {}: {:?}, quantity {}, opens {}, closes {}",
        args.id,
        outcome,
        args.quantity,
        rfc3339_ms(starts_at),
        ends
    );
    ctx.close().await
}
