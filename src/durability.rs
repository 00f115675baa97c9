//! How far a write must have gone before anyone is told it happened: the
//! acknowledgement mode (`FLASHSALE_ACK_REPLICAS`, `FLASHSALE_ACK_FSYNC`).
//!
//! By default a script's answer is sent as soon as the primary ran it: a
//! failover to an asynchronously replicated replica can take back the last
//! acknowledged writes. With `replicas = N > 0` every writing script call is
//! followed, on the same connection and in the same pipeline, by `WAIT N T`:
//! the answer goes out only once N replicas hold everything that connection
//! wrote. With `fsync` it is `WAITAOF 1 N T` instead (the primary's AOF, and
//! N replicas' AOFs, fsynced), or, on a server without WAITAOF (Redis < 7.2),
//! nothing extra, because start-up refuses unless `appendfsync always` makes
//! Redis fsync before it replies.
//!
//! Group commit makes this one wait per script call, not per request: a
//! batched call carries many requests. The script and its wait are written in
//! one pipeline so they cannot land on different connections (a wait sent
//! alone after a reconnect would measure a fresh connection that wrote
//! nothing, and say yes at once).
//!
//! A wait that comes back short is `ErrorKind::Timeout`: the write happened
//! on the primary and may or may not survive a failover, which the HTTP layer
//! answers as 503 `outcome_unknown`, never as a 2xx.
//!
//! The relay uses the same mode: it produces nothing to Kafka that a
//! failover could take back (see `relay`).

use fred::{
    prelude::*,
    types::{scripts::Script, ClusterHash, CustomCommand},
};

/// The channel of the no-op `PUBLISH` that precedes each wait (no one listens).
const ACK_CHANNEL: &str = "flashsale:ack";

/// The acknowledgement mode of this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    /// Replicas that must hold a write before it is acknowledged.
    pub replicas: u32,
    /// How long a wait may take (ms) before the outcome is unknown.
    pub timeout_ms: u64,
    pub fsync: Fsync,
    /// What precedes each wait (chosen by `placement`).
    pub mark: WaitMark,
}

/// The write that precedes a wait, so the wait covers every write the
/// server holds so far (see [`Ack::queue_wait`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WaitMark {
    /// A keyless `PUBLISH`: replicated wherever it is not sent on a bus.
    #[default]
    Publish,
    /// A write to a short-lived key in the call's slot (Redis Cluster,
    /// where `PUBLISH` travels the cluster bus, not the replication stream).
    SlotKey,
}

/// Whether an acknowledged write must be on disk, and how that is known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fsync {
    /// Acknowledged once in memory (the AOF is fsynced as configured).
    #[default]
    Off,
    /// `WAITAOF` after each write (Redis >= 7.2, Valkey).
    WaitAof,
    /// The server fsyncs before replying (`appendfsync always`): nothing to wait for.
    ServerAlways,
}

impl Ack {
    /// The mode asked for; `fsync` still needs [`Ack::check`] against the server.
    pub fn new(replicas: u32, timeout_ms: u64, fsync: bool) -> Self {
        Ack {
            replicas,
            timeout_ms: timeout_ms.max(1),
            fsync: if fsync { Fsync::WaitAof } else { Fsync::Off },
            mark: WaitMark::Publish,
        }
    }

    /// True when answers wait for replicas or disks.
    pub fn waits(&self) -> bool {
        self.replicas > 0 || self.fsync == Fsync::WaitAof
    }

