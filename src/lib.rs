//! flashsale: first-come coupon issuance that survives a flash sale.
//!
//! # Layout
//! - [`http`]: the HTTP API (hyper): accept loop, router, one file per endpoint.
//! - [`domain`]: what the API asks of coupons, orders and wallets; its own result and error types.
//! - [`scripts`]: typed wrappers of the Lua scripts in `lua/` — the hot path.
//!   One script checks, decrements, dedups and appends to the outbox stream.
//! - [`coupons`]: campaign state in Redis, through the scripts; [`batch`]: concurrent
//!   requests for one campaign or sale share one script call.
//! - [`buckets`]: hot-item buckets, a campaign's stock and holders split over
//!   several Redis slots (`coupon create --buckets N`).
//! - [`placement`]: the Redis topology (one node, Sentinel, Cluster), detected once: every
//!   choice that differs by it, and the bucket router, handed down from there.
//! - [`sales`]: sales and orders through the scripts; on Redis Cluster an order
//!   redeeming a coupon holds it in the coupon's slot first (`sales::holds`).
//! - [`caller`]: whether a request's caller still waits: a write is sent only
//!   while it does, and once sent its real answer is awaited.
//! - [`keys`]: the Redis key layout.
//! - [`events`]: the events relay and sink share.
//! - [`relay`]: outbox streams -> Kafka, acknowledged only after the broker has them.
//! - [`sink`]: Kafka -> MySQL, rows and offsets in one transaction; a MySQL named
//!   lock per partition fences it from `sink reset-offset`; stalls are reported.
//! - [`recovery`]: the registry of overdue-step finishers and chores, and the one sweeper that runs them.
//! - [`retirement`]: ended campaigns and sales leave the relay's and the sweeper's loops once MySQL has
//!   them, and Redis FLASHSALE_RETAIN_AFTER_END after their end; [`retired_records`]: the API's answers
//!   for them from MySQL then.
//! - [`pipe_thread`]: the relay and sink's own thread and connections, apart from the HTTP workers.
//! - [`db`]: MySQL pool, migrations (`sql/`), the CLI's queries.
//! - [`kafka`], [`redis`]: connecting, with explicit timeouts.
//! - [`durability`]: what an answer waits for (replicas' `WAIT`, the AOF's fsync), so a
//!   failover cannot take back what a client was told.
//! - [`app`]: start-up; [`cli`]: the `flashsale` command line; [`config`]: every setting.
//! - [`wallet`]: wallets (charges, debits) and paying orders from them, both
//!   or neither across the sale's and the wallet's Redis slots, with a recovery pass.
//! - [`mine`]: what one user holds (coupons, orders), MySQL merged with live Redis state.
//! - [`signature`]: the payment gateway's `Flashsale-Signature` over method, path and body;
//!   [`gateway`]: a gateway `payment_key` pays one order or charge, once.
//! - [`panics`]: the hook that counts and logs every panic.
//! - [`probes`]: readiness; [`shutdown`]: one signal for every task; [`time`]: clocks and formats;
//!   [`shard`]: a number per thread, for state sharded by thread.

pub mod app;
pub mod batch;
pub mod buckets;
pub mod caller;
pub mod cidr;
pub mod cli;
pub mod config;
pub mod coupons;
pub mod db;
pub mod domain;
pub mod durability;
pub mod error;
pub mod events;
pub mod gateway;
pub mod http;
pub mod kafka;
pub mod keys;
pub mod metrics;
pub mod mine;
pub mod order;
pub mod panics;
pub mod pipe_thread;
pub mod placement;
pub mod probes;
pub mod queue;
pub mod reconcile;
pub mod recovery;
pub mod redis;
pub mod relay;
pub mod retired_records;
pub mod retirement;
pub mod sales;
pub mod scripts;
pub mod shard;
pub mod shutdown;
pub mod signature;
pub mod sink;
pub mod soldout;
pub mod time;
pub mod wallet;
