//! `flashsale sale create`: write a sale to MySQL and seed Redis.

use super::create_args::{set_up_room, Existing, Queue, Window};
use crate::{
    config::{MysqlSettings, RedisSettings},
    db::queries,
    keys::Room,
    scripts::{SaleSpec, SeedMode, SkuSpec},
    time::rfc3339_ms,
};

/// Highest unit price accepted (minor units): keeps order totals exact in Lua's doubles.
const MAX_PRICE: u64 = 1_000_000_000;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a sale: MySQL rows, then Redis stock. An existing id is an error
    /// unless --replace (reset stock, limits and orders) or --if-absent.
    Create(CreateArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Sale id.
    #[arg(long)]
    id: u64,
    /// A SKU as SKU:PRICE:STOCK (price in minor units), repeated per SKU.
    #[arg(long = "sku", value_parser = parse_sku, required = true)]
    skus: Vec<SkuSpec>,
    /// Most units one user may hold (reserved + paid) in this sale; 0: no limit.
    #[arg(long, default_value_t = 0)]
    per_user: u64,
    /// How long a reservation waits for payment before it expires (e.g. 10m, 90s).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    hold: std::time::Duration,
    /// Split a single-SKU sale's stock over N buckets, each in its own Redis
    /// Cluster slot, so one hot product spreads over several primaries (the
    /// per-user limit stays exact; stock moves to where it is asked for).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=crate::buckets::MAX_BUCKETS as i64))]
    buckets: u32,
    #[command(flatten)]
    window: Window,
    #[command(flatten)]
    queue: Queue,
    #[command(flatten)]
    existing: Existing,
    #[command(flatten)]
    redis: RedisSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
}

fn parse_sku(s: &str) -> Result<SkuSpec, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [sku, price, stock] = parts[..] else {
        return Err(format!("`{s}` is not SKU:PRICE:STOCK"));
    };
    let num =
        |v: &str, what: &str| v.parse::<u64>().map_err(|_| format!("{what} `{v}` in `{s}` is not a whole number"));
    let spec = SkuSpec { sku: num(sku, "SKU")?, price: num(price, "price")?, stock: num(stock, "stock")? };
    if spec.price > MAX_PRICE {
        return Err(format!("price in `{s}` is above {MAX_PRICE}"));
    }
    Ok(spec)
}

pub async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create(args) => create(args).await,
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let mut skus = args.skus.clone();
    skus.sort_by_key(|s| s.sku);
    anyhow::ensure!(skus.windows(2).all(|w| w[0].sku != w[1].sku), "a SKU is given twice");
    let (starts_at, ends_at) = args.window.resolve()?;
    let hold_ms = args.hold.as_millis() as u64;
    let spec = SaleSpec { starts_at, ends_at, per_user_limit: args.per_user, hold_ms, skus, buckets: args.buckets };
    anyhow::ensure!(spec.hold_ms >= 1000, "--hold must be at least 1s");
    anyhow::ensure!(spec.buckets == 1 || spec.skus.len() == 1, "--buckets is for single-SKU sales");
    let queue = args.queue.spec()?;
    anyhow::ensure!(
        queue.is_none() || spec.buckets == 1,
        "--queue is for sales without --buckets: a room keeps the stock in its own slot (docs/queue.md)"
    );

    let ctx = super::Context::connect(&args.redis, &args.mysql).await?;
    if !args.existing.replace {
        let exists = queries::sale_exists(&ctx.mysql, args.id).await? || ctx.sales.info(args.id).await?.is_some();
        if exists {
            if args.existing.if_absent {
                println!("sale {} exists; left as it is", args.id);
                return ctx.close().await;
            }
            anyhow::bail!("sale {} exists; pass --replace to reset it", args.id);
        }
    }
    if args.existing.replace {
        // A sale keeps its bucket count for life, retired or not: a process
        // may still route its orders by the count it learnt.
        if let Some(before) = crate::db::restore::sale(&ctx.mysql, args.id).await? {
            anyhow::ensure!(
                before.buckets == args.buckets,
                "sale {} was created with {} bucket(s); --replace keeps them (--buckets {}), or use a new id",
                args.id,
                before.buckets,
                before.buckets
            );
        }
        if let Some(info) = ctx.sales.info(args.id).await? {
            anyhow::ensure!(
                info.buckets == args.buckets,
                "sale {} has {} bucket(s) in Redis; --replace keeps them (--buckets {}), or use a new id",
                args.id,
                info.buckets,
                info.buckets
            );
        }
    }
    queries::put_sale(&ctx.mysql, args.id, &spec, args.existing.replace).await?;
    let mode = if args.existing.replace { SeedMode::Replace } else { SeedMode::Create };
    let outcome = ctx.sales.seed(args.id, &spec, mode).await?;
    let room = match outcome {
        crate::scripts::SeedOutcome::Created | crate::scripts::SeedOutcome::Replaced => {
            set_up_room(&ctx, Room::Sale(args.id), queue, spec.starts_at).await?
        }
        _ => String::new(),
    };
    let ends = if spec.ends_at == 0 { "never".to_string() } else { rfc3339_ms(spec.ends_at) };
    println!(
        "sale {}: {outcome:?}, {} SKU(s){}, per-user limit {}, hold {}s, opens {}, closes {ends}{room}",
        args.id,
        spec.skus.len(),
        if spec.buckets > 1 { format!(" in {} buckets", spec.buckets) } else { String::new() },
        spec.per_user_limit,
        spec.hold_ms / 1000,
        rfc3339_ms(spec.starts_at)
    );
    ctx.close().await
}
