//! `flashsale queue show`: a waiting room's numbers.

use fred::prelude::*;

use crate::{
    config::RedisSettings,
    keys::{Keys, Room},
    queue::Queues,
    scripts::{QueueState, Scripts},
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Waiting, admitted, the serving position and admissions per second (measured over one second)
    /// of a sale's (--sale N) or campaign's (--coupon N) waiting room.
    Show(ShowArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("room").required(true).args(["sale", "coupon"])))]
pub struct ShowArgs {
    /// The sale whose waiting room to show.
    #[arg(long)]
    sale: Option<u64>,
    /// The coupon campaign whose waiting room to show.
    #[arg(long)]
    coupon: Option<u64>,
    #[command(flatten)]
    redis: RedisSettings,
}

pub async fn run(cmd: Command) -> anyhow::Result<()> {
    let Command::Show(args) = cmd;
    let pool = crate::redis::pool(&args.redis).await?;
    let placement = crate::placement::Placement::detect(pool.next());
    let ack = placement.ack(args.redis.ack().check(pool.next()).await?);
    let scripts = std::sync::Arc::new(Scripts::load(pool.next(), ack).await?);
    let queues = Queues::new(pool.clone(), Keys::new(args.redis.key_prefix.clone()), scripts);
    let (room, name) = match (args.sale, args.coupon) {
        (Some(id), _) => (Room::Sale(id), format!("sale {id}")),
        (_, Some(id)) => (Room::Coupon(id), format!("coupon {id}")),
        _ => anyhow::bail!("--sale or --coupon"),
    };
    let Some(before) = queues.state(room).await? else {
        anyhow::bail!("{name} has no waiting room (or does not exist)");
    };
    tokio::time::sleep(std::time::Duration::from_secs(1) + crate::queue::FRESH).await;
    let after = queues.state(room).await?.unwrap_or_else(|| before.clone());
    print(&name, &after, after.admitted_total.saturating_sub(before.admitted_total));
    let _ = pool.quit().await;
    Ok(())
}

fn print(name: &str, s: &QueueState, per_second: u64) {
    let waiting = s.joins.saturating_sub(s.served);
    let pre = s.pre.map_or("not drawn yet (before the start)".to_string(), |p| format!("{p} joined before the start"));
    println!("{name} waiting room:");
    println!("  joined      {} ({pre})", s.joins);
    println!("  waiting     {waiting}");
    println!("  serving     position {}", s.served);
    println!("  admitted    {} in all, {} not yet used", s.admitted_total, s.admissions_unused);
    println!("  admitted/s  {per_second} (limit {})", s.spec.admit_per_second);
    println!("  remaining   {} unit(s)", s.remaining);
    if s.spec.pow_difficulty > 0 {
        println!("  joining     proof of work of ~{} attempts", s.spec.pow_difficulty);
    }
}
