//! Waiting rooms: a sale's or campaign's queue in Redis (`lua/queue_*.lua`), each process's
//! view of it (at most 250 ms old, so a poll costs no Redis call of its own),
//! the liveness of polled tickets (sent once a second), and the admitter every
//! instance runs. The protocol: docs/protocols.md, "Waiting room".

pub mod draw;
pub mod pow;
mod seen;
pub mod tickets;
mod views;

use std::{
    sync::{atomic::Ordering::Relaxed, Arc},
    time::{Duration, Instant},
};

use fred::{clients::Pool, prelude::*};

use crate::{
    batch::Batcher,
    caller::WriteError,
    keys::{Keys, Room},
    metrics::METRICS,
    redis::connected,
    scripts::{AdmitOutcome, JoinOutcome, QueueSpec, QueueState, Scripts},
    shutdown::Shutdown,
};

/// How old a process's view of a room may be.
pub const FRESH: Duration = Duration::from_millis(250);
/// How often each instance asks every room to admit.
const ADMIT_EVERY: Duration = Duration::from_millis(100);
/// Most places one admitter call walks.
const ADMIT_MOST: u32 = 2_000;
/// How often polled tickets' liveness is sent.
const SEEN_EVERY: Duration = Duration::from_secs(1);
/// A join's mark at and above this: admitted (lua/lib/queue.lua).
pub const ADMITTED: u64 = 1 << 31;

#[derive(Clone)]
pub struct Queues {
    redis: Pool,
    keys: Keys,
    scripts: Arc<Scripts>,
    views: Arc<views::Views>,
    /// Joins polled since the last send, per room.
    seen: Arc<seen::Seen>,
    /// One view refresh at a time per process.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// Concurrent joins of one room share a script call (see `batch`).
    joins: JoinBatcher,
}

/// room -> (user, the solved challenge's nonce and expiry) -> outcome.
type JoinBatcher = Batcher<Room, (u64, Option<(String, u64)>), JoinOutcome>;

/// Joins carried by one `queue_join.lua` call at most.
const MAX_JOIN_BATCH: usize = 256;

impl Queues {
    pub fn new(redis: Pool, keys: Keys, scripts: Arc<Scripts>) -> Queues {
        let joins = {
            let (redis, keys, scripts) = (redis.clone(), keys.clone(), scripts.clone());
            Batcher::spawn(
                redis.size(),
                MAX_JOIN_BATCH,
                &METRICS.join_batch_size,
                move |room: Room, requests: Vec<(u64, Option<(String, u64)>)>| {
                    let client = connected(&redis).cloned();
                    let (keys, scripts) = (keys.queue(room), scripts.clone());
                    async move { Ok(scripts.queue.join(&client?, &keys, &requests).await?) }
                },
            )
        };
        Queues {
            joins,
            redis,
            keys,
            scripts,
            views: Arc::new(views::Views::new()),
            seen: Arc::new(seen::Seen::new()),
            refresh: Default::default(),
        }
    }

    /// Gives a sale or campaign a fresh waiting room opening at `epoch` (ms),
    /// or none (CLI).
    pub async fn setup(&self, room: Room, spec: Option<&QueueSpec>, epoch: u64) -> Result<(), Error> {
        let client = self.redis.next();
        let draw_key = format!("{:016x}{:016x}", rand_u64(), rand_u64());
        let keys = self.keys.queue(room);
        if spec.is_some() {
            let _: () = client.sadd(self.keys.queues(), room.member()).await?;
        }
        self.scripts.queue.setup(client, &keys, spec, &draw_key, epoch).await?;
        if spec.is_none() {
            let _: () = client.srem(self.keys.queues(), room.member()).await?;
        }
        Ok(())
    }

    /// `pow`: the solved challenge shown, checked (see `pow`).
    pub async fn join(&self, room: Room, user: u64, pow: Option<&pow::Solved>) -> Result<JoinOutcome, WriteError> {
        // The process's view of the room stays: the join's answer carries what
        // its status needs fresher (see `QueueService::status`).
        self.joins.call(room, (user, pow.map(|s| (s.nonce.clone(), s.expires_ms)))).await
    }

