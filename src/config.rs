//! Configuration from environment variables (documented in the README).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

/// Which payment provider handles new payment attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Manual,
    Stripe,
}

/// Runtime configuration. `Config::from_env` reads it; tests build it directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`; when absent the binary manages a private cluster under `data_dir`.
    pub database_url: Option<String>,
    pub bind_addr: SocketAddr,
    pub pool_size: usize,
    pub pool_timeout: Duration,
    pub statement_timeout: Duration,
    pub data_dir: PathBuf,
    /// The HMAC secret of provider callbacks.
    pub callback_secret: String,
    /// The secret being rotated out, still accepted until it is unset.
    pub callback_secret_previous: Option<String>,
    pub payment_provider: ProviderKind,
    pub stripe_api_base: String,
    pub stripe_secret_key: String,
    /// How long Idempotency-Keys are remembered.
    pub idempotency_retention: Duration,
    /// Calls out to payment providers at once, at most (the bulkhead).
    pub provider_concurrency: usize,
    /// How long a provider call waits for a slot before it is refused, unsent.
    pub provider_slot_wait: Duration,
    /// How long one call to a provider may take before its outcome counts as unknown.
    pub provider_timeout: Duration,
    /// How long an idempotency claim is held before another request may take it over.
    pub idempotency_lease: Duration,
    /// The background worker that resolves work whose outcome is unknown.
    pub janitor: JanitorConfig,
    /// Merchant webhooks: the outbox worker and where it may send.
    pub webhooks: WebhookConfig,
    /// How long a payment attempt waits for the customer to authenticate (3-D Secure, OTP)
    /// before it fails with `authentication_timeout` (seed 001: 30 minutes).
    pub authentication_timeout: Duration,
    /// GraphQL subscriptions (WebSocket): open subscriptions per connection and per key.
    pub ws_subscriptions_per_connection: usize,
    pub ws_subscriptions_per_key: usize,
    /// WebSocket connections at once (past it, upgrades are answered 503).
    pub ws_max_connections: usize,
    /// Time a client has to send `connection_init` (then 4408).
    pub ws_init_timeout: Duration,
    /// Server ping interval; a graphql-transport-ws client silent for three is closed.
    pub ws_ping_interval: Duration,
    /// A connection with no subscription is closed after this long.
    pub ws_idle_timeout: Duration,
    /// Fallback poll of the event trail when no notification comes.
    pub live_poll: Duration,
    /// How often the keys of open subscriptions are rechecked (revoked: their streams end).
    pub live_key_check: Duration,
    /// The base of payment URLs shown to merchants (`<base>/gateway/payment/<id>`).
    pub public_base_url: String,
    pub graphql_max_depth: usize,
    pub graphql_max_complexity: usize,
    pub graphql_max_fields: usize,
    pub graphql_max_aliases: usize,
    pub graphql_max_directives: usize,
    /// The most values one response may hold (see the README's cost model).
    pub graphql_max_cost: u64,
    /// The most SQL statements one GraphQL request may send (behind the cost analysis).
    pub graphql_max_statements: u64,
    /// The most rows one GraphQL request may load (behind the cost analysis).
    pub graphql_max_rows: u64,
    /// Whether `__schema`/`__type` answer (GraphiQL needs them; switch off in production).
    pub graphql_introspection: bool,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// How long a stopping server waits for requests in flight.
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may wait idle for its next request.
    pub header_read_timeout: Duration,
    /// Requests per second one API key may make to this process (`None`: no limit), and
    /// the burst it may make at once.
    pub rate_limit_per_second: Option<u32>,
    pub rate_limit_burst: u32,
    /// Open connections at most; past it the server stops accepting until one closes.
    pub max_connections: usize,
    /// Where `/metrics` is served. Unset: on the main listener when it is a loopback
    /// address, nowhere otherwise.
    pub metrics_bind_addr: Option<SocketAddr>,
    /// Pre-filled in GraphiQL's headers: set to the dev admin key when `cargo run` manages
    /// a private cluster; never read from the environment.
    pub graphiql_key: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            pool_size: 16,
            pool_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(15),
            data_dir: PathBuf::from(".data"),
            callback_secret: DEV_CALLBACK_SECRET.to_owned(),
            callback_secret_previous: None,
            payment_provider: ProviderKind::Manual,
            stripe_api_base: "https://api.stripe.com".to_owned(),
            stripe_secret_key: String::new(),
            idempotency_retention: crate::domain::idempotency::DEFAULT_RETENTION,
            provider_concurrency: 8,
            provider_slot_wait: Duration::from_secs(5),
            provider_timeout: Duration::from_secs(10),
            idempotency_lease: Duration::from_secs(60),
            janitor: JanitorConfig::default(),
            webhooks: WebhookConfig::default(),
            authentication_timeout: Duration::from_secs(30 * 60),
            ws_subscriptions_per_connection: 25,
            ws_subscriptions_per_key: 500,
            ws_max_connections: 5_000,
            ws_init_timeout: Duration::from_secs(10),
            ws_ping_interval: Duration::from_secs(15),
            ws_idle_timeout: Duration::from_secs(300),
            live_poll: Duration::from_millis(1_000),
            live_key_check: Duration::from_millis(2_000),
            public_base_url: "http://127.0.0.1:8080".to_owned(),
            graphql_max_depth: 12,
            graphql_max_complexity: 5_000,
            graphql_max_fields: 500,
            graphql_max_aliases: 30,
            graphql_max_directives: 50,
            graphql_max_cost: 100_000,
            graphql_max_statements: 250,
            graphql_max_rows: 25_000,
            graphql_introspection: true,
            body_limit_bytes: 256 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            rate_limit_per_second: Some(100),
            rate_limit_burst: 200,
            metrics_bind_addr: None,
            graphiql_key: None,
        }
    }
}

