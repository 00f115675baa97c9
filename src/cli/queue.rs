//! `flashsale queue show`: a waiting room's numbers.

use fred::prelude::*;

use crate::{
    config::RedisSettings,
    keys::Keys,
    queue::Queues,
    scripts::{QueueState, Scripts},
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Waiting, admitted, the serving position and admissions per second (measured over one second).
    Show(ShowArgs),
}

#[derive(clap::Args)]
pub struct ShowArgs {
    /// The sale whose waiting room to show.
    #[arg(long)]
    sale: u64,
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
    let Some(before) = queues.state(args.sale).await? else {
        anyhow::bail!("sale {} has no waiting room (or no such sale)", args.sale);
    };
    tokio::time::sleep(std::time::Duration::from_secs(1) + crate::queue::FRESH).await;
    let after = queues.state(args.sale).await?.unwrap_or_else(|| before.clone());
    print(args.sale, &after, after.admitted_total.saturating_sub(before.admitted_total));
    let _ = pool.quit().await;
    Ok(())
}

fn print(sale: u64, s: &QueueState, per_second: u64) {
    let waiting = s.joins.saturating_sub(s.served);
    let pre = s.pre.map_or("not drawn yet (before the start)".to_string(), |p| format!("{p} joined before the start"));
    println!("sale {sale} waiting room:");
    println!("  joined      {} ({pre})", s.joins);
    println!("  waiting     {waiting}");
    println!("  serving     position {}", s.served);
    println!("  admitted    {} in all, {} not yet used", s.admitted_total, s.admissions_unused);
    println!("  admitted/s  {per_second} (limit {})", s.spec.admit_per_second);
    println!("  remaining   {} unit(s)", s.remaining);
}
