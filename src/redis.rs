//! Connecting to Redis: a pool of pipelining clients for the hot path and
//! single clients for blocking readers, all with explicit timeouts and a
//! reconnect policy (fred's defaults have neither); and which client a write
//! may be handed to (only a connected one).

use fred::{prelude::*, types::config::ReconnectError};

use crate::{caller::WriteError, config::RedisSettings};

fn builder(settings: &RedisSettings) -> anyhow::Result<Builder> {
    let config = Config::from_url(&settings.redis_url).map_err(|e| anyhow::anyhow!("bad FLASHSALE_REDIS_URL: {e}"))?;
    let mut builder = Builder::from_config(config);
    let timeout = settings.timeout();
    builder
        .with_performance_config(|perf| perf.default_command_timeout = timeout)
        .with_connection_config(|conn| {
            conn.connection_timeout = timeout.max(std::time::Duration::from_secs(1));
            conn.internal_command_timeout = timeout.max(std::time::Duration::from_secs(1));
            // A command whose connection dropped is not re-sent: a script that
            // ran but whose answer was lost must not run twice behind our back.
            conn.max_command_attempts = 1;
            // A primary demoted by a failover answers writes READONLY while
            // the connection stays up: reconnect, and so ask Sentinel (with a
            // Sentinel URL) for the current primary.
            conn.reconnect_errors = vec![ReconnectError::ReadOnly, ReconnectError::MasterDown];
        })
        // Retry forever, 50 ms to 2 s apart: Redis restarts must not need ours.
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2));
    Ok(builder)
}

/// The hot-path pool: every client pipelines concurrent commands.
pub async fn pool(settings: &RedisSettings) -> anyhow::Result<Pool> {
    let pool = builder(settings)?.build_pool(settings.redis_pool_size.max(1))?;
    pool.init()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Redis at {}: {e}", crate::config::redact(&settings.redis_url)))?;
    Ok(pool)
}

/// A connected client of `pool` for a write. A command handed to a client
/// that is not connected waits in its buffer until the client reconnects,
/// however long its caller has stopped waiting: a write is not sent at all
/// then, and its caller is told it did not happen.
pub fn connected(pool: &Pool) -> Result<&Client, WriteError> {
    let client = pool.next_connected();
    if client.is_connected() {
        Ok(client)
    } else {
        Err(WriteError::NotSent(Error::new(ErrorKind::IO, "not connected to Redis")))
    }
}

/// One client of its own, for a reader that blocks its connection (XREADGROUP BLOCK).
pub async fn client(settings: &RedisSettings) -> anyhow::Result<Client> {
    let client = builder(settings)?.build()?;
    client
        .init()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Redis at {}: {e}", crate::config::redact(&settings.redis_url)))?;
    Ok(client)
}

/// Redis refused the call before it changed anything: a replica or a demoted
/// primary (READONLY), too few replicas for `min-replicas-to-write`
/// (NOREPLICAS), a replica cut off from its primary (MASTERDOWN), a server
/// still loading its data (LOADING). A script meets these at its first write,
/// so nothing of it happened: a retry is safe.
pub fn refused_write(e: &Error) -> bool {
    const REFUSALS: [&str; 4] = ["READONLY", "NOREPLICAS", "MASTERDOWN", "LOADING"];
    let details = e.details().trim_start_matches("ERR ").trim_start();
    REFUSALS.iter().any(|r| details.starts_with(r))
}

/// Redis Cluster refused a command whose keys span slots, before running it:
/// nothing happened. Every script keeps its keys in one slot, so this is a bug
/// (or keys moved mid-resharding), answered as unavailable.
pub fn cross_slot(e: &Error) -> bool {
    e.details().trim_start_matches("ERR ").trim_start().starts_with("CROSSSLOT")
}

/// Which server a client talks to and what that server is.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Role {
    /// `host:port` of the server (after a failover, the promoted one).
    pub server: String,
    /// "master" (the primary), "slave" (a replica) or "sentinel".
    pub role: String,
    /// Replicas connected to it, when it is a primary.
    pub replicas: u64,
}