/// The merchant webhook worker.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Whether `serve` runs the worker (tests start it themselves).
    pub enabled: bool,
    /// How often it looks for due deliveries when no notification woke it.
    pub poll: Duration,
    /// How long one attempt may take (connect, send, read the answer).
    pub timeout: Duration,
    /// Waits after the first, second, … failed attempt; after the last the delivery is
    /// given up and its endpoint disabled. About three days in all; each wait gets ±10 %
    /// jitter.
    pub retry_delays: Vec<Duration>,
    /// Deliveries sent at once per worker.
    pub batch: i64,
    /// Whether callback URLs may point at loopback or private addresses (development and
    /// tests only).
    pub allow_private_targets: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        let secs = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 72_000];
        Self {
            enabled: true,
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            retry_delays: secs.iter().map(|s| Duration::from_secs(*s)).collect(),
            batch: 20,
            allow_private_targets: false,
        }
    }
}

/// When and how often the janitor looks at unresolved work.
#[derive(Debug, Clone)]
pub struct JanitorConfig {
    /// Whether `serve` runs it (tests start it themselves).
    pub enabled: bool,
    /// How often it looks for work that is due.
    pub tick: Duration,
    /// How long after it began unresolved work is first checked, then between checks; the
    /// last delay repeats. Default: 5 minutes, 1 hour, then daily (Kill Bill's janitor).
    pub delays: Vec<Duration>,
}

impl Default for JanitorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            tick: Duration::from_secs(10),
            delays: vec![Duration::from_secs(300), Duration::from_secs(3600), Duration::from_secs(86_400)],
        }
    }
}

impl JanitorConfig {
    /// The wait before check number `checks + 1` (0-based count of checks done).
    pub fn delay(&self, checks: i32) -> Duration {
        let index = usize::try_from(checks).unwrap_or(0);
        self.delays.get(index).or(self.delays.last()).copied().unwrap_or(Duration::from_secs(300))
    }
}

