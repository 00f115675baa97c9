//! `flashsale coupon create`: write a campaign to MySQL and seed Redis.
//! `flashsale coupon load`: rebuild a campaign Redis lost from MySQL.

use super::create_args::{set_up_room, Existing, Queue, Window};
use crate::{
    config::{MysqlSettings, RedisSettings},
    db::queries,
    keys::Room,
    scripts::{CampaignSpec, SeedMode, SeedOutcome},
    time::rfc3339_ms,
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a campaign: MySQL row, then Redis stock. An existing id is an
    /// error unless --replace (reset stock and issued users) or --if-absent.
    Create(CreateArgs),
    /// Rebuild a campaign Redis lost (a failover in async mode, a flush, an
    /// operator's mistake) from MySQL: holders, their uses, remaining stock.
    /// Refused while the campaign's outbox or the sink still has events on
    /// their way to MySQL (they would be missing) or while Redis still has the
    /// campaign, unless --force.
    Load(LoadArgs),
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Campaign id.
    #[arg(long)]
    id: u64,
    /// Load even though Redis still has the campaign or events are still on their way.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    redis: RedisSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
    #[command(flatten)]
    kafka: crate::config::KafkaSettings,
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
    /// Split the stock over N buckets, each in its own Redis Cluster slot, so
    /// one hot campaign spreads over several primaries (1-64; fixed for the
    /// campaign's life).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=crate::buckets::MAX_BUCKETS as i64))]
    buckets: u32,
    #[command(flatten)]
    queue: Queue,
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
        Command::Load(args) => load(args).await,
    }
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let ctx = super::Context::connect(&args.redis, &args.mysql).await?;
    let id = args.id;
    let Some(campaign) = crate::db::restore::campaign(&ctx.mysql, id).await? else {
        anyhow::bail!("coupon {id} is not in MySQL; nothing to load");
    };
    if !args.force {
        if ctx.coupons.info(id).await?.is_some() {
            anyhow::bail!(
                "coupon {id} is in Redis; coupon load is for a campaign Redis lost (pass --force to replace it)"
            );
        }
        let outbox = ctx.coupons.outbox_len(id).await?;
        if outbox > 0 {
            anyhow::bail!(
                "coupon {id}: {outbox} outbox entries are not in Kafka yet (pass --force to load without them)"
            );
        }
        let db = crate::db::opts(&args.mysql)?.db_name().unwrap_or_default().to_string();
        let lag = super::status::partitions::lag(&args.kafka, &ctx.mysql, &db).await?;
        if lag > 0 {
            anyhow::bail!(
                "the sink is {lag} events behind Kafka: wait until `flashsale status` shows no lag (or pass --force)"
            );
        }
    }
    let remaining = ctx.coupons.restore(id, &campaign).await?;
    // Its waiting room, if it had one: the settings come back, the line starts empty.
    let room = match queries::room(&ctx.mysql, Room::Coupon(id)).await? {
        Some(q) => set_up_room(&ctx, Room::Coupon(id), Some(q), campaign.spec.starts_at).await?,
        None => String::new(),
    };
    println!(
        "coupon {id} loaded from MySQL: {} holder(s), {} in use by orders, remaining {remaining} of {}{room}",
        campaign.users.len(),
        campaign.used.len(),
        campaign.spec.total
    );
    ctx.close().await
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let (starts_at, ends_at) = args.window.resolve()?;
    let Existing { replace, if_absent } = args.existing;
    let queue = args.queue.spec()?;
    anyhow::ensure!(
        queue.is_none() || args.buckets == 1,
        "--queue is for campaigns without --buckets: a room keeps the stock in its own slot (docs/queue.md)"
    );

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
    if replace {
        if let Some(info) = coupons.info(args.id).await? {
            anyhow::ensure!(
                info.buckets == args.buckets,
                "coupon {} has {} bucket(s) in Redis; --replace keeps them (--buckets {}), or use a new id",
                args.id,
                info.buckets,
                info.buckets
            );
        }
    }
    queries::put_campaign(mysql, args.id, args.quantity, starts_at, ends_at, args.discount, args.buckets, replace)
        .await?;
    let mode = if replace { SeedMode::Replace } else { SeedMode::Create };
    let spec = CampaignSpec { total: args.quantity, starts_at, ends_at, discount: args.discount };
    let outcome = coupons.seed(args.id, spec, mode, args.buckets).await?;
    let room = match outcome {
        SeedOutcome::Created | SeedOutcome::Replaced => {
            set_up_room(&ctx, Room::Coupon(args.id), queue, starts_at).await?
        }
        _ => String::new(),
    };
    let ends = if ends_at == 0 { "never".to_string() } else { rfc3339_ms(ends_at) };
    println!(
        "coupon {}: {:?}, quantity {}{}, opens {}, closes {}{room}",
        args.id,
        outcome,
        args.quantity,
        if args.buckets > 1 { format!(" in {} buckets", args.buckets) } else { String::new() },
        rfc3339_ms(starts_at),
        ends
    );
    ctx.close().await
}