    /// Settles the mode against the server: `fsync` becomes `WaitAof` where
    /// the server has WAITAOF and keeps an AOF, `ServerAlways` where it has
    /// none but fsyncs every write; anything else refuses to start. Warns when
    /// fewer replicas are connected than answers wait for.
    pub async fn check(mut self, client: &Client) -> anyhow::Result<Self> {
        if self.fsync != Fsync::Off {
            let appendonly = config_get(client, "appendonly").await?;
            if appendonly != "yes" {
                anyhow::bail!(
                    "FLASHSALE_ACK_FSYNC=true needs the AOF on the Redis server (appendonly yes; it is {appendonly:?})"
                );
            }
            let probe: Result<Value, Error> =
                client.custom(CustomCommand::new_static("WAITAOF", ClusterHash::Random, false), vec![0, 0, 0]).await;
            match probe {
                Ok(_) => self.fsync = Fsync::WaitAof,
                Err(e) if e.details().to_ascii_lowercase().contains("unknown command") => {
                    let every = config_get(client, "appendfsync").await?;
                    if every != "always" {
                        anyhow::bail!(
                            "FLASHSALE_ACK_FSYNC=true: this Redis has no WAITAOF (it needs Redis >= 7.2 or Valkey) \
                             and fsyncs its AOF {every:?}, not \"always\": set appendfsync always or upgrade"
                        );
                    }
                    self.fsync = Fsync::ServerAlways;
                }
                Err(e) => anyhow::bail!("FLASHSALE_ACK_FSYNC=true: WAITAOF failed: {e}"),
            }
        }
        if self.replicas > 0 {
            let connected = connected_replicas(client).await.unwrap_or(0);
            if connected < self.replicas as u64 {
                tracing::warn!(
                    connected,
                    wanted = self.replicas,
                    "FLASHSALE_ACK_REPLICAS asks for more replicas than the primary has: writes answer 503 \
                     outcome_unknown until they connect"
                );
            }
        }
        Ok(self)
    }

    /// Runs `script` on `client` and, when this mode waits, the wait right
    /// behind it in one pipeline. Reloads the script once on NOSCRIPT.
    pub async fn evalsha<R: FromValue>(
        &self,
        script: &Script,
        client: &Client,
        keys: Vec<&str>,
        args: Vec<String>,
    ) -> Result<R, Error> {
        if !self.waits() {
            return script.evalsha_with_reload(client, keys, args).await;
        }
        let slot = keys.first().map(|k| fred::util::redis_keyslot(k.as_bytes()));
        // A pipeline has no EVALSHA of its own: the command by hand.
        let hash = slot.map(ClusterHash::Custom).unwrap_or(ClusterHash::Random);
        let evalsha = CustomCommand::new_static("EVALSHA", hash, false);
        let mut call: Vec<Value> = Vec::with_capacity(2 + keys.len() + args.len());
        call.push(Value::from(script.sha1().clone()));
        call.push(Value::Integer(keys.len() as i64));
        call.extend(keys.iter().map(|k| Value::from(*k)));
        call.extend(args.into_iter().map(Value::from));
        let mut reloaded = false;
        loop {
            let pipe = client.pipeline();
            let _: () = pipe.custom(evalsha.clone(), call.clone()).await?;
            self.queue_wait(&pipe, keys.first().copied()).await?;
            let mut results = pipe.try_all::<Value>().await.into_iter();
            let answer = results.next().unwrap_or_else(|| Err(Error::new(ErrorKind::Unknown, "an empty pipeline")));
            let _published = results.next();
            match answer {
                // Nothing ran: load it and go again, once.
                Err(e) if !reloaded && e.details().starts_with("NOSCRIPT") => {
                    script.load(client).await?;
                    reloaded = true;
                }
                Err(e) => return Err(e),
                Ok(answer) => {
                    // The script ran; whatever became of its wait, its fate
                    // in a failover is unknown unless the wait says yes.
                    let waited = match results.next() {
                        Some(Ok(waited)) => waited,
                        Some(Err(e)) => return Err(Error::new(ErrorKind::Timeout, format!("the wait failed: {e}"))),
                        None => return Err(Error::new(ErrorKind::Timeout, "the wait's answer was lost")),
                    };
                    self.acknowledged(waited)?;
                    return answer.convert();
                }
            }
        }
    }

    /// Queues on `pipe` what makes the wait cover every write the server
    /// holds so far, then the wait itself: two answers, the second one for
    /// [`Ack::acknowledged`].
    ///
    /// A connection's wait covers what that connection wrote, and a script
    /// that changed nothing (a 409 "already issued") wrote nothing, although
    /// the state it answered from may be another connection's write, still
    /// unreplicated. So a `PUBLISH` (replicated, keyless, cheap) goes first:
    /// it moves this connection's replication offset to the server's; with
    /// [`WaitMark::SlotKey`] a write to a short-lived key in `key`'s slot does.
    pub async fn queue_wait(&self, pipe: &fred::clients::Pipeline<Client>, key: Option<&str>) -> Result<(), Error> {
        let slot = key.map(|k| fred::util::redis_keyslot(k.as_bytes()));
        let hash = slot.map(ClusterHash::Custom).unwrap_or(ClusterHash::Random);
        match key.filter(|_| self.mark == WaitMark::SlotKey) {
            Some(key) => {
                let set = CustomCommand::new_static("SET", hash, false);
                let args = vec![Value::from(ack_key(key)), Value::from("1"), Value::from("PX"), Value::Integer(10_000)];
                let _: () = pipe.custom(set, args).await?;
            }
            None => {
                let publish = CustomCommand::new_static("PUBLISH", hash, false);
                let _: () = pipe.custom(publish, vec![Value::from(ACK_CHANNEL), Value::from("")]).await?;
            }
        }
        pipe.custom(self.wait_command(slot), self.wait_args()).await
    }

