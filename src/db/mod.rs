//! Database access: the pool, embedded migrations, Diesel models and query functions.
//! Query functions take `&mut AsyncPgConnection` so they run alone or inside a transaction.

pub mod budget;
pub mod groups;
pub mod keyset;
pub mod listen;
pub mod merchants;
pub mod models;
pub mod payments;
pub mod queries;
pub mod refund_requests;
pub mod schema;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use deadpool::managed::{Hook, HookError, Metrics};
use diesel::ConnectionError;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;

pub use diesel_async::pooled_connection::deadpool::PoolError;

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Counts SQL statements (and failed ones) sent by every connection of one pool. Tests read
/// it to prove that nested fields are batched; /metrics exports it.
#[derive(Debug, Clone, Default)]
pub struct StatementCounter(Arc<[AtomicU64; 2]>);

impl StatementCounter {
    /// Statements sent.
    pub fn get(&self) -> u64 {
        self.0[0].load(Ordering::Relaxed)
    }

    /// Statements that failed.
    pub fn errors(&self) -> u64 {
        self.0[1].load(Ordering::Relaxed)
    }
}

struct CountStatements(StatementCounter);

impl Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                self.0.0[0].fetch_add(1, Ordering::Relaxed);
                budget::statement_sent();
                // Off unless RUST_LOG enables billing_api::sql=trace (the benchmark uses it to
                // replay our exact statements with pgbench). Binds may hold personal data.
                tracing::trace!(target: "billing_api::sql", "{query}");
            }
            InstrumentationEvent::FinishQuery { error: Some(_), .. } => {
                self.0.0[1].fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// What a connection sees while the pool pings it: nothing is counted, so the ping (pool
/// upkeep, not the request's work) is neither a statement of the request's budget nor one
/// of the counted statements.
struct Uncounted;

impl Instrumentation for Uncounted {
    fn on_connection_event(&mut self, _: InstrumentationEvent<'_>) {}
}

/// A pooled connection idle for longer than this is pinged before it is handed out.
const IDLE_PING_AFTER: Duration = Duration::from_secs(2);

/// Pool settings the service chooses from its configuration.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: usize,
    pub wait_timeout: Duration,
    pub statement_timeout: Duration,
}

/// Builds the pool. Every new connection gets a `statement_timeout` and the counter.
pub fn build_pool(url: &str, settings: &PoolSettings, counter: StatementCounter) -> anyhow::Result<DbPool> {
    let statement_timeout_ms = settings.statement_timeout.as_millis();
    let ping_counter = counter.clone();
    let mut manager_config = ManagerConfig::default();
    // Reuse checks the connection's own state (a closed socket or a broken transaction
    // discards it); the idle ping below covers connections that died silently.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(move |url| {
        let counter = counter.clone();
        async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.batch_execute(&format!("SET statement_timeout = {statement_timeout_ms}"))
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            conn.set_instrumentation(CountStatements(counter));
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, manager_config);
    Pool::builder(manager)
        .pre_recycle(Hook::async_fn(move |conn: &mut AsyncPgConnection, metrics: &Metrics| {
            let counter = ping_counter.clone();
            Box::pin(async move {
                // Pinging every checkout would cost a round trip per query batch; a
                // connection in steady use has just proven itself.
                if metrics.last_used() < IDLE_PING_AFTER {
                    return Ok(());
                }
                conn.set_instrumentation(Uncounted);
                let pinged = conn.batch_execute("SELECT 1").await;
                conn.set_instrumentation(CountStatements(counter));
                pinged.map_err(|e| HookError::message(e.to_string()))
            })
        }))
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.wait_timeout))
        .create_timeout(Some(settings.wait_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .context("building the database pool")
}

/// Runs pending migrations on a dedicated connection (the harness is synchronous).
pub async fn run_migrations(url: &str) -> anyhow::Result<()> {
    let conn = AsyncPgConnection::establish(url).await.with_context(|| format!("connecting to {}", redact_url(url)))?;
    let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
    tokio::task::spawn_blocking(move || {
        wrapper.run_pending_migrations(MIGRATIONS).map(|_| ()).map_err(|e| anyhow::anyhow!("running migrations: {e}"))
    })
    .await
    .context("migration task")?
}

/// Reverts every migration (used by the test that proves migrations are reversible).
pub async fn revert_all_migrations(url: &str) -> anyhow::Result<()> {
    let conn = AsyncPgConnection::establish(url).await?;
    let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
    tokio::task::spawn_blocking(move || {
        wrapper.revert_all_migrations(MIGRATIONS).map(|_| ()).map_err(|e| anyhow::anyhow!("reverting migrations: {e}"))
    })
    .await
    .context("migration task")?
}

/// A database URL with any password replaced, safe for logs and error lines.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
