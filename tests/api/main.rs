//! Integration tests: one binary, real servers, real HTTP and CLI.

mod batching;
mod chaos;
mod cli;
mod compose;
mod compose_files;
mod compose_grafana;
mod coupon;
mod dashboard_browser;
mod forget;
mod helpers;
mod issue;
mod limits;
mod metrics;
mod openapi;
mod ops;
mod orders;
mod own_broker;
mod own_redis;
mod pipe;
mod raw_http;
mod reconcile;
mod recovery;
mod relay_claim;
mod requests;
mod webdriver;
