//! The pipe's thread: the relay (outbox -> Kafka) and, when enabled, the sink
//! (Kafka -> MySQL) run on a runtime and OS thread of their own, with their
//! own Redis, broker and MySQL connections.
//!
//! Their work comes in long stretches — decoding a thousand outbox entries,
//! encoding a produce request, parsing a 4 MiB fetch — and on the HTTP
//! workers each stretch would hold back every request queued behind it. On
//! their own thread the kernel interleaves them with the HTTP workers instead.

use std::{sync::Arc, thread::JoinHandle};

use tokio::sync::oneshot;

use crate::{
    config::ServeConfig,
    kafka,
    keys::Keys,
    placement::Placement,
    redis,
    relay::{Outbox, Relay},
    scripts::Scripts,
    shutdown::Shutdown,
    sink::{Sink, SinkHealth},
};

/// The running pipe. Its thread ends once `shutdown` has started and both
/// tasks let go (`join`); dropping a `Pipe` before that — `serve`'s future
/// aborted — aborts both tasks where they are, as the HTTP side's are.
pub struct Pipe {
    thread: Option<JoinHandle<()>>,
    /// Dropped: the thread aborts its tasks.
    _abort: oneshot::Sender<()>,
}

impl Pipe {
    /// Waits for the thread to end (after shutdown started).
    pub async fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Starts the pipe's thread and waits until its connections are up: an
/// unreachable server fails start-up, as on the HTTP side.
/// `sink_health` is `Some` exactly when `config.run_sink` is on.
pub async fn spawn(
    config: ServeConfig,
    scripts: Arc<Scripts>,
    keys: Keys,
    placement: Placement,
    sink_health: Option<Arc<SinkHealth>>,
    shutdown: Shutdown,
) -> anyhow::Result<Pipe> {
    let (ready, started) = oneshot::channel();
    let (abort, mut aborted) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name("flashsale-pipe".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = ready.send(Err(anyhow::Error::from(e)));
                return;
            }
        };
        runtime.block_on(async move {
            let (mut tasks, mysql) = match start(&config, scripts, keys, &placement, sink_health, &shutdown).await {
                Ok(started) => {
                    let _ = ready.send(Ok(()));
                    started
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            tokio::select! {
                () = async { while tasks.join_next().await.is_some() {} } => {}
                _ = &mut aborted => tasks.abort_all(),
            }
            if let Some(mysql) = mysql {
                let _ = mysql.disconnect().await;
            }
        });
    })?;
    match started.await {
        Ok(Ok(())) => Ok(Pipe { thread: Some(thread), _abort: abort }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(anyhow::anyhow!("the pipe's thread ended during start-up")),
    }
}

async fn start(
    config: &ServeConfig,
    scripts: Arc<Scripts>,
    keys: Keys,
    placement: &Placement,
    sink_health: Option<Arc<SinkHealth>>,
    shutdown: &Shutdown,
) -> anyhow::Result<(tokio::task::JoinSet<()>, Option<mysql_async::Pool>)> {
    let mut tasks = tokio::task::JoinSet::new();
    let producer = kafka::connect(&config.kafka).await?;
    let relay = Relay {
        outbox: Outbox::new(
            redis::client(&config.redis).await?,
            placement.stream_reads(),
            redis::pool(&config.redis).await?,
            scripts,
            keys,
            config.relay.consumer(config.http.listen),
        ),
        topics: Arc::new(kafka::Topics::open(&producer, &config.kafka).await?),
        batch: config.relay.relay_batch,
        claim_idle_ms: config.relay.relay_claim_idle_ms,
    };
    tasks.spawn(relay.run(shutdown.clone()));
    if let Some(health) = sink_health {
        // Its own client, hence its own broker connections: a broker answers
        // one connection's requests in order, so the sink's long-polling
        // fetches would hold the relay's produce requests back behind them.
        let consumer = kafka::connect(&config.kafka).await?;
        let partitions = kafka::Topics::open(&consumer, &config.kafka).await?.all().cloned().collect();
        let sink = Sink::new(&config.mysql, partitions, config.sink.clone(), health)?;
        let mysql = sink.mysql.clone();
        tasks.spawn(sink.run(shutdown.clone()));
        Ok((tasks, Some(mysql)))
    } else {
        Ok((tasks, None))
    }
}
