//! The application state shared by every request: pool, configuration, counters.

use std::sync::Arc;

use crate::config::Config;
use crate::db::{self, DbPool, PoolSettings, StatementCounter};
use crate::graphql::documents::DocumentCache;
use crate::http::ratelimit::KeyRates;
use crate::metrics::Metrics;
use crate::providers::Providers;

/// Shared state. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    pool: DbPool,
    config: Config,
    statements: StatementCounter,
    providers: Providers,
    metrics: Metrics,
    documents: DocumentCache,
    rates: KeyRates,
    detached: tokio_util::task::TaskTracker,
    /// Live order updates; the tail starts with the first subscription.
    live: crate::domain::live::Hub,
    live_started: tokio::sync::OnceCell<()>,
    ws_slots: Arc<tokio::sync::Semaphore>,
}

impl App {
    /// Builds the pool for `database_url`; no connection is opened yet.
    pub fn new(config: Config, database_url: &str) -> anyhow::Result<Self> {
        let statements = StatementCounter::default();
        let settings = PoolSettings {
            max_size: config.pool_size,
            wait_timeout: config.pool_timeout,
            statement_timeout: config.statement_timeout,
        };
        let pool = db::build_pool(database_url, &settings, statements.clone())?;
        let providers = Providers::from_config(&config)?;
        let metrics = Metrics::new()?;
        let rates = KeyRates::new(config.rate_limit_per_second, config.rate_limit_burst);
        Ok(Self {
            inner: Arc::new(AppInner {
                pool,
                statements,
                providers,
                metrics,
                documents: DocumentCache::default(),
                rates,
                detached: tokio_util::task::TaskTracker::new(),
                live: crate::domain::live::Hub::new(crate::domain::live::LiveSettings {
                    poll: config.live_poll,
                    key_check: config.live_key_check,
                    per_key: config.ws_subscriptions_per_key,
                }),
                live_started: tokio::sync::OnceCell::new(),
                ws_slots: Arc::new(tokio::sync::Semaphore::new(config.ws_max_connections)),
                config,
            }),
        })
    }

    /// The hub of live order updates, its tail started (once, with `LISTEN` on
    /// `database_url`) before this returns. `serve` starts it at once; otherwise the first
    /// subscription does.
    pub async fn start_live(&self, database_url: Option<String>) -> crate::domain::live::Hub {
        let inner = &self.inner;
        inner.live_started.get_or_init(|| inner.live.start(inner.pool.clone(), database_url)).await;
        inner.live.clone()
    }

    /// [`Self::start_live`] with the configured `DATABASE_URL`, for a subscription: it waits
    /// for the tail to start for at most a few seconds (`SERVICE_UNAVAILABLE` past them).
    pub async fn live(&self) -> crate::error::AppResult<crate::domain::live::Hub> {
        let start = self.start_live(self.inner.config.database_url.clone());
        tokio::time::timeout(std::time::Duration::from_secs(5), start)
            .await
            .map_err(|_| crate::error::AppError::Unavailable(anyhow::anyhow!("the live-update tail has not started")))
    }

    /// The hub, whether or not its tail runs (for checks that need no events).
    pub fn hub(&self) -> &crate::domain::live::Hub {
        &self.inner.live
    }

    pub fn ws_slots(&self) -> Arc<tokio::sync::Semaphore> {
        self.inner.ws_slots.clone()
    }

    pub fn pool(&self) -> &DbPool {
        &self.inner.pool
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The payment providers.
    pub fn providers(&self) -> &Providers {
        &self.inner.providers
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Work that must finish whole even when its request is gone (mutations and their
    /// idempotency records): a stopping server waits for it.
    pub fn detached(&self) -> &tokio_util::task::TaskTracker {
        &self.inner.detached
    }

    /// Per-key request rates.
    pub fn rates(&self) -> &KeyRates {
        &self.inner.rates
    }

    /// Parsed GraphQL queries by their text.
    pub fn documents(&self) -> &DocumentCache {
        &self.inner.documents
    }

    /// SQL statements sent so far by this app's connections.
    pub fn statements(&self) -> &StatementCounter {
        &self.inner.statements
    }
}
