//! The `flashsale` command line: one file per subcommand.

mod config;
mod coupon;
mod create_args;
mod migrate;
mod payment;
mod queue;
mod reconcile;
mod sale;
mod serve;
mod sink;
mod status;
mod stock;
mod token;
mod wallet;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "flashsale",
    version,
    about = "Flash-sale coupon service: Redis Lua hot path, Kafka relay, MySQL sink"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: crate::config::GlobalSettings,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP API, the outbox relay and (unless --no-sink) the sink.
    // Boxed: every server's settings make it several times the size of the others.
    Serve(Box<serve::Args>),
    /// Run only the sink: Kafka -> MySQL (`sink reset-offset`: move where it resumes).
    Sink(sink::Args),
    /// Apply the SQL migrations in sql/ (creates the database if missing).
    Migrate(migrate::Args),
    /// Manage coupon campaigns.
    #[command(subcommand)]
    Coupon(coupon::Command),
    /// Manage flash sales.
    #[command(subcommand)]
    Sale(sale::Command),
    /// Adjust a SKU's stock mid-sale.
    #[command(subcommand)]
    Stock(stock::Command),
    /// Compare Redis with MySQL row by row; --repair writes what MySQL lacks.
    Reconcile(reconcile::Args),
    /// Payment-gateway tooling: sign a callback body as the gateway would.
    #[command(subcommand)]
    Payment(payment::Command),
    /// Print a user token signed with FLASHSALE_JWT_SECRET (for auth-on setups).
    Token(token::Args),
    /// Wallets: show one's balance (Redis) and history (MySQL).
    #[command(subcommand)]
    Wallet(wallet::Command),
    /// Waiting rooms (`sale|coupon create --queue`): `queue show --sale N` / `--coupon N`.
    #[command(subcommand)]
    Queue(queue::Command),
    /// Show Redis stock, outbox, Kafka offsets, sink lag and stalls, and MySQL rows.
    Status(status::Args),
    /// Print the settings a subcommand would run with, and where each comes from (`config serve`).
    ///
    /// One FLASHSALE_NAME=value line per setting of the subcommand, resolved as it would
    /// resolve them (flags, then the environment, then the default; the comment says which),
    /// secrets masked.
    Config(config::Args),
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Queue(cmd) => queue::run(cmd).await,
            Command::Sink(args) => sink::run(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Coupon(cmd) => coupon::run(cmd).await,
            Command::Status(args) => status::run(args).await,
            Command::Sale(cmd) => sale::run(cmd).await,
            Command::Reconcile(args) => reconcile::run(args).await,
            Command::Token(args) => token::run(args).await,
            Command::Payment(cmd) => payment::run(cmd),
            Command::Stock(cmd) => stock::run(cmd).await,
            Command::Wallet(cmd) => wallet::run(cmd).await,
            Command::Config(args) => config::run(args),
        }
    }
}

/// A shutdown that fires on Ctrl-C or SIGTERM.
fn on_signal() -> crate::shutdown::Shutdown {
    let (trigger, shutdown) = crate::shutdown::channel();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler installs");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        trigger.fire();
    });
    shutdown
}

/// Redis (with the scripts loaded) and MySQL, as the ops commands use them.
struct Context {
    redis: fred::prelude::Pool,
    mysql: mysql_async::Pool,
    coupons: crate::coupons::Coupons,
    sales: crate::sales::Sales,
    keys: crate::keys::Keys,
    scripts: std::sync::Arc<crate::scripts::Scripts>,
}

impl Context {
    async fn connect(
        redis: &crate::config::RedisSettings,
        mysql: &crate::config::MysqlSettings,
    ) -> anyhow::Result<Context> {
        let pool = crate::redis::pool(redis).await?;
        let placement = crate::placement::Placement::detect(pool.next());
        let ack = placement.ack(redis.ack().check(pool.next()).await?);
        let scripts = std::sync::Arc::new(crate::scripts::Scripts::load(pool.next(), ack).await?);
        let keys = crate::keys::Keys::new(redis.key_prefix.clone());
        Ok(Context {
            coupons: crate::coupons::Coupons::new(pool.clone(), keys.clone(), scripts.clone(), &placement),
            // The CLI reserves nothing: the default TTL is never used.
            sales: crate::sales::Sales::new(
                pool.clone(),
                keys.clone(),
                scripts.clone(),
                placement,
                crate::config::RetentionSettings::default().idempotency_ttl,
                0,
            ),
            keys,
            scripts,
            redis: pool,
            mysql: crate::db::pool(mysql)?,
        })
    }

    /// The wallets (reads only: the ops commands never change one).
    fn wallets(&self) -> crate::wallet::Wallets {
        crate::wallet::Wallets::new(
            self.redis.clone(),
            self.keys.clone(),
            self.scripts.clone(),
            crate::config::WalletSettings::default(),
            std::time::Duration::ZERO,
        )
    }

    async fn close(self) -> anyhow::Result<()> {
        use fred::interfaces::ClientLike;
        let _ = self.redis.quit().await;
        let _ = self.mysql.disconnect().await;
        Ok(())
    }
}
