//! Settings: every flag of every subcommand that has an environment fallback.
//!
//! This is the only module that reads environment variables (through clap's
//! `env` attribute): each setting is a flag named `--<name>` with the fallback
//! `FLASHSALE_<NAME>`, documented by `flashsale <subcommand> --help`.
//! Settings are grouped by the server they describe so a subcommand flattens
//! only the groups it needs. Each default is written once, in its clap attribute.

use std::{fmt, net::SocketAddr, time::Duration};

use clap::{ArgAction, Args, ValueEnum};

/// A settings group with every value at its default: its clap attributes parsed with no
/// flags and no environment. `Default` impls and the tests build settings from this, so
/// a default is written only in its `#[arg]`.
pub fn defaults<T: Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None));
    let matches =
        cmd.try_get_matches_from(["defaults"]).expect("every setting of the group has a default or is optional");
    T::from_arg_matches(&matches).expect("the defaults parse")
}

/// Settings every subcommand has.
#[derive(Args, Clone, Debug)]
pub struct GlobalSettings {
    /// What to log, to stderr: a level (error, warn, info, debug) or per-module directives
    /// (`info,flashsale::sink=debug`). One that does not parse falls back to the default.
    #[arg(long, global = true, env = "FLASHSALE_LOG", default_value = "info,rskafka=error")]
    pub log: String,
}

impl GlobalSettings {
    /// The log filter asked for, or the default when it does not parse.
    pub fn log_filter(&self) -> tracing_subscriber::EnvFilter {
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(defaults::<GlobalSettings>().log))
    }
}

/// Where Redis is and how this process talks to it.
#[derive(Args, Clone)]
#[command(next_help_heading = "Redis")]
pub struct RedisSettings {
    /// Redis URL (redis://[user:pass@]host:port[/db]).
    #[arg(long, env = "FLASHSALE_REDIS_URL", hide_env_values = true, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prefix of every Redis key this service owns; lets several deployments (or tests) share one Redis.
    #[arg(long, env = "FLASHSALE_KEY_PREFIX", default_value = "fs:")]
    pub key_prefix: String,
    /// Redis connections; each pipelines concurrent commands on its own.
    #[arg(long, env = "FLASHSALE_REDIS_POOL_SIZE", default_value_t = 4)]
    pub redis_pool_size: usize,
    /// Time a Redis command may take before the request fails with 503 (`outcome_unknown` for a change that was sent).
    #[arg(long, env = "FLASHSALE_REDIS_TIMEOUT_MS", default_value_t = 1000)]
    pub redis_timeout_ms: u64,
    /// Replicas that must hold a write before its answer is sent (WAIT after each script call), and before the relay
    /// sends it to Kafka. 0: answer once the primary has it (a failover can lose the last answers).
    #[arg(long, env = "FLASHSALE_ACK_REPLICAS", default_value_t = 0)]
    pub ack_replicas: u32,
    /// Longest wait for those replicas (or fsyncs); past it the answer is 503 `outcome_unknown`.
    #[arg(long, env = "FLASHSALE_ACK_TIMEOUT_MS", default_value_t = 500)]
    pub ack_timeout_ms: u64,
    /// Answer only once the write is fsynced to the AOF (WAITAOF on Redis >= 7.2 / Valkey; on older Redis the
    /// server must run `appendfsync always`, else start-up refuses).
    #[arg(long, env = "FLASHSALE_ACK_FSYNC", default_value_t = false, action = ArgAction::Set)]
    pub ack_fsync: bool,
}

/// Where MySQL (or MariaDB) is.
#[derive(Args, Clone)]
#[command(next_help_heading = "MySQL")]
pub struct MysqlSettings {
    /// MySQL URL (mysql://user:pass@host:port/database).
    #[arg(
        long,
        env = "FLASHSALE_MYSQL_URL",
        hide_env_values = true,
        default_value = "mysql://flashsale:flashsale@127.0.0.1:3306/flashsale"
    )]
    pub mysql_url: String,
    /// Most MySQL connections this process opens.
    #[arg(long, env = "FLASHSALE_MYSQL_POOL_SIZE", default_value_t = 16)]
    pub mysql_pool_size: usize,
}