    /// The room's state as this process saw it at most `FRESH` ago; None: no room.
    pub async fn state(&self, room: Room) -> Result<Option<Arc<QueueState>>, Error> {
        if let Some(view) = self.views.get(room) {
            return Ok(view);
        }
        // Boxed: a poll's future stays small (moving it costs its size) when
        // the view is fresh, as it is for all but a few polls a second.
        Box::pin(self.refresh_view(room)).await
    }

    /// `state` when this process's view is fresh; None: call `state`.
    pub fn state_now(&self, room: Room) -> Option<Option<Arc<QueueState>>> {
        self.views.get(room)
    }

    async fn refresh_view(&self, room: Room) -> Result<Option<Arc<QueueState>>, Error> {
        let _one = self.refresh.lock().await;
        if let Some(view) = self.views.get(room) {
            return Ok(view);
        }
        let state = self.scripts.queue.state(self.redis.next(), &self.keys.queue(room)).await?.map(Arc::new);
        self.views.put(room, state.clone());
        Ok(state)
    }

    /// Notes that `join` was polled: sent with the others within `SEEN_EVERY`.
    pub fn saw(&self, room: Room, join: u64) {
        self.seen.note(room, join);
    }

    /// The mark of `user`'s join whose place was served (admitted until, or
    /// skipped); None: the join is not theirs (their line was lost).
    pub async fn fate(&self, room: Room, join: u64, user: u64) -> Result<Option<u64>, Error> {
        self.scripts.queue.fate(self.redis.next(), &self.keys.queue(room), join, user).await
    }

    /// Admits in every room a few times a second and sends liveness once a
    /// second, until shutdown. Every instance runs it; the rate is kept in Redis.
    pub async fn run_admitter(self, mut shutdown: Shutdown) {
        let mut last_seen = Instant::now();
        while !shutdown.sleep(ADMIT_EVERY).await {
            if let Err(e) = self.admit_all().await {
                tracing::warn!(error = %e, "waiting rooms: admitting failed; trying again");
            }
            if last_seen.elapsed() >= SEEN_EVERY {
                last_seen = Instant::now();
                if let Err(e) = self.send_seen().await {
                    tracing::warn!(error = %e, "waiting rooms: liveness not sent; polls since are lost");
                }
            }
        }
    }

    async fn admit_all(&self) -> Result<(), Error> {
        let client = self.redis.next();
        let members: Vec<String> = client.smembers(self.keys.queues()).await?;
        let mut waiting = 0;
        for member in members {
            let Some(room) = Room::from_member(&member) else {
                let _: () = client.srem(self.keys.queues(), member).await?;
                continue;
            };
            match self.scripts.queue.admit(client, &self.keys.queue(room), ADMIT_MOST).await? {
                AdmitOutcome::NoQueue => {
                    let _: () = client.srem(self.keys.queues(), member).await?;
                }
                AdmitOutcome::Admitted { admitted, skipped, served, joins, .. } => {
                    waiting += joins.saturating_sub(served);
                    METRICS.queue_admitted.fetch_add(admitted, Relaxed);
                    METRICS.queue_skipped.fetch_add(skipped, Relaxed);
                    if admitted + skipped > 0 {
                        self.views.forget(room);
                    }
                }
                AdmitOutcome::NotStarted => {}
            }
        }
        METRICS.queue_waiting.store(waiting as i64, Relaxed);
        Ok(())
    }

    async fn send_seen(&self) -> Result<(), Error> {
        let client = self.redis.next();
        for (room, joins) in self.seen.take() {
            for chunk in joins.chunks(1_000) {
                self.scripts.queue.seen(client, &self.keys.queue(room), chunk).await?;
            }
        }
        Ok(())
    }
}

/// A random u64 from the OS-seeded hasher (the draw key needs no more).
fn rand_u64() -> u64 {
    use std::hash::BuildHasher;
    std::hash::RandomState::new().hash_one(Instant::now())
}
