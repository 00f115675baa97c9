//! Whether a request's caller still waits for its write: the one decision
//! between sending a state change to Redis and giving up on it.
//!
//! A write must not take effect after its caller was told it failed. So each
//! request carries a [`Caller`] whose state moves once, from waiting to either
//! *sent* (the write is on its way to Redis and the caller waits for its real
//! answer) or *gone* (the caller was answered `timeout`, or hung up: the write
//! is never sent). One compare-and-swap settles it, so the code that sends and
//! the router that times the request out cannot both win.
//!
//! The router puts each request's `Caller` in scope around its handler (a
//! task-local, so handlers need not pass it along); the code that sends a
//! write claims it there: the batching task for batched scripts, [`claim`]
//! for the others. Outside a request (the CLI) there is none and writes go.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
};

use fred::error::Error;

const WAITING: u8 = 0;
const SENT: u8 = 1;
const GONE: u8 = 2;

/// One request's caller, as the senders of its writes see it.
#[derive(Debug, Default)]
pub struct Caller(AtomicU8);

impl Caller {
    pub fn new() -> Arc<Caller> {
        Arc::default()
    }

    /// The sender's side: true when the write may go (the caller waits, and
    /// now keeps waiting for the answer); false when the caller is gone.
    pub fn send(&self) -> bool {
        match self.0.compare_exchange(WAITING, SENT, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(state) => state == SENT,
        }
    }

    /// The caller's side: true when it stopped waiting before anything was
    /// sent (nothing will be); false when a write is already on its way, so
    /// the caller must wait for its answer.
    pub fn give_up(&self) -> bool {
        match self.0.compare_exchange(WAITING, GONE, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(state) => state == GONE,
        }
    }

    /// The caller gave up: nothing was or will be sent for it.
    pub fn is_gone(&self) -> bool {
        self.0.load(Ordering::Acquire) == GONE
    }
}

tokio::task_local! {
    static CURRENT: Arc<Caller>;
}

/// Runs `work` (a request's handler) with `caller` in scope.
pub async fn scope<F: Future>(caller: Arc<Caller>, work: F) -> F::Output {
    CURRENT.scope(caller, work).await
}

/// The caller in scope, if any.
pub fn current() -> Option<Arc<Caller>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Claims the current request's write for sending, right before it is sent:
/// `Abandoned` when its caller is gone. Without a request in scope, it goes.
pub fn claim() -> Result<(), WriteError> {
    match current() {
        Some(caller) if !caller.send() => Err(WriteError::Abandoned),
        _ => Ok(()),
    }
}

/// Why a write has no outcome to tell. What each means for the caller is
/// mapped to replies in `http::error`.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WriteError {
    /// Never sent: its caller stopped waiting first. It did not happen.
    #[error("not sent: the caller stopped waiting")]
    Abandoned,
    /// Never sent: nothing could carry it (Redis not connected, the batching
    /// task stopped). It did not happen.
    #[error("not sent: {0}")]
    NotSent(Error),
    /// Handed to Redis, and the call failed: a connection error or a timeout
    /// leaves its outcome unknown (see `http::error` for each kind).
    #[error(transparent)]
    Failed(#[from] Error),
}