/// Where the Kafka brokers are and what the coupon topic looks like.
#[derive(Args, Clone)]
#[command(next_help_heading = "Kafka")]
pub struct KafkaSettings {
    /// Kafka bootstrap brokers, comma-separated host:port.
    #[arg(long, env = "FLASHSALE_KAFKA_BROKERS", default_value = "127.0.0.1:9092", value_delimiter = ',')]
    pub kafka_brokers: Vec<String>,
    /// Topic that carries coupon-issued events.
    #[arg(long, env = "FLASHSALE_COUPON_TOPIC", default_value = "coupon-issued")]
    pub coupon_topic: String,
    /// Topic that carries order events (reserved, paid, cancelled, expired).
    #[arg(long, env = "FLASHSALE_ORDER_TOPIC", default_value = "order-events")]
    pub order_topic: String,
    /// Topic that carries wallet events (charges and payments).
    #[arg(long, env = "FLASHSALE_WALLET_TOPIC", default_value = "wallet-events")]
    pub wallet_topic: String,
    /// Partitions of each topic when this service creates it (an existing topic keeps its own).
    #[arg(long, env = "FLASHSALE_KAFKA_PARTITIONS", default_value_t = 4)]
    pub kafka_partitions: i32,
    /// How long a Kafka call may keep retrying before it gives up.
    #[arg(long, env = "FLASHSALE_KAFKA_TIMEOUT_MS", default_value_t = 10_000)]
    pub kafka_timeout_ms: u64,
}

