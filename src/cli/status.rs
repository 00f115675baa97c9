//! `flashsale status`: where every coupon, order and wallet change is on
//! its way to MySQL — Redis stock, orders, wallets and outboxes, Kafka end
//! offsets against the sink's, MySQL rows, and per partition whether its sink
//! runs or is stalled (with the way out). One file per part under `status/`.

mod coupon;
pub(super) mod partitions;
mod sale;
mod wallet;

use serde::Serialize;

use crate::config::{KafkaSettings, MysqlSettings, RedisSettings};

#[derive(clap::Args)]
pub struct Args {
    /// Only this campaign, live or retired (default: every live campaign, unless --sale is given).
    #[arg(long)]
    coupon: Option<u64>,
    /// Only this sale, live or retired (default: every live sale, unless --coupon is given).
    #[arg(long)]
    sale: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    redis: RedisSettings,
    #[command(flatten)]
    mysql: MysqlSettings,
    #[command(flatten)]
    kafka: KafkaSettings,
}

#[derive(Serialize)]
struct Status {
    /// The Redis server this command reached (the current primary, through Sentinel).
    redis: crate::redis::Role,
    coupons: Vec<coupon::CouponStatus>,
    sales: Vec<sale::SaleStatus>,
    /// The coupon topic; `partitions` are its partitions.
    topic: String,
    partitions: Vec<partitions::PartitionStatus>,
    order_topic: String,
    order_partitions: Vec<partitions::PartitionStatus>,
    /// Absent when `--coupon` or `--sale` narrowed the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    wallets: Option<wallet::WalletStatus>,
    wallet_topic: String,
    wallet_partitions: Vec<partitions::PartitionStatus>,
    /// Campaigns and sales that retired (MySQL keeps them; `--coupon` / `--sale` shows one).
    retired_coupons: u64,
    retired_sales: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let ctx = super::Context::connect(&args.redis, &args.mysql).await?;
    // Naming a coupon or a sale narrows the report to what was named.
    let coupon_ids = match (args.coupon, args.sale) {
        (Some(id), _) => vec![id],
        (None, Some(_)) => Vec::new(),
        (None, None) => ctx.coupons.ids().await?,
    };
    let sale_ids = match (args.sale, args.coupon) {
        (Some(id), _) => vec![id],
        (None, Some(_)) => Vec::new(),
        (None, None) => ctx.sales.ids().await?,
    };
    let mut coupons = Vec::new();
    for id in coupon_ids {
        coupons.push(coupon::of(&ctx.coupons, &ctx.mysql, id).await?);
    }
    let mut sales = Vec::new();
    for id in sale_ids {
        sales.push(sale::of(&ctx.sales, &ctx.mysql, id).await?);
    }

    let wallets = match (args.coupon, args.sale) {
        (None, None) => Some(wallet::of(&ctx.wallets(), &ctx.mysql).await?),
        _ => None,
    };

    let kafka = crate::kafka::connect(&args.kafka).await?;
    let (topic, order_topic) = (args.kafka.coupon_topic.clone(), args.kafka.order_topic.clone());
    let db = crate::db::opts(&args.mysql)?.db_name().unwrap_or_default().to_string();
    let (retired_coupons, retired_sales) = crate::db::archive::retired_counts(&ctx.mysql).await?;
    let status = Status {
        redis: crate::redis::role(ctx.redis.next()).await?,
        retired_coupons,
        retired_sales,
        coupons,
        sales,
        partitions: partitions::of(&kafka, &ctx.mysql, &db, &topic).await?,
        topic,
        order_partitions: partitions::of(&kafka, &ctx.mysql, &db, &order_topic).await?,
        order_topic,
        wallets,
        wallet_partitions: partitions::of(&kafka, &ctx.mysql, &db, &args.kafka.wallet_topic).await?,
        wallet_topic: args.kafka.wallet_topic.clone(),
    };

    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_text(&status);
    }
    ctx.close().await
}

fn print_text(s: &Status) {
    let r = &s.redis;
    println!(
        "redis {} ({}, {} replicas connected)",
        r.server,
        if r.role == "master" { "primary" } else { &r.role },
        r.replicas
    );
    coupon::print(&s.coupons);
    for sale in &s.sales {
        sale::print(sale);
    }
    partitions::print(&s.topic, &s.partitions);
    partitions::print(&s.order_topic, &s.order_partitions);
    if let Some(w) = &s.wallets {
        wallet::print(w);
    }
    partitions::print(&s.wallet_topic, &s.wallet_partitions);
    println!(
        "\nretired: {} campaign(s), {} sale(s) (MySQL keeps them; --coupon ID / --sale ID shows one)",
        s.retired_coupons, s.retired_sales
    );
}