/// Asks the server `client` is connected to what it is (`ROLE`).
pub async fn role(client: &Client) -> Result<Role, Error> {
    let server = client.active_connections().first().map(|s| format!("{}:{}", s.host, s.port)).unwrap_or_default();
    let answer: Vec<Value> = client
        .custom(
            fred::types::CustomCommand::new_static("ROLE", fred::types::ClusterHash::Random, false),
            Vec::<Value>::new(),
        )
        .await?;
    let role = answer.first().and_then(Value::as_string).unwrap_or_default();
    let replicas = match (role.as_str(), answer.get(2)) {
        ("master", Some(Value::Array(list))) => list.len() as u64,
        _ => 0,
    };
    Ok(Role { server, role, replicas })
}

/// fred's own report that a command was written, its connection closed before
/// the answer came, and it may not be written again (`max_command_attempts` is
/// 1): it may or may not have run. fred gives it no kind of its own.
pub fn lost_in_flight(e: &Error) -> bool {
    e.kind() == &ErrorKind::Unknown && e.details().starts_with("Too many failed write attempts")
}

/// A script failed once it ran (a Lua error, or a command inside it failed):
/// whatever it wrote before the error stands, so a write's outcome is unknown.
/// A refusal before anything was written (`refused_write`) is not one.
pub fn script_failed(e: &Error) -> bool {
    e.details().contains("user_script") && !refused_write(e)
}

/// fred could not hand the command to any connection (none up, or Sentinel did
/// not answer): it was never written.
pub fn not_sent(e: &Error) -> bool {
    e.kind() == &ErrorKind::Sentinel
        || (e.kind() == &ErrorKind::Unknown && e.details().starts_with("Failed to route command"))
}

/// A Redis failure as the domain sees it, for a read (or a call Redis
/// refused): nothing changed, so never `OutcomeUnknown`. Logged here.
impl From<Error> for crate::error::Error {
    fn from(e: Error) -> Self {
        use crate::error::Error as Domain;
        if cross_slot(&e) {
            tracing::error!(error = %e, "Redis Cluster refused keys of several slots in one command");
            return Domain::Unavailable(e.to_string());
        }
        if refused_write(&e) || not_sent(&e) || lost_in_flight(&e) {
            tracing::warn!(error = %e, "redis refused the call (failover, loading, too few replicas)");
            return Domain::Unavailable(e.to_string());
        }
        match e.kind() {
            ErrorKind::IO
            | ErrorKind::Timeout
            | ErrorKind::Canceled
            | ErrorKind::Backpressure
            | ErrorKind::Cluster
            | ErrorKind::Routing => {
                tracing::warn!(error = %e, "redis unavailable");
                Domain::Unavailable(e.to_string())
            }
            _ => {
                tracing::error!(error = ?e, "redis error");
                Domain::Bug(e.to_string())
            }
        }
    }
}

/// A failed write as the domain sees it: never sent is `Abandoned` or
/// `Unavailable` (it did not happen); sent, with the connection lost or no
/// answer in time, or a script that failed once it ran (a bug, counted), is
/// `OutcomeUnknown`; any other error Redis answered maps as a read's.
impl From<WriteError> for crate::error::Error {
    fn from(e: WriteError) -> Self {
        use crate::error::Error as Domain;
        match e {
            WriteError::Abandoned => Domain::Abandoned,
            WriteError::NotSent(e) => {
                tracing::warn!(error = %e, "write not sent");
                Domain::Unavailable(e.to_string())
            }
            WriteError::Failed(e)
                if lost_in_flight(&e)
                    || matches!(e.kind(), ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled) =>
            {
                tracing::warn!(error = %e, "write outcome unknown");
                Domain::OutcomeUnknown(e.to_string())
            }
            WriteError::Failed(e) if script_failed(&e) => {
                tracing::error!(error = %e, "a write script failed after it started (a bug): what it wrote stands");
                crate::metrics::METRICS.script_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Domain::OutcomeUnknown(e.to_string())
            }
            WriteError::Failed(e) => e.into(),
        }
    }
}
