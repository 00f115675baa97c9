//! One shutdown signal fanned out to every task: the HTTP server, the relay
//! and the sink each hold a `Shutdown` and stop when the `Trigger` fires (or
//! is dropped).

use tokio::sync::watch;

pub struct Trigger(watch::Sender<bool>);

#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown has started.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_started(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Sleeps `d`, or less if shutdown starts; true when shutdown started.
    pub async fn sleep(&mut self, d: std::time::Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => self.is_started(),
            () = self.wait() => true,
        }
    }
}
