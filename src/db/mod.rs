//! MySQL: the connection pool, the schema migrations in `sql/`, the queries
//! the CLI and the readiness probe share, and the reads a sale is restored
//! from, and retirement's reads and marks (`archive`). Sessions run in UTC so `DATETIME(3)` columns hold UTC, and speak
//! utf8mb4 so any string (4-byte UTF-8 included) arrives as it was sent.

pub mod archive;
mod migrate;
pub mod mine;
pub mod payment_keys;
pub mod queries;
pub mod restore;
pub mod wallet;

pub use migrate::migrate;

use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::config::{redact, MysqlSettings};

/// SQL for a `DATETIME(3)` column as milliseconds since the epoch (UTC sessions).
pub fn epoch_ms(col: &str) -> String {
    format!("CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {col}) DIV 1000 AS UNSIGNED)")
}

pub fn pool(settings: &MysqlSettings) -> anyhow::Result<Pool> {
    Ok(Pool::new(builder(settings)?))
}

/// The options of `pool`, for a connection of its own outside it (the sink's fence).
pub fn opts(settings: &MysqlSettings) -> anyhow::Result<Opts> {
    Ok(Opts::from(builder(settings)?))
}

fn builder(settings: &MysqlSettings) -> anyhow::Result<OptsBuilder> {
    let opts = Opts::from_url(&settings.mysql_url)
        .map_err(|e| anyhow::anyhow!("bad FLASHSALE_MYSQL_URL {}: {e}", redact(&settings.mysql_url)))?;
    let constraints = PoolConstraints::new(0, settings.mysql_pool_size.max(1)).expect("0 <= max");
    Ok(OptsBuilder::from_opts(opts)
        .pool_opts(PoolOpts::new().with_constraints(constraints).with_reset_connection(false))
        .init(vec!["SET time_zone = '+00:00'", "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci"]))
}

/// A MySQL failure as the domain sees it: unavailable, logged here.
impl From<mysql_async::Error> for crate::error::Error {
    fn from(e: mysql_async::Error) -> Self {
        tracing::warn!(error = %e, "mysql unavailable");
        crate::error::Error::Unavailable(e.to_string())
    }
}
