//! A listener that serves only `GET /metrics`: for processes without the API,
//! such as `flashsale sink`, so Prometheus can scrape them too.

use std::convert::Infallible;

use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::respond::{json, text, Reply};
use crate::{metrics::METRICS, shutdown::Shutdown};

async fn answer(req: Request<Incoming>) -> Result<Reply, Infallible> {
    Ok(match req.uri().path() {
        "/metrics" => text(METRICS.render(), "text/plain; version=0.0.4"),
        "/healthz" => json(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
        _ => json(StatusCode::NOT_FOUND, &serde_json::json!({ "error": "not_found", "message": "only /metrics here" })),
    })
}

pub async fn serve_metrics(listener: TcpListener, mut shutdown: Shutdown) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = shutdown.wait() => break,
        };
        tokio::spawn(async move {
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(answer)).await;
        });
    }
}
