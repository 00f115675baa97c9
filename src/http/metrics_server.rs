//! A listener that serves only `GET /metrics` (and `/healthz`, `/readyz`):
//! for processes without the API, such as `flashsale sink`, so Prometheus
//! can scrape them and an orchestrator can see a stalled sink. Bounded as
//! `serve` is: a connection cap, and connections idle for the header-read
//! timeout closed (`idle`).

use std::{convert::Infallible, sync::Arc, time::Duration};

use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::Semaphore};

use super::{
    idle::Watch,
    respond::{json, text, Reply},
};
use crate::{shutdown::Shutdown, sink::SinkHealth};

/// The listener's bounds: FLASHSALE_MAX_CONNECTIONS and FLASHSALE_HEADER_READ_TIMEOUT_MS, as `serve`'s.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

async fn answer(req: Request<Incoming>, sink: Arc<SinkHealth>) -> Result<Reply, Infallible> {
    Ok(match req.uri().path() {
        "/metrics" => text(crate::metrics::render(), "text/plain; version=0.0.4"),
        "/healthz" => json(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
        "/readyz" => {
            let status = if sink.is_stalled() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
            json(status, &serde_json::json!({ "sink": sink.state() }))
        }
        _ => json(StatusCode::NOT_FOUND, &serde_json::json!({ "error": "not_found", "message": "only /metrics here" })),
    })
}

/// Serves until `shutdown`; `/readyz` answers 503 while `sink` is stalled.
pub async fn serve_metrics(listener: TcpListener, sink: Arc<SinkHealth>, bounds: Bounds, mut shutdown: Shutdown) {
    let slots = Arc::new(Semaphore::new(bounds.max_connections.max(1)));
    loop {
        // Past the cap, connections wait in the kernel's backlog.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("semaphore never closes"),
            () = shutdown.wait() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        let (sink, watch) = (sink.clone(), Arc::new(Watch::default()));
        let requests = watch.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                requests.arrived();
                answer(req, sink.clone())
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                () = watch.idle(bounds.header_read_timeout) => {}
            }
            drop(permit);
        });
    }
}
