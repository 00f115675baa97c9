//! `flashsale migrate`: apply sql/ to MySQL.

use crate::config::MysqlSettings;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    mysql: MysqlSettings,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let applied = crate::db::migrate(&args.mysql).await?;
    if applied.is_empty() {
        println!("schema is up to date");
    }
    for name in applied {
        println!("applied {name}");
    }
    Ok(())
}
