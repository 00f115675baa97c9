//! A listener that serves only `GET /metrics` (and `/healthz`, `/readyz`):
//! for processes without the API, such as `flashsale sink`, so Prometheus
//! can scrape them and an orchestrator can see a stalled sink.

use std::{convert::Infallible, sync::Arc};

use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::respond::{json, text, Reply};
use crate::{shutdown::Shutdown, sink::SinkHealth};

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
pub async fn serve_metrics(listener: TcpListener, sink: Arc<SinkHealth>, mut shutdown: Shutdown) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = shutdown.wait() => break,
        };
        let sink = sink.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, sink.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