    /// `WAIT N T`, or `WAITAOF 1 N T`, sent to the node of `slot`; not marked
    /// blocking, so other commands keep pipelining behind it (Redis itself
    /// holds them until the wait ends).
    fn wait_command(&self, slot: Option<u16>) -> CustomCommand {
        let name = if self.fsync == Fsync::WaitAof { "WAITAOF" } else { "WAIT" };
        CustomCommand::new_static(name, slot.map(ClusterHash::Custom).unwrap_or(ClusterHash::Random), false)
    }

    fn wait_args(&self) -> Vec<Value> {
        let (replicas, timeout) = (Value::Integer(self.replicas as i64), Value::Integer(self.timeout_ms as i64));
        if self.fsync == Fsync::WaitAof {
            vec![Value::Integer(1), replicas, timeout]
        } else {
            vec![replicas, timeout]
        }
    }

    /// Ok when the wait's answer shows everything this mode asks for.
    pub fn acknowledged(&self, waited: Value) -> Result<(), Error> {
        let (local, replicas) = match &waited {
            Value::Integer(n) => (1, *n),
            Value::Array(parts) if parts.len() == 2 => (parts[0].as_i64().unwrap_or(0), parts[1].as_i64().unwrap_or(0)),
            other => return Err(Error::new(ErrorKind::Parse, format!("unexpected wait answer {other:?}"))),
        };
        if local >= 1 && replicas >= self.replicas as i64 {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "written on the primary, but within {} ms only {replicas} of {} replicas{} acknowledged it",
                    self.timeout_ms,
                    self.replicas,
                    if local >= 1 { "" } else { " and not its own AOF" }
                ),
            ))
        }
    }
}

/// A key in `key`'s slot for the [`WaitMark::SlotKey`] write: its hash
/// tag (`prefix{sale:1}` of `prefix{sale:1}:meta`), or the whole key as one
/// (every key the scripts are called with carries a tag).
fn ack_key(key: &str) -> String {
    match key.find('{').and_then(|open| Some((open, open + 1 + key[open + 1..].find('}')?))) {
        Some((open, close)) if close > open + 1 => format!("{}:ack", &key[..=close]),
        _ => format!("{{{key}}}:ack"),
    }
}

async fn config_get(client: &Client, name: &str) -> anyhow::Result<String> {
    let pairs: Vec<String> = client
        .custom(CustomCommand::new_static("CONFIG", ClusterHash::Random, false), vec!["GET", name])
        .await
        .map_err(|e| anyhow::anyhow!("FLASHSALE_ACK_FSYNC=true: cannot read the server's {name} (CONFIG GET): {e}"))?;
    Ok(pairs.get(1).cloned().unwrap_or_default())
}

/// Replicas connected to the primary `client` talks to (`INFO replication`).
pub async fn connected_replicas(client: &Client) -> Result<u64, Error> {
    let info: String = client.info(Some(fred::types::InfoKind::Replication)).await?;
    Ok(info.lines().find_map(|l| l.strip_prefix("connected_slaves:")).and_then(|n| n.trim().parse().ok()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::ack_key;
    use fred::util::redis_keyslot;

    #[test]
    fn the_ack_key_shares_the_slot_of_the_key_it_follows() {
        for key in ["fs:{sale:1}:meta", "{coupon:42}:users", "plain", "x{y"] {
            let ack = ack_key(key);
            assert_eq!(redis_keyslot(ack.as_bytes()), redis_keyslot(key.as_bytes()), "{key} -> {ack}");
        }
        assert_eq!(ack_key("fs:{sale:1}:meta"), "fs:{sale:1}:ack");
    }
}
