//! `flashsale stock set|add`: ops top-up of one SKU mid-sale, atomic in Redis,
//! recorded in MySQL. `flashsale stock load`: rebuild a sale Redis lost from
//! MySQL.

use crate::{
    config::{MysqlSettings, RedisSettings},
    db::{queries, restore},
    keys::Room,
    order::OrderStatus,
    scripts::StockChange,
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Set a SKU's remaining stock to N.
    Set(Args),
    /// Add N to a SKU's remaining stock.
    Add(Args),
    /// Rebuild a sale Redis lost (e.g. restarted without AOF) from MySQL: SKUs,
    /// orders, remaining stock, per-user holdings, deadlines, order ids. Run it
    /// once the sink has caught up (`status` shows no lag): orders still on
    /// their way to MySQL are not restored and their ids would be handed out again.
    Load(LoadArgs),
}

#[derive(clap::Args)]
pub struct LoadArgs {
    #[arg(long)]
    sale: u64,
    /// Replace the sale even though Redis still has it (its Redis-only state is lost).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    redis: RedisSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
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
        Command::Load(a) => return load(a).await,
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
    match change {
        // With buckets the figures are summed over several reads: MySQL adds.
        StockChange::Add(n) if ctx.sales.buckets(args.sale).await? > 1 => {
            queries::add_sku_stock(&ctx.mysql, args.sale, args.sku, n).await?
        }
        _ => queries::set_sku_stock(&ctx.mysql, args.sale, args.sku, supplied).await?,
    }
    println!("sale {} SKU {}: remaining {remaining}, supplied in all {supplied}", args.sale, args.sku);
    ctx.close().await
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let ctx = super::Context::connect(&args.redis, &args.mysql).await?;
    let sale = args.sale;
    let Some(spec) = restore::sale(&ctx.mysql, sale).await? else {
        anyhow::bail!("sale {sale} is not in MySQL; nothing to load");
    };
    // Redis is the source of truth while it has the sale: replacing a live
    // sale would drop every order MySQL has not caught up with.
    if !args.force && ctx.sales.any_bucket(sale, spec.buckets).await? {
        anyhow::bail!("sale {sale} is in Redis; stock load is for a sale Redis lost (pass --force to replace it)");
    }
    let orders = restore::orders(&ctx.mysql, sale).await?;
    ctx.sales.restore(sale, &spec, &orders).await?;
    // Its waiting room, if it had one: the settings come back, the line starts empty.
    let room = queries::room(&ctx.mysql, Room::Sale(sale)).await?;
    let room = match room {
        Some(q) => super::create_args::set_up_room(&ctx, Room::Sale(sale), Some(q), spec.starts_at).await?,
        None => String::new(),
    };

    let info = ctx.sales.info(sale).await?.ok_or_else(|| anyhow::anyhow!("sale {sale} vanished from Redis"))?;
    let by_status: Vec<String> = OrderStatus::ALL
        .iter()
        .map(|st| format!("{} {}", orders.iter().filter(|o| o.status == *st).count(), st.as_str()))
        .collect();
    let last = orders.iter().map(|o| o.order_id).max().unwrap_or(0);
    println!(
        "sale {sale} loaded from MySQL: {} SKU(s), {} order(s) ({}); next order id {}{room}",
        info.skus.len(),
        orders.len(),
        by_status.join(", "),
        last + 1
    );
    println!("{:>10} {:>12} {:>10} {:>10}", "sku", "price", "supplied", "remaining");
    for s in &info.skus {
        println!("{:>10} {:>12} {:>10} {:>10}", s.sku, s.price, s.stock, s.remaining);
    }
    ctx.close().await
}
