//! The HTTP API: accept loop, routing, one file per endpoint, and the single
//! mapping from errors to status codes (`error.rs`). Handlers call the typed
//! stores; they never build Redis commands, Kafka records or SQL themselves.

mod auth;
mod body;
mod client_ip;
mod coupon;
mod dashboard;
mod decimal;
mod error;
mod guard;
mod health;
mod idle;
mod issue;
mod limit;
mod metrics_server;
mod mine;
mod order;
mod order_view;
mod pay;
mod query;
mod queue;
mod rankings;
mod reserve;
mod respond;
mod router;
mod sale;
mod server;
mod surface;
mod wait;
mod wallet;

pub use guard::Guard;
pub use metrics_server::{serve_metrics, Bounds as MetricsBounds};
pub use router::longest_request;
pub use server::serve;
pub use surface::Surface;
