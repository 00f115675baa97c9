//! What a test leaves behind on the shared dev stack, removed when its
//! `TestApp` drops: the Redis keys under its prefix and its MySQL database.
//! Left alone, every run would grow Redis (AOF rewrites fork mid-benchmark).
//! A failing test keeps them, for a look.
//!
//! Its Kafka topics stay: tansu 0.6.0 panics its storage, and with it the
//! whole broker, when a topic is deleted while a fetch on it is under way
//! (`offset_stage`: "more or less than one row"), and the service's sink may
//! still be fetching when the test ends. `scripts/stack reset` clears them.

use std::time::Duration;

use flashsale::config::ServeConfig;
use fred::{
    prelude::*,
    types::{ClusterHash, CustomCommand},
};
use mysql_async::prelude::*;

/// Removes `config`'s keys and database; waits at most a few seconds
/// and only says what it could not remove (a server down is some test's
/// point). Runs on a thread of its own: it is called from `Drop`, maybe
/// inside a single-threaded runtime.
pub fn forget(config: &ServeConfig) {
    let config = config.clone();
    let done = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let all = async { tokio::join!(redis_keys(&config), database(&config)) };
            match tokio::time::timeout(Duration::from_secs(10), all).await {
                Ok((keys, db)) => {
                    for (what, result) in [("keys", keys), ("database", db)] {
                        if let Err(e) = result {
                            eprintln!("forget {}: {what} stay: {e:#}", config.redis.key_prefix);
                        }
                    }
                }
                Err(_) => eprintln!("forget {}: gave up after 10 s", config.redis.key_prefix),
            }
        })
    });
    let _ = done.join();
}

async fn redis_keys(config: &ServeConfig) -> anyhow::Result<()> {
    let client = flashsale::redis::client(&config.redis).await?;
    let pattern = format!("{}*", config.redis.key_prefix);
    let keys_command = CustomCommand::new_static("KEYS", ClusterHash::Random, false);
    if !client.is_clustered() {
        let keys: Vec<String> = client.custom(keys_command, vec![pattern]).await?;
        for chunk in keys.chunks(500) {
            let _: i64 = client.unlink(chunk.to_vec()).await?;
        }
        let _ = client.quit().await;
        return Ok(());
    }
    // On a cluster: KEYS on every primary, then UNLINK per slot (one
    // command may not name keys of several slots).
    let nodes: String =
        client.custom(CustomCommand::new_static("CLUSTER", ClusterHash::Random, false), vec!["NODES"]).await?;
    let primaries = nodes.lines().filter(|l| l.split_whitespace().nth(2).is_some_and(|f| f.contains("master")));
    let mut by_slot: std::collections::BTreeMap<u16, Vec<String>> = std::collections::BTreeMap::new();
    for line in primaries {
        let Some(addr) = line.split_whitespace().nth(1).and_then(|a| a.split('@').next()) else { continue };
        let Some((host, port)) = addr.rsplit_once(':') else { continue };
        let server = fred::types::config::Server::new(host, port.parse::<u16>()?);
        let keys: Vec<String> =
            client.with_cluster_node(server).custom(keys_command.clone(), vec![pattern.clone()]).await?;
        for key in keys {
            by_slot.entry(fred::util::redis_keyslot(key.as_bytes())).or_default().push(key);
        }
    }
    for keys in by_slot.into_values() {
        let _: i64 = client.unlink(keys).await?;
    }
    let _ = client.quit().await;
    Ok(())
}

async fn database(config: &ServeConfig) -> anyhow::Result<()> {
    let url = &config.mysql.mysql_url;
    let (server, name) = url.rsplit_once('/').expect("mysql url has a database");
    let pool = mysql_async::Pool::new(server);
    let mut conn = pool.get_conn().await?;
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`")).await?;
    drop(conn);
    pool.disconnect().await?;
    Ok(())
}
