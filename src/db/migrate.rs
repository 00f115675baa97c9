//! Applies the versioned files of `sql/` once each, in order, recording them
//! in `schema_migrations`. Creates the database first when it is missing.

use mysql_async::{prelude::*, Pool};

use crate::config::MysqlSettings;

/// (version, name, SQL). Append new files here; never edit an applied one.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "0001_coupons", include_str!("../../sql/0001_coupons.sql")),
    (2, "0002_orders", include_str!("../../sql/0002_orders.sql")),
    (3, "0003_order_conflicts", include_str!("../../sql/0003_order_conflicts.sql")),
    (4, "0004_utf8mb4", include_str!("../../sql/0004_utf8mb4.sql")),
    (5, "0005_sink_stalls", include_str!("../../sql/0005_sink_stalls.sql")),
    (6, "0006_retirement", include_str!("../../sql/0006_retirement.sql")),
    (7, "0007_wallets", include_str!("../../sql/0007_wallets.sql")),
    (8, "0008_buckets", include_str!("../../sql/0008_buckets.sql")),
    (9, "0009_sale_buckets", include_str!("../../sql/0009_sale_buckets.sql")),
    (10, "0010_payment_keys", include_str!("../../sql/0010_payment_keys.sql")),
    (11, "0011_orders_held_by_user", include_str!("../../sql/0011_orders_held_by_user.sql")),
    (12, "0012_waiting_rooms", include_str!("../../sql/0012_waiting_rooms.sql")),
];

/// Returns the names of the migrations applied by this call.
pub async fn migrate(settings: &MysqlSettings) -> anyhow::Result<Vec<&'static str>> {
    create_database(settings).await?;
    let pool = super::pool(settings)?;
    let mut conn = pool.get_conn().await?;
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
           version INT UNSIGNED NOT NULL PRIMARY KEY,
           name VARCHAR(255) NOT NULL,
           applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
         ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci",
    )
    .await?;
    let applied: Vec<u32> = conn.query("SELECT version FROM schema_migrations").await?;
    let mut done = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        for statement in statements(sql) {
            conn.query_drop(statement).await.map_err(|e| anyhow::anyhow!("migration {name}: {e}"))?;
        }
        conn.exec_drop("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (version, name)).await?;
        done.push(name);
    }
    drop(conn);
    pool.disconnect().await?;
    Ok(done)
}

async fn create_database(settings: &MysqlSettings) -> anyhow::Result<()> {
    let builder = super::builder(settings)?;
    let opts = mysql_async::Opts::from(builder.clone());
    let Some(db) = opts.db_name().map(str::to_owned) else {
        return Ok(());
    };
    anyhow::ensure!(
        db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name `{db}` may hold only letters, digits and _"
    );
    let pool = Pool::new(builder.db_name(None::<String>));
    let mut conn = pool
        .get_conn()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach MySQL at {}: {e}", crate::config::redact(&settings.mysql_url)))?;
    // An existing database keeps its default until 0004_utf8mb4 changes it.
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        .await?;
    drop(conn);
    pool.disconnect().await?;
    Ok(())
}

/// Splits a migration file into statements: `;` at the end of a line ends one;
/// `--` comment lines are dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_splits_into_create_statements() {
        for (_, name, sql) in super::MIGRATIONS {
            let statements = super::statements(sql);
            assert!(!statements.is_empty(), "{name}");
            assert!(
                statements.iter().all(|s| ["CREATE", "ALTER"].iter().any(|k| s.trim_start().starts_with(k))),
                "{name}"
            );
        }
    }
}
