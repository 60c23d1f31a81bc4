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
                config,
                statements,
                providers,
                metrics,
                documents: DocumentCache::default(),
                rates,
                detached: tokio_util::task::TaskTracker::new(),
            }),
        })
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