/// `JANITOR_DELAYS_SECS`, `WEBHOOK_RETRY_SECS`: comma-separated seconds, each at least 1.
fn parse_delays(name: &str, raw: &str) -> anyhow::Result<Vec<Duration>> {
    let delays = raw
        .split(',')
        .map(|part| match part.trim().parse::<u64>() {
            Ok(secs) if secs >= 1 => Ok(Duration::from_secs(secs)),
            _ => Err(anyhow::anyhow!("{name}={raw:?} is not valid: give seconds (at least 1) separated by commas")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if delays.is_empty() {
        bail!("{name} is empty");
    }
    Ok(delays)
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e| anyhow::anyhow!("{name}={raw:?} is not valid: {e}")),
    }
}

/// The callback secret of the development cluster and the README's examples; a server that
/// manages no private cluster refuses to start with it.
pub const DEV_CALLBACK_SECRET: &str = "dev-callback-secret";

/// The shortest callback secret a production server accepts (32 bytes, as HMAC-SHA256's
/// output; `openssl rand -hex 32` makes one).
pub const MIN_CALLBACK_SECRET_BYTES: usize = 32;

impl Config {
    /// The callback secrets accepted now: the current one, then the one being rotated out.
    pub fn callback_secrets(&self) -> Vec<&str> {
        std::iter::once(self.callback_secret.as_str()).chain(self.callback_secret_previous.as_deref()).collect()
    }

    /// Refuses callback secrets that would let anyone sign a callback, for a server that
    /// manages no private cluster (one with `DATABASE_URL`).
    pub fn check_production_secrets(&self) -> anyhow::Result<()> {
        for (name, secret) in std::iter::once(("CALLBACK_SECRET", Some(self.callback_secret.as_str())))
            .chain(std::iter::once(("CALLBACK_SECRET_PREVIOUS", self.callback_secret_previous.as_deref())))
        {
            let Some(secret) = secret else { continue };
            if secret == DEV_CALLBACK_SECRET {
                bail!(
                    "{name} is unset or the development value, and DATABASE_URL is set: set {name} to a secret of at least {MIN_CALLBACK_SECRET_BYTES} bytes (openssl rand -hex 32)"
                );
            }
            if secret.len() < MIN_CALLBACK_SECRET_BYTES {
                bail!(
                    "{name} is shorter than {MIN_CALLBACK_SECRET_BYTES} bytes: set a longer secret (openssl rand -hex 32)"
                );
            }
        }
        Ok(())
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let d = Self::default();
        let payment_provider = match var("PAYMENT_PROVIDER").as_deref() {
            None | Some("manual") => ProviderKind::Manual,
            Some("stripe") => ProviderKind::Stripe,
            Some(other) => bail!("PAYMENT_PROVIDER={other:?} is not valid: use manual or stripe"),
        };
        let pool_size: usize = parsed("DATABASE_POOL_SIZE", d.pool_size)?;
        if pool_size == 0 {
            bail!("DATABASE_POOL_SIZE must be at least 1");
        }
        Ok(Self {
            database_url: var("DATABASE_URL"),
            bind_addr: parsed("BIND_ADDR", d.bind_addr).context("BIND_ADDR")?,
            pool_size,
            pool_timeout: Duration::from_millis(parsed("DATABASE_POOL_TIMEOUT_MS", 5_000)?),
            statement_timeout: Duration::from_millis(parsed("DATABASE_STATEMENT_TIMEOUT_MS", 15_000)?),
            data_dir: var("DATA_DIR").map_or(d.data_dir, PathBuf::from),
            callback_secret: var("CALLBACK_SECRET").unwrap_or(d.callback_secret),
            callback_secret_previous: var("CALLBACK_SECRET_PREVIOUS"),
            payment_provider,
            stripe_api_base: var("STRIPE_API_BASE").unwrap_or(d.stripe_api_base),
            stripe_secret_key: var("STRIPE_SECRET_KEY").unwrap_or_default(),
            idempotency_retention: Duration::from_secs(
                3600 * parsed("IDEMPOTENCY_RETENTION_HOURS", d.idempotency_retention.as_secs() / 3600)?.max(24),
            ),
            provider_concurrency: parsed("PROVIDER_CONCURRENCY", d.provider_concurrency)?.max(1),
            provider_slot_wait: Duration::from_millis(parsed("PROVIDER_SLOT_WAIT_MS", 5_000)?),
            provider_timeout: Duration::from_millis(parsed("PROVIDER_TIMEOUT_MS", 10_000u64)?.max(100)),
            idempotency_lease: Duration::from_millis(parsed("IDEMPOTENCY_LEASE_MS", 60_000u64)?.max(1_000)),
            janitor: JanitorConfig {
                enabled: parsed("JANITOR_ENABLED", d.janitor.enabled)?,
                tick: Duration::from_millis(parsed("JANITOR_TICK_MS", 10_000u64)?.max(100)),
                delays: match var("JANITOR_DELAYS_SECS") {
                    None => d.janitor.delays,
                    Some(raw) => parse_delays("JANITOR_DELAYS_SECS", &raw)?,
                },
            },
            webhooks: WebhookConfig {
                enabled: parsed("WEBHOOK_WORKER_ENABLED", d.webhooks.enabled)?,
                poll: Duration::from_millis(parsed("WEBHOOK_POLL_MS", 1_000u64)?.max(50)),
                timeout: Duration::from_millis(parsed("WEBHOOK_TIMEOUT_MS", 10_000u64)?.max(100)),
                retry_delays: match var("WEBHOOK_RETRY_SECS") {
                    None => d.webhooks.retry_delays,
                    Some(raw) => parse_delays("WEBHOOK_RETRY_SECS", &raw)?,
                },
                batch: parsed("WEBHOOK_BATCH", d.webhooks.batch)?.clamp(1, 200),
                allow_private_targets: parsed("WEBHOOK_ALLOW_PRIVATE_TARGETS", d.webhooks.allow_private_targets)?,
            },
            authentication_timeout: Duration::from_secs(parsed("AUTHENTICATION_TIMEOUT_SECS", 1_800u64)?.max(1)),
            ws_subscriptions_per_connection: parsed("WS_SUBSCRIPTIONS_PER_CONNECTION", 25usize)?.max(1),
            ws_subscriptions_per_key: parsed("WS_SUBSCRIPTIONS_PER_KEY", 500usize)?.max(1),
            ws_max_connections: parsed("WS_MAX_CONNECTIONS", 5_000usize)?.max(1),
            ws_init_timeout: Duration::from_millis(parsed("WS_INIT_TIMEOUT_MS", 10_000u64)?.max(1)),
            ws_ping_interval: Duration::from_millis(parsed("WS_PING_INTERVAL_MS", 15_000u64)?.max(10)),
            ws_idle_timeout: Duration::from_millis(parsed("WS_IDLE_TIMEOUT_MS", 300_000u64)?.max(1)),
            live_poll: Duration::from_millis(parsed("LIVE_POLL_MS", 1_000u64)?.max(10)),
            live_key_check: Duration::from_millis(parsed("LIVE_KEY_CHECK_MS", 2_000u64)?.max(10)),
            public_base_url: var("PUBLIC_BASE_URL").unwrap_or(d.public_base_url).trim_end_matches('/').to_owned(),
            graphql_max_depth: parsed("GRAPHQL_MAX_DEPTH", d.graphql_max_depth)?,
            graphql_max_complexity: parsed("GRAPHQL_MAX_COMPLEXITY", d.graphql_max_complexity)?,
            graphql_max_fields: parsed("GRAPHQL_MAX_FIELDS", d.graphql_max_fields)?,
            graphql_max_aliases: parsed("GRAPHQL_MAX_ALIASES", d.graphql_max_aliases)?,
            graphql_max_directives: parsed("GRAPHQL_MAX_DIRECTIVES", d.graphql_max_directives)?,
            graphql_max_cost: parsed("GRAPHQL_MAX_COST", d.graphql_max_cost)?,
            graphql_max_statements: parsed("GRAPHQL_MAX_STATEMENTS", d.graphql_max_statements)?,
            graphql_max_rows: parsed("GRAPHQL_MAX_ROWS", d.graphql_max_rows)?,
            graphql_introspection: parsed("GRAPHQL_INTROSPECTION", d.graphql_introspection)?,
            body_limit_bytes: parsed("REQUEST_BODY_LIMIT_BYTES", d.body_limit_bytes)?,
            request_timeout: Duration::from_millis(parsed("REQUEST_TIMEOUT_MS", 30_000)?),
            shutdown_grace: Duration::from_millis(parsed("SHUTDOWN_GRACE_MS", 10_000)?),
            header_read_timeout: Duration::from_millis(parsed("HTTP_HEADER_READ_TIMEOUT_MS", 10_000)?),
            max_connections: parsed("MAX_CONNECTIONS", d.max_connections)?.max(1),
            rate_limit_per_second: match parsed("RATE_LIMIT_PER_SECOND", 100u32)? {
                0 => None,
                n => Some(n),
            },
            rate_limit_burst: parsed("RATE_LIMIT_BURST", d.rate_limit_burst)?.max(1),
            metrics_bind_addr: var("METRICS_BIND_ADDR")
                .map(|raw| {
                    raw.trim().parse().map_err(|e| anyhow::anyhow!("METRICS_BIND_ADDR={raw:?} is not valid: {e}"))
                })
                .transpose()?,
            graphiql_key: None,
        })
    }
}