/// The HTTP listener and its limits.
#[derive(Args, Clone)]
#[command(next_help_heading = "HTTP API")]
pub struct HttpSettings {
    /// Address the HTTP API listens on.
    #[arg(long, env = "FLASHSALE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Serve the ops routes (/metrics, /dashboard, /v1/dashboard/*, and /readyz with the
    /// Redis primary's address) on this address, e.g. 127.0.0.1:9091.
    #[arg(long, env = "FLASHSALE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve the ops routes on the public listener too, when no FLASHSALE_METRICS_LISTEN
    /// is set (local demos, benchmarks). Off: the public listener answers 404 for them,
    /// and its /readyz names no address.
    #[arg(long, env = "FLASHSALE_OPS_ON_MAIN", default_value_t = false, action = ArgAction::Set)]
    pub ops_on_main: bool,
    /// A local demo: auth off is expected, so no warning about it (without --demo and
    /// without a JWT key, a warning at start, every minute, and in /readyz).
    #[arg(long, env = "FLASHSALE_DEMO")]
    pub demo: bool,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "FLASHSALE_BODY_LIMIT", default_value_t = 4096)]
    pub body_limit: usize,
    /// Most connections served at once; further ones wait in the accept queue.
    #[arg(long, env = "FLASHSALE_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,
    /// Most connections open at once from one client IP (an IPv6 client's /64); past it a
    /// new connection is answered 429 and closed. Trusted proxies are exempt. 0: no cap.
    #[arg(long, env = "FLASHSALE_MAX_CONNECTIONS_PER_IP", default_value_t = 4_096)]
    pub max_connections_per_ip: usize,
    /// Time a client has to send its request headers.
    #[arg(long, env = "FLASHSALE_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line + headers) in bytes; larger: 431.
    #[arg(long, env = "FLASHSALE_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// Deepest JSON nesting accepted in a body (deeper: 400 `too_deep`).
    #[arg(long, env = "FLASHSALE_MAX_JSON_DEPTH", default_value_t = 8)]
    pub max_json_depth: usize,
    /// Time a request may take before it is answered 503 `timeout` (nothing done); a change already sent to Redis waits for its answer instead.
    #[arg(long, env = "FLASHSALE_REQUEST_TIMEOUT_MS", default_value_t = 5_000)]
    pub request_timeout_ms: u64,
    /// Requests per second one client IP may make on the API (burst: one second's worth); 0: no limit.
    #[arg(long, env = "FLASHSALE_RATE_PER_IP", default_value_t = 0)]
    pub rate_per_ip: u32,
    /// Issue/reserve requests per second one user may make (burst: one second's worth); 0: no limit.
    #[arg(long, env = "FLASHSALE_RATE_PER_USER", default_value_t = 0)]
    pub rate_per_user: u32,
    /// Proxies (comma-separated CIDRs, e.g. 10.0.0.0/8) whose `X-Forwarded-For` names the
    /// client: from them the client IP (for the per-IP limit) is the rightmost hop that
    /// is not one of them; from any other peer, the TCP peer. Empty: the TCP peer, always.
    #[arg(long, env = "FLASHSALE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<crate::cidr::Cidr>,
    /// Reservations in flight at once for one sale; more are answered 429; 0: no cap.
    #[arg(long, env = "FLASHSALE_SALE_ADMISSION", default_value_t = 0)]
    pub sale_admission: usize,
    /// Most orders one user may make in one sale, cancelled and expired ones included
    /// (past it: 409 `too_many_orders`), so a reserve -> cancel loop ends. 0: no cap.
    #[arg(long, env = "FLASHSALE_MAX_ORDERS_PER_USER", default_value_t = 100)]
    pub max_orders_per_user: u64,
    /// HS256 secret. With it or --jwt-public-key set, users are identified by a verified JWT
    /// (`Authorization: Bearer <JWT>`, `sub` = user id, `exp` required), not the body.
    #[arg(long, env = "FLASHSALE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// HMAC-SHA256 secret shared with the payment gateway: confirm and wallet charges
    /// are accepted only with a valid `Flashsale-Signature` header made with it.
    #[arg(long, env = "FLASHSALE_PAYMENT_SECRET", hide_env_values = true)]
    pub payment_secret: Option<Secret>,
    /// HMAC-SHA256 secret (at least 16 characters) that signs waiting-room tickets and
    /// admissions (`sale create --queue`). Unset: the queue routes answer 403 `queue_not_configured`.
    #[arg(long, env = "FLASHSALE_QUEUE_SECRET", hide_env_values = true)]
    pub queue_secret: Option<Secret>,
    /// Waiting-room joins per minute one client IP may make (burst: a minute's worth;
    /// past it 429), against bots joining as many users; 0: no limit.
    #[arg(long, env = "FLASHSALE_QUEUE_JOINS_PER_IP", default_value_t = 120)]
    pub queue_joins_per_ip: u32,
    /// Without a payment secret, accept unsigned gateway calls (local demos only: anyone
    /// can then mark any order paid and charge any wallet). Without either, they answer 403.
    #[arg(long, env = "FLASHSALE_PAYMENTS_UNSIGNED")]
    pub payments_unsigned: bool,
    /// Public key for RS256 (an RSA key) or ES256 (a P-256 EC key) tokens: the PEM text itself
    /// ("-----BEGIN PUBLIC KEY-----..."), or the path of a PEM file. With --jwt-secret too,
    /// a token's `alg` picks the key. A key that does not parse stops the start.
    #[arg(
        long,
        env = "FLASHSALE_JWT_PUBLIC_KEY",
        hide_env_values = true,
        value_name = "PEM_OR_PATH",
        allow_hyphen_values = true
    )]
    pub jwt_public_key: Option<String>,
    /// When set, a token's `iss` is required and must equal this.
    #[arg(long, env = "FLASHSALE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// When set, a token's `aud` is required and must name this (a string, or a list holding it).
    #[arg(long, env = "FLASHSALE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Clock skew allowed on a token's `exp` and `nbf`, in seconds (at most 3600).
    #[arg(long, env = "FLASHSALE_JWT_LEEWAY_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(..=3600))]
    pub jwt_leeway_secs: u64,
    /// What /readyz needs to answer 200: `all` (Redis, the Kafka broker, MySQL and this
    /// process's sink) or `redis` (Redis alone: a broker or MySQL outage, which the hot path
    /// rides out, keeps the pod in its Service; the body still names the failing parts).
    #[arg(long, env = "FLASHSALE_READY_REQUIRES", value_enum, default_value_t = ReadyRequires::All)]
    pub ready_requires: ReadyRequires,
}

/// What readiness requires (`FLASHSALE_READY_REQUIRES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReadyRequires {
    // Redis, the Kafka broker, MySQL and this process's sink.
    All,
    // Redis alone.
    Redis,
}

/// Largest amount a wallet setting may name: 2^53 - 1 minor units, exact in
/// a Lua number (the wallet scripts' arithmetic).
const MAX_WALLET_AMOUNT: u64 = (1 << 53) - 1;

