//! The accept loop: one task per connection, HTTP/1.1 keep-alive, a bound on
//! open connections (in all and per client IP), idle connections closed
//! (`idle`), and a graceful drain on shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use hyper::{server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{net::TcpListener, sync::Semaphore};

use super::{client_ip::limit_key, error::ApiError, idle::Watch, limit::ConnectionCap, router, surface::Surface};
use crate::app::App;

/// Connections past their client's cap told so at once, and for how long at most.
const REFUSALS: usize = 256;
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// How long in-flight requests get to finish once shutdown starts.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app`'s routes of `surface` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(listener: TcpListener, app: Arc<App>, surface: Surface, shutdown: impl Future<Output = ()>) {
    let mut http = http1::Builder::new();
    // No header-read timer per request: `idle` watches each connection.
    http.timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(app.http.max_header_bytes.max(8192))
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(app.http.max_connections));
    let per_ip = (app.http.max_connections_per_ip > 0).then(|| ConnectionCap::new(app.http.max_connections_per_ip));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let mut refuse = http1::Builder::new();
    refuse.timer(TokioTimer::new()).header_read_timeout(app.http.header_read_timeout()).keep_alive(false);
    let graceful = GracefulShutdown::new();
    let idle_after = app.http.header_read_timeout();
    tokio::pin!(shutdown);

    loop {
        // Wait for a free slot first: past the limit, connections queue in the
        // kernel's backlog instead of costing memory here.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("semaphore never closes"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let ip = peer.ip();
        // One client may not take every slot: past its cap, it is told so and closed.
        let place = match &per_ip {
            Some(cap) if !app.guard.trusted_proxy(ip) => match cap.enter(limit_key(ip)) {
                Some(place) => Some(place),
                None => {
                    // The refusal takes no slot of the service's: a few at a
                    // time, a second each; past that the connection is dropped.
                    drop(permit);
                    let Ok(refusal) = refusals.clone().try_acquire_owned() else { continue };
                    let busy = service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(
                            ApiError::TooManyRequests(Duration::from_secs(1)).into_reply(),
                        )
                    });
                    let conn = refuse.serve_connection(TokioIo::new(stream), busy);
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(REFUSAL_TIME, conn).await;
                        drop(refusal);
                    });
                    continue;
                }
            },
            _ => None,
        };
        let app = app.clone();
        let watch = Arc::new(Watch::default());
        let requests = watch.clone();
        let service = service_fn(move |req| router::route(app.clone(), surface, ip, req, &requests));
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            tokio::select! {
                _ = conn => {}
                () = watch.idle(idle_after) => {}
            }
            drop((permit, place));
        });
    }

    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => tracing::warn!("connections still open after the drain period"),
    }
}
