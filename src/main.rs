//! `billing-api`: serve (default), migrate, seed, keys, schema.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use billing_api::app::App;
use billing_api::config::Config;
use billing_api::domain::{Caller, Role, access, users};
use billing_api::pgcluster::{self, Durability, LocalCluster};
use billing_api::{db, graphql, http, seed};
use clap::{Parser, Subcommand};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: request handling allocates many small
/// short-lived values (GraphQL values, rows, JSON), and glibc malloc was a quarter of the
/// server's CPU under load (see bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "billing-api", version, about = "Billing API: orders, payments, refunds and balances")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Run pending database migrations.
    Migrate,
    /// Load bulk data: users with balances, orders with items, payments, refunds and events.
    Seed {
        #[arg(long, default_value_t = 100)]
        users: u32,
        #[arg(long, default_value_t = 1000)]
        orders: u32,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Manage merchants, their stores, webhook endpoints and signing secrets.
    Merchants {
        #[command(subcommand)]
        action: MerchantsCommand,
    },
    /// Print the GraphQL schema (SDL), as committed in schema.graphql.
    Schema,
    /// Print the OpenAPI document of the REST faces (JSON), with PUBLIC_BASE_URL as its server.
    Openapi,
    /// Check every money invariant over the whole database; print each violation with the
    /// rows involved. Exit status 1 when any is found.
    Audit,
    /// List refunds and payment attempts whose outcome is still unknown (PENDING), oldest
    /// first, with the janitor's checks so far.
    Unresolved {
        /// Only items begun at least this many seconds ago.
        #[arg(long, default_value_t = 0)]
        older_than: i64,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; the key is printed alone on the last line and never again.
    Create {
        /// admin, support, customer or merchant.
        #[arg(long)]
        role: String,
        /// The user a customer key is bound to.
        #[arg(long)]
        user: Option<i64>,
        /// The merchant (UUID) a merchant key is bound to.
        #[arg(long)]
        merchant: Option<uuid::Uuid>,
        /// A name for the key (recorded as the actor of what it does).
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a key by id.
    Revoke { id: i64 },
    /// List keys (prefixes only; keys are stored as hashes).
    List,
}

#[derive(Subcommand)]
enum MerchantsCommand {
    /// Create a merchant; its first webhook signing secret is printed once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List merchants with their stores and endpoints.
    List,
    /// Add a store to a merchant.
    AddStore {
        #[arg(long)]
        merchant: uuid::Uuid,
        #[arg(long)]
        store_name: String,
        #[arg(long)]
        office_name: String,
    },
    /// Add a webhook endpoint to a merchant.
    AddEndpoint {
        #[arg(long)]
        merchant: uuid::Uuid,
        #[arg(long)]
        url: String,
    },
    /// Make a new signing secret; older ones keep signing for --overlap-secs.
    RotateSecret {
        #[arg(long)]
        merchant: uuid::Uuid,
        #[arg(long, default_value_t = 86_400)]
        overlap_secs: i64,
    },
}

/// The database this process works on, and the private cluster if we manage one.
struct Database {
    url: String,
    cluster: Option<LocalCluster>,
    started_cluster: bool,
}

impl Database {
    async fn open(config: &Config) -> anyhow::Result<Self> {
        if let Some(url) = &config.database_url {
            AsyncPgConnection::establish(url).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the database at {}: {e} (check DATABASE_URL, or unset it to run a private cluster under {})",
                    db::redact_url(url),
                    config.data_dir.display()
                )
            })?;
            return Ok(Self { url: url.clone(), cluster: None, started_cluster: false });
        }
        let root = config.data_dir.join("postgres");
        let (cluster, started) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut cluster = LocalCluster::open(&root, Durability::Durable)?;
            let started = cluster.start()?;
            Ok((cluster, started))
        })
        .await??;
        pgcluster::ensure_database(&cluster, "billing").await?;
        Ok(Self { url: cluster.url("billing"), cluster: Some(cluster), started_cluster: started })
    }

    /// Stops the private cluster if this process started it.
    fn close(self) {
        if let (Some(cluster), true) = (self.cluster, self.started_cluster)
            && let Err(error) = cluster.stop()
        {
            eprintln!("warning: stopping the private PostgreSQL cluster: {error:#}");
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Schema = command {
        print!("{}", graphql::sdl());
        return Ok(());
    }
    if let Command::Openapi = command {
        let doc = billing_api::rest::openapi::document_for(&config.public_base_url);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let database = Database::open(&config).await?;
    let result = run_with_database(command, &config, &database).await;
    database.close();
    result
}

async fn run_with_database(command: Command, config: &Config, database: &Database) -> anyhow::Result<()> {
    db::run_migrations(&database.url).await?;
    match command {
        Command::Serve => serve(config, database).await,
        Command::Migrate => {
            println!("migrations are up to date");
            Ok(())
        }
        Command::Seed { users, orders } => {
            let started = std::time::Instant::now();
            let counts = seed::seed(&database.url, users, orders).await?;
            println!("seeded {} users and {} orders in {:.1?}", counts.users, counts.orders, started.elapsed());
            Ok(())
        }
        Command::Keys { action } => keys(config, database, action).await,
        Command::Merchants { action } => merchants_command(config, database, action).await,
        Command::Schema | Command::Openapi => Ok(()),
        Command::Audit => {
            let app = App::new(config.clone(), &database.url)?;
            let violations = billing_api::domain::audit::audit(app.pool(), &Caller::system()).await?;
            for v in &violations {
                println!("{}\t{}\t{}", v.check, v.rows, v.detail);
            }
            if violations.is_empty() {
                println!("audit: {} checks, no violation", billing_api::domain::audit::CHECKS.len());
                Ok(())
            } else {
                anyhow::bail!("audit: {} violations", violations.len())
            }
        }
        Command::Unresolved { older_than, limit } => {
            let app = App::new(config.clone(), &database.url)?;
            let items =
                billing_api::domain::janitor::unresolved(app.pool(), &Caller::system(), older_than, limit).await?;
            println!("kind\tid\torder\tamount\tage_s\tchecks\tnext_check_at\tlast_error");
            for i in &items {
                println!(
                    "{}\t{}\t{}\t{} {}\t{}\t{}\t{}\t{}",
                    i.kind,
                    i.id,
                    i.order_id,
                    i.amount_cents,
                    i.currency,
                    i.age_seconds,
                    i.checks,
                    i.next_check_at.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
                    i.last_error.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
    }
}

async fn merchants_command(config: &Config, database: &Database, action: MerchantsCommand) -> anyhow::Result<()> {
    use billing_api::domain::merchants;
    let app = App::new(config.clone(), &database.url)?;
    let admin = Caller::system();
    match action {
        MerchantsCommand::Create { name } => {
            let created = merchants::create_merchant(app.pool(), &admin, &name).await?;
            println!("created merchant {} ({})", created.merchant.id, created.merchant.display_name);
            println!("webhook signing secret; store it now, it is not shown again:");
            println!("{}", created.secret.secret);
        }
        MerchantsCommand::List => {
            let conn = app.pool().get().await?;
            let list = merchants::list_merchants(app.pool(), &admin, 1000, 0).await?;
            let ids: Vec<uuid::Uuid> = list.iter().map(|m| m.id).collect();
            let stores = billing_api::db::merchants::stores_of_merchants(&conn, &ids).await?;
            let endpoints = billing_api::db::merchants::endpoints_of_merchants(&conn, &ids).await?;
            for merchant in list {
                println!("{}\t{}", merchant.id, merchant.display_name);
                for store in stores.iter().filter(|s| s.merchant_id == merchant.id) {
                    println!("  store {}\t{}\t{}", store.id, store.store_name, store.office_name);
                }
                for endpoint in endpoints.iter().filter(|e| e.merchant_id == merchant.id) {
                    let state = if endpoint.enabled { "enabled" } else { "disabled" };
                    println!("  endpoint {}\t{}\t{state}", endpoint.id, endpoint.url);
                }
            }
        }
        MerchantsCommand::AddStore { merchant, store_name, office_name } => {
            let store = merchants::create_store(app.pool(), &admin, merchant, &store_name, &office_name).await?;
            println!("created store {} ({})", store.id, store.store_name);
        }
        MerchantsCommand::AddEndpoint { merchant, url } => {
            let allow = config.webhooks.allow_private_targets;
            let endpoint = merchants::add_endpoint(app.pool(), &admin, allow, merchant, &url).await?;
            println!("added endpoint {} ({})", endpoint.id, endpoint.url);
        }
        MerchantsCommand::RotateSecret { merchant, overlap_secs } => {
            let secret = merchants::rotate_secret(app.pool(), &admin, merchant, overlap_secs).await?;
            println!("new webhook signing secret; older ones sign for {overlap_secs} s more. Store it now:");
            println!("{}", secret.secret);
        }
    }
    Ok(())
}

async fn keys(config: &Config, database: &Database, action: KeysCommand) -> anyhow::Result<()> {
    let app = App::new(config.clone(), &database.url)?;
    match action {
        KeysCommand::Create { role, user, merchant, name } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be admin, support, customer or merchant (got {role:?})"))?;
            let created = access::create_key(app.pool(), role, user, merchant, name.as_deref()).await?;
            println!(
                "created {} key {} ({}); store it now, it is not shown again:",
                created.key.role, created.key.id, created.key.name
            );
            println!("{}", created.raw);
        }
        KeysCommand::Revoke { id } => {
            access::revoke_key(app.pool(), id).await?;
            println!("revoked key {id}");
        }
        KeysCommand::List => {
            for key in access::list_keys(app.pool()).await? {
                println!(
                    "{}\t{}\t{}\t{}…\tuser={}\tmerchant={}\t{}",
                    key.id,
                    key.role,
                    key.name,
                    key.key_prefix,
                    key.user_id.map_or("-".to_owned(), |u| u.to_string()),
                    key.merchant_id.map_or("-".to_owned(), |m| m.to_string()),
                    key.revoked_at.map_or("active".to_owned(), |t| format!("revoked {t}"))
                );
            }
        }
    }
    Ok(())
}

/// On the first start of a private cluster: demo data and a development admin key, kept in
/// `.data/dev-admin-key` so later starts print the same key.
async fn first_start(config: &Config, app: &App, database: &Database) -> anyhow::Result<Option<String>> {
    if database.cluster.is_none() {
        return Ok(None);
    }
    let key_file = config.data_dir.join("dev-admin-key");
    if let Ok(key) = std::fs::read_to_string(&key_file) {
        let key = key.trim().to_owned();
        // The cluster may have been removed and made anew since the key was written.
        if access::authenticate(app.pool(), &key).await.is_ok() {
            return Ok(Some(key));
        }
    }
    if users::count(app.pool()).await? == 0 {
        let counts = seed::seed(&database.url, 24, 240).await?;
        demo_story(app).await?;
        tracing::info!(users = counts.users, orders = counts.orders, "loaded demo data");
    }
    let created = access::create_key(app.pool(), Role::Admin, None, None, Some("dev-admin")).await?;
    write_private(&key_file, &created.raw)?;
    Ok(Some(created.raw))
}

/// Demo money moves that go through the real rules, so the ledger shows them too: orders
/// paid from balances, one refunded partly back to the balance, one cancelled after an
/// attempt had started.
async fn demo_story(app: &App) -> anyhow::Result<()> {
    use billing_api::domain::lifecycle::{self, CancelInput, MarkPaidInput};
    use billing_api::domain::orders::{self, OrderFilter, OrderSortField, SortDirection};
    use billing_api::domain::paging::PageRequest;
    use billing_api::domain::refunds::RefundInput;
    use billing_api::domain::{Caller, OrderStatus, PaymentStatus, users};

    let caller = Caller { name: "demo".to_owned(), ..Caller::system() };
    let filter = OrderFilter {
        status: Some(OrderStatus::Pending),
        payment_status: Some(PaymentStatus::Unpaid),
        ..Default::default()
    };
    let page = PageRequest::new(1, 100, "page", "perPage")?;
    let pending = orders::list_orders(
        app.pool(),
        &caller,
        filter,
        OrderSortField::Id,
        SortDirection::Asc,
        billing_api::domain::cursor::Window::Pages(page),
    )
    .await?;
    let mut paid_from_balance = 0;
    let mut spare = Vec::new();
    for order in pending.nodes {
        let Some(user_id) = order.user_id else { continue };
        let balance = users::get_user(app.pool(), &caller, user_id).await?.map_or(0, |u| u.balance_cents);
        if paid_from_balance < 3 && balance >= order.total_cents {
            let input = MarkPaidInput {
                order_id: order.id,
                charge_balance: true,
                note: Some("paid from balance".into()),
                ..Default::default()
            };
            let paid = lifecycle::mark_order_paid(app.pool(), app.providers(), &caller, input).await?;
            if paid_from_balance == 0 {
                let refund = RefundInput {
                    order_id: paid.id,
                    amount_cents: paid.total_cents / 2,
                    reason: Some("goodwill credit".into()),
                    credit_balance: true,
                    ..Default::default()
                };
                billing_api::domain::refunds::refund_order(app.pool(), app.providers(), &caller, refund).await?;
            }
            paid_from_balance += 1;
        } else {
            spare.push(order.id);
        }
    }
    if let Some(&order_id) = spare.first() {
        lifecycle::create_payment(
            app.pool(),
            app.providers(),
            &caller,
            order_id,
            Some("card".into()),
            Default::default(),
        )
        .await?;
        let reason = Some("customer changed their mind during checkout".into());
        lifecycle::cancel_order(
            app.pool(),
            app.providers(),
            &caller,
            CancelInput { order_id, reason, cancelled_at: None },
        )
        .await?;
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

async fn serve(config: &Config, database: &Database) -> anyhow::Result<()> {
    if database.cluster.is_none() {
        // A real deployment: a guessable callback secret would let anyone mark orders paid.
        config.check_production_secrets()?;
    }
    // One serving process per private cluster (held until this function returns).
    let _claim = database.cluster.as_ref().map(LocalCluster::claim_for_serving).transpose()?;
    let setup = App::new(config.clone(), &database.url)?;
    let dev_key = first_start(config, &setup, database).await?;
    // GraphiQL pre-fills the dev key only on a loopback listener (and for loopback hosts).
    let graphiql_key = dev_key.clone().filter(|_| config.bind_addr.ip().is_loopback());
    let app = App::new(Config { graphiql_key, ..config.clone() }, &database.url)?;
    let signalled = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(config.bind_addr)
        .await
        .with_context(|| format!("binding {} (set BIND_ADDR to another address)", config.bind_addr))?;
    let addr = listener.local_addr()?;
    println!("billing-api listening on http://{addr}");
    println!("GraphiQL: http://{addr}/graphiql");
    if let Some(cluster) = &database.cluster {
        println!(
            "private PostgreSQL: {} (to start afresh, stop this server and delete it and {})",
            cluster.root().display(),
            config.data_dir.display()
        );
    }
    if let Some(key) = dev_key {
        println!("development admin key: {key}");
        println!("try: curl -H 'Authorization: Bearer {key}' http://{addr}/api/v1/admin/orders?per_page=2");
    }
    let purger = tokio::spawn(purge_idempotency_keys(app.clone()));
    // Resolves refunds and payments the provider left unknown (several processes may run
    // it on one database).
    let janitor = config.janitor.enabled.then(|| {
        let (pool, providers, tick) = (app.pool().clone(), app.providers().clone(), config.janitor.tick);
        tokio::spawn(billing_api::domain::janitor::run(pool, providers, tick, std::future::pending()))
    });
    // Sends merchant webhooks from the outbox (several processes may run it on one
    // database), woken by NOTIFY.
    let webhooks = if config.webhooks.enabled {
        let worker = billing_api::domain::webhooks::worker::Worker::new(app.pool().clone(), config.webhooks.clone())?;
        Some(tokio::spawn(worker.run(Some(database.url.clone()), std::future::pending())))
    } else {
        None
    };
    // Live order updates: the tail of the event trail starts now (LISTEN on this database),
    // so subscribers find it running; it retries on its own if the database is not there.
    {
        let (app, url) = (app.clone(), database.url.clone());
        tokio::spawn(async move { app.start_live(Some(url)).await });
    }
    let metrics = match config.metrics_bind_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr} (set METRICS_BIND_ADDR to another address)"))?;
            println!("metrics: http://{}/metrics", listener.local_addr()?);
            let router = http::metrics_router(app.clone());
            Some(tokio::spawn(async move { axum::serve(listener, router).await }))
        }
        None => None,
    };
    let settings = http::server::ServeSettings {
        header_read_timeout: config.header_read_timeout,
        max_connections: config.max_connections,
        shutdown_grace: config.shutdown_grace,
    };
    // On SIGTERM/Ctrl-C: stop accepting, let in-flight requests finish, but not for longer
    // than the grace period.
    let stopping_at = std::sync::Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    let signalled = {
        let stopping_at = stopping_at.clone();
        async move {
            signalled.await;
            *stopping_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
        }
    };
    let served =
        http::server::serve(listener, http::router(app.clone()), settings, signalled).await.context("serving HTTP");
    // Mutations whose clients left still run: let them finish (and record their idempotency
    // outcome) within what is left of the grace period.
    let detached = app.detached();
    detached.close();
    let started = *stopping_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let left = config.shutdown_grace.saturating_sub(started.map_or(Default::default(), |s| s.elapsed()));
    if tokio::time::timeout(left, detached.wait()).await.is_err() {
        tracing::warn!(unfinished = detached.len(), "mutations still running after the grace period; exiting");
    }
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    purger.abort();
    if let Some(webhooks) = webhooks {
        // A delivery cut short is sent again when its lease ends (receivers dedupe by
        // webhook-id).
        webhooks.abort();
    }
    if let Some(janitor) = janitor {
        // A pass cut short leaves its claims to the next pass (of this or another process).
        janitor.abort();
    }
    served?;
    tracing::info!("shut down");
    Ok(())
}

/// Forgets idempotency keys and callback signatures past their retention, at start and
/// then hourly.
async fn purge_idempotency_keys(app: App) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match billing_api::domain::idempotency::purge_expired(app.pool(), app.config().idempotency_retention).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged expired idempotency keys"),
            Err(error) => error.log(),
        }
        match billing_api::domain::replay::purge_expired(app.pool()).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged old callback signatures"),
            Err(error) => error.log(),
        }
    }
}

/// Waits for SIGTERM or Ctrl-C. The handlers are installed when this is called, not when
/// the future is first polled: a signal that comes right after the server says it is ready
/// must stop it gracefully, not kill it.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let Ok(mut term) = term else {
                let _ = ctrl_c.await;
                return;
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    }
}

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().with_current_span(true).with_span_list(false).init();
    } else {
        logs.init();
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