/// Wallets: charge limits, whether a charge must be signed, and how long a
/// payment's hold and its records last.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Wallets")]
pub struct WalletSettings {
    /// Smallest charge, in minor units (smaller: 400 `invalid_amount`).
    #[arg(long, env = "FLASHSALE_WALLET_MIN_CHARGE", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..=MAX_WALLET_AMOUNT))]
    pub wallet_min_charge: u64,
    /// Largest charge, in minor units (larger: 400 `invalid_amount`).
    #[arg(long, env = "FLASHSALE_WALLET_MAX_CHARGE", default_value_t = 10_000_000,
          value_parser = clap::value_parser!(u64).range(1..=MAX_WALLET_AMOUNT))]
    pub wallet_max_charge: u64,
    /// Most a wallet may hold, in minor units (a charge past it: 422 `balance_limit_exceeded`).
    #[arg(long, env = "FLASHSALE_WALLET_MAX_BALANCE", default_value_t = 100_000_000,
          value_parser = clap::value_parser!(u64).range(1..=MAX_WALLET_AMOUNT))]
    pub wallet_max_balance: u64,
    /// How long a wallet payment holds its order before the recovery pass
    /// settles it (a payment interrupted between its steps, e.g. by a crash).
    #[arg(long, env = "FLASHSALE_WALLET_HOLD_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub wallet_hold_ms: u64,
    /// How long a charge's Idempotency-Key and a payment's debit record are
    /// kept (a replay within it answers the first charge).
    #[arg(long, env = "FLASHSALE_WALLET_KEEP_SECS", default_value_t = 7 * 86_400,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub wallet_keep_secs: u64,
}

impl Default for WalletSettings {
    fn default() -> Self {
        defaults()
    }
}

impl WalletSettings {
    /// Settings that contradict each other stop the start.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.wallet_min_charge <= self.wallet_max_charge,
            "FLASHSALE_WALLET_MIN_CHARGE ({}) is above FLASHSALE_WALLET_MAX_CHARGE ({})",
            self.wallet_min_charge,
            self.wallet_max_charge
        );
        Ok(())
    }
}

