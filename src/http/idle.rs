//! Closes connections that complete no request for a while: clients that
//! never finish their headers (slowloris) and idle keep-alives. One timer per
//! connection per period, where hyper's header-read timeout arms one per request.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

/// One connection's requests, as its watchdog sees them.
#[derive(Default)]
pub struct Watch {
    /// Requests whose headers arrived.
    started: AtomicU64,
    /// Requests whose handlers are still at work.
    busy: AtomicU64,
}

/// Held while a request's handler works: the connection is not idle then.
pub struct Busy(Arc<Watch>);

impl Watch {
    /// A request's headers arrived.
    pub fn arrived(&self) {
        self.started.fetch_add(1, Relaxed);
    }

    /// The request that arrived last is still at work (its answer needs an
    /// await) until the `Busy` is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Relaxed);
        Busy(self.clone())
    }

    /// Resolves once a whole `period` passed with no request arriving and
    /// none at work: a connection sending nothing, or headers too slowly, is
    /// closed after one to two periods.
    pub async fn idle(&self, period: Duration) {
        let mut seen = self.started.load(Relaxed);
        loop {
            tokio::time::sleep(period).await;
            let now = self.started.load(Relaxed);
            if now == seen && self.busy.load(Relaxed) == 0 {
                return;
            }
            seen = now;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Relaxed);
    }
}