/// What `flashsale token` needs to mint a token the service accepts.
#[derive(Args, Clone)]
#[command(next_help_heading = "Token")]
pub struct TokenSettings {
    /// The HS256 secret the service verifies with.
    #[arg(long, env = "FLASHSALE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Secret,
    /// The `iss` to put in the token (the service's --jwt-issuer, if it has one).
    #[arg(long, env = "FLASHSALE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` to put in the token (the service's --jwt-audience, if it has one).
    #[arg(long, env = "FLASHSALE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

/// A secret setting: its Debug and Display never show the value.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // Empty means "not set" (so `VAR=` turns a compose default off).
        if !s.is_empty() && s.len() < 16 {
            return Err("a secret must be at least 16 characters".into());
        }
        Ok(Secret(s.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The relay: outbox streams in Redis -> Kafka.
#[derive(Args, Clone)]
#[command(next_help_heading = "Relay")]
pub struct RelaySettings {
    /// Outbox entries read (and produced) per batch.
    #[arg(long, env = "FLASHSALE_RELAY_BATCH", default_value_t = 10_000)]
    pub relay_batch: usize,
    /// Consumer name in the outbox consumer group, one per instance [default:
    /// relay-<hostname>-<listen port>]. Stable across restarts of the same instance,
    /// so a restarted relay first resends what it had read but not yet acknowledged.
    #[arg(long, env = "FLASHSALE_RELAY_CONSUMER")]
    pub relay_consumer: Option<String>,
    /// A relay without a heartbeat this long is gone: its entries pending this long are
    /// claimed by another instance (a live relay's are not, however slow it is).
    #[arg(long, env = "FLASHSALE_RELAY_CLAIM_IDLE_MS", default_value_t = 30_000)]
    pub relay_claim_idle_ms: u64,
}

/// How long ended campaigns and sales, and Idempotency-Key answers, stay in Redis.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Retention")]
pub struct RetentionSettings {
    /// How long after its end a campaign's or sale's Redis keys are deleted (e.g. 7d, 12h,
    /// 90s). It leaves the relay's and the sweeper's loops as soon as it has ended and every
    /// one of its events is in MySQL; its keys go this long after its end. MySQL keeps it:
    /// GETs then answer from MySQL with "retired": true.
    #[arg(long, env = "FLASHSALE_RETAIN_AFTER_END", default_value = "7d", value_parser = humantime::parse_duration)]
    pub retain_after_end: Duration,
    /// How long an Idempotency-Key's first answer is replayed (e.g. 24h, 30m); after it the
    /// same key is a new request.
    #[arg(long, env = "FLASHSALE_IDEMPOTENCY_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub idempotency_ttl: Duration,
    /// How long a cancelled or expired order stays in Redis once MySQL has it (e.g. 60s);
    /// after it, lookups of the order are answered from MySQL.
    #[arg(long, env = "FLASHSALE_FORGET_RELEASED_AFTER", default_value = "60s", value_parser = humantime::parse_duration)]
    pub forget_released_after: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        defaults()
    }
}

/// The sink: Kafka -> MySQL.
#[derive(Args, Clone)]
#[command(next_help_heading = "Sink")]
pub struct SinkSettings {
    /// Most bytes fetched from one partition per round.
    #[arg(long, env = "FLASHSALE_SINK_FETCH_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub sink_fetch_bytes: i32,
    /// Longest the broker may hold a fetch open waiting for new records.
    #[arg(long, env = "FLASHSALE_SINK_MAX_WAIT_MS", default_value_t = 200)]
    pub sink_max_wait_ms: i32,
    /// The same, once a partition's last fetch found nothing new (a broker
    /// answers as soon as records arrive; tansu holds the fetch for the whole
    /// wait, so on it the first records after a quiet spell show up this late).
    #[arg(long, env = "FLASHSALE_SINK_IDLE_WAIT_MS", default_value_t = 1000)]
    pub sink_idle_wait_ms: i32,
    /// A partition whose batch failed this many times in a row counts as
    /// stalled: logged as an error (at most once a minute),
    /// `flashsale_sink_stalled` 1, /readyz 503, shown by `flashsale status`.
    /// The sink keeps retrying; the stall ends when a batch goes through.
    /// (A stored offset past the partition's end is a stall at once.)
    #[arg(long, env = "FLASHSALE_SINK_STALL_AFTER", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub sink_stall_after: u32,
}

/// Whether `serve` also runs the sink in-process.
#[derive(Args, Clone)]
#[command(next_help_heading = "Sink")]
pub struct SinkToggle {
    /// Do not run the sink in this process (run `flashsale sink` elsewhere).
    #[arg(long)]
    pub no_sink: bool,
    /// Run the sink in this process (`FLASHSALE_SINK=false` turns it off).
    #[arg(long = "sink", env = "FLASHSALE_SINK", default_value_t = true, action = ArgAction::Set, hide_short_help = true)]
    pub sink: bool,
}

impl SinkToggle {
    pub fn enabled(&self) -> bool {
        self.sink && !self.no_sink
    }
}

impl RelaySettings {
    /// The consumer name: as set, or `relay-<hostname>-<port>` of this instance.
    pub fn consumer(&self, listen: std::net::SocketAddr) -> String {
        if let Some(name) = self.relay_consumer.as_deref().filter(|n| !n.trim().is_empty()) {
            return name.to_string();
        }
        format!("relay-{}-{}", hostname(), listen.port())
    }
}

/// This machine's (or pod's) host name, or `localhost` when it cannot be read.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl RedisSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    /// The acknowledgement mode asked for (settled against the server by `Ack::check`).
    pub fn ack(&self) -> crate::durability::Ack {
        crate::durability::Ack::new(self.ack_replicas, self.ack_timeout_ms, self.ack_fsync)
    }
}

impl HttpSettings {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

impl KafkaSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.kafka_timeout_ms)
    }
}

/// URLs carry passwords: never print them whole.
impl fmt::Debug for MysqlSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlSettings")
            .field("mysql_url", &redact(&self.mysql_url))
            .field("mysql_pool_size", &self.mysql_pool_size)
            .finish()
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("redis_url", &redact(&self.redis_url))
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// `scheme://user:secret@host` -> `scheme://user:***@host`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password_and_keeps_the_rest() {
        assert_eq!(redact("mysql://u:p@h:1/db"), "mysql://u:***@h:1/db");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn secrets_never_print_and_must_be_long_enough() {
        let secret: super::Secret = "0123456789abcdef-secret".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!("short".parse::<super::Secret>().is_err());
    }
}

/// Everything `serve` needs.
#[derive(Clone)]
pub struct ServeConfig {
    pub http: HttpSettings,
    pub redis: RedisSettings,
    pub mysql: MysqlSettings,
    pub kafka: KafkaSettings,
    pub relay: RelaySettings,
    pub sink: SinkSettings,
    pub retention: RetentionSettings,
    pub wallet: WalletSettings,
    pub run_sink: bool,
}
