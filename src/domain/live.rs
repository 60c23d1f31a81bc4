//! Live order updates: one tail of the event trail per process, fanned out to GraphQL
//! subscriptions.
//!
//! - The tail reads `order_events` by `(xid, id)`, only events whose transaction is older
//!   than every transaction still running (migration 9 explains why that order is fixed
//!   and gap-free). So every process sees every event once, in the same order, whichever
//!   process committed it.
//! - It is woken by `LISTEN billing_order_events` (a statement trigger `NOTIFY`s on
//!   commit) and polls as a fallback; a notification only says "look", so a missed one
//!   costs latency, never an event. After a wake that found nothing (a commit waiting on an
//!   older transaction), it looks again soon.
//! - Subscribers get events through a broadcast channel. One that falls behind (the channel
//!   overflowed) reads what it missed from the trail, as a resuming client does.
//! - Limits: subscriptions per key (here) and per connection (the HTTP layer); keys are
//!   rechecked on a timer and a revoked key's subscriptions end.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Jsonb, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use tokio::sync::{Notify, broadcast};

use crate::db::DbPool;
use crate::error::{AppError, AppResult};

/// The channel the trigger of migration 9 notifies.
pub const CHANNEL: &str = "billing_order_events";
/// Events read per pass of the tail.
const BATCH: i64 = 1_000;
/// The most events a resuming subscriber may be behind.
pub const MAX_REPLAY: i64 = 10_000;

/// One event of the trail with the order's current columns (for filters and visibility).
#[derive(Debug, Clone, QueryableByName)]
pub struct LiveEvent {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// The writing transaction's id (xid8, as text).
    #[diesel(sql_type = Text)]
    pub xid: String,
    #[diesel(sql_type = BigInt)]
    pub order_id: i64,
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub actor: String,
    #[diesel(sql_type = Jsonb)]
    pub data: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub user_id: Option<i64>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub merchant_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub store_id: Option<uuid::Uuid>,
    #[diesel(sql_type = SmallInt)]
    pub status: i16,
    #[diesel(sql_type = SmallInt)]
    pub payment_status: i16,
    #[diesel(sql_type = Text)]
    pub payment_method: String,
    #[diesel(sql_type = Text)]
    pub number: String,
}

impl LiveEvent {
    /// Its place in the trail.
    pub fn position(&self) -> Position {
        Position { xid: self.xid.parse().unwrap_or(0), id: self.id }
    }
}

/// A place in the trail: events are ordered by (xid, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub xid: u64,
    pub id: i64,
}

const SELECT: &str = "SELECT e.id, e.xid::text AS xid, e.order_id, e.seq, e.kind, e.actor, e.data, e.created_at, \
    o.user_id, o.merchant_id, o.store_id, o.status, o.payment_status, o.payment_method, o.number \
    FROM order_events e JOIN orders o ON o.id = e.order_id";

/// Whose orders a read of the trail is about: everyone's (the tail, admins and support),
/// one user's or one merchant's (so a confined caller's replay reads only its own rows).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope {
    pub user_id: Option<i64>,
    pub merchant_id: Option<uuid::Uuid>,
}

/// Events past `after`, committed for good (older than every running transaction), in
/// trail order.
pub async fn read_after(pool: &DbPool, after: Position, limit: i64, scope: Scope) -> AppResult<Vec<LiveEvent>> {
    let mut conn = pool.get().await?;
    let rows = diesel::sql_query(format!(
        "{SELECT} WHERE (e.xid, e.id) > ($1::text::xid8, $2) \
         AND e.xid < pg_snapshot_xmin(pg_current_snapshot()) \
         AND ($4::bigint IS NULL OR o.user_id = $4) AND ($5::uuid IS NULL OR o.merchant_id = $5) \
         ORDER BY e.xid, e.id LIMIT $3"
    ))
    .bind::<Text, _>(after.xid.to_string())
    .bind::<BigInt, _>(after.id)
    .bind::<BigInt, _>(limit)
    .bind::<Nullable<BigInt>, _>(scope.user_id)
    .bind::<Nullable<SqlUuid>, _>(scope.merchant_id)
    .load(&mut conn)
    .await?;
    Ok(rows)
}

/// How many events of everyone's lie past `after` (counted up to `cap + 1`): a replay
/// is bounded by the rows it examines, not by the caller's matches among them.
pub async fn count_after(pool: &DbPool, after: Position, cap: i64) -> AppResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = pool.get().await?;
    let row: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM (SELECT 1 FROM order_events e WHERE (e.xid, e.id) > ($1::text::xid8, $2) LIMIT $3) past",
    )
    .bind::<Text, _>(after.xid.to_string())
    .bind::<BigInt, _>(after.id)
    .bind::<BigInt, _>(cap + 1)
    .get_result(&mut conn)
    .await?;
    Ok(row.n)
}

/// One order's events after `seq`, in order.
pub async fn read_order_after(pool: &DbPool, order_id: i64, seq: i64, limit: i64) -> AppResult<Vec<LiveEvent>> {
    let mut conn = pool.get().await?;
    let rows = diesel::sql_query(format!("{SELECT} WHERE e.order_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3"))
        .bind::<BigInt, _>(order_id)
        .bind::<BigInt, _>(seq)
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?;
    Ok(rows)
}

/// Where the trail is now: every event committed from here on comes after it.
pub async fn current_position(pool: &DbPool) -> AppResult<Position> {
    #[derive(QueryableByName)]
    struct Xmin {
        #[diesel(sql_type = Text)]
        xmin: String,
    }
    let mut conn = pool.get().await?;
    let row: Xmin =
        diesel::sql_query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin").get_result(&mut conn).await?;
    // Events of transactions from xmin on are not read yet: start just before them.
    Ok(Position { xid: row.xmin.parse::<u64>().unwrap_or(1).saturating_sub(1), id: i64::MAX })
}

/// Settings of the hub (from configuration).
#[derive(Debug, Clone, Copy)]
pub struct LiveSettings {
    pub poll: Duration,
    pub key_check: Duration,
    pub per_key: usize,
}

/// The per-process hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    events: broadcast::Sender<Arc<LiveEvent>>,
    settings: LiveSettings,
    /// Open subscriptions per API key.
    per_key: Mutex<HashMap<i64, usize>>,
    /// Open WebSockets per API key (their keys are checked too, subscribed or not).
    sockets: Mutex<HashMap<i64, usize>>,
    revoked: Mutex<HashSet<i64>>,
    /// Bumped when keys were rechecked, so subscribers look at `revoked`.
    keys_checked: broadcast::Sender<()>,
}

/// One open subscription's share of its key's limit; released on drop.
pub struct KeySlot {
    hub: Hub,
    key_id: i64,
}

/// A WebSocket's registration of its key, so the key is checked while the socket is open;
/// released on drop.
pub struct SocketKey {
    hub: Hub,
    key_id: i64,
}

impl Drop for SocketKey {
    fn drop(&mut self) {
        release(&self.hub.inner.sockets, self.key_id);
    }
}

fn release(map: &Mutex<HashMap<i64, usize>>, key_id: i64) {
    if let Ok(mut counts) = map.lock()
        && let Some(n) = counts.get_mut(&key_id)
    {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&key_id);
        }
    }
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        release(&self.hub.inner.per_key, self.key_id);
    }
}

impl Hub {
    pub fn new(settings: LiveSettings) -> Self {
        let (events, _) = broadcast::channel(4_096);
        let (keys_checked, _) = broadcast::channel(4);
        Hub {
            inner: Arc::new(Inner {
                events,
                settings,
                per_key: Mutex::new(HashMap::new()),
                sockets: Mutex::new(HashMap::new()),
                revoked: Mutex::new(HashSet::new()),
                keys_checked,
            }),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.inner.events.subscribe()
    }

    pub fn key_checks(&self) -> broadcast::Receiver<()> {
        self.inner.keys_checked.subscribe()
    }

    /// Takes one of the key's subscription slots, or says why not.
    pub fn take_slot(&self, key_id: i64) -> AppResult<KeySlot> {
        let mut counts = self.inner.per_key.lock().map_err(|_| AppError::internal(anyhow::anyhow!("poisoned")))?;
        let n = counts.entry(key_id).or_insert(0);
        if *n >= self.inner.settings.per_key {
            return Err(AppError::Conflict(format!(
                "this API key has {} open subscriptions, the most it may have; end one first",
                *n
            )));
        }
        *n += 1;
        Ok(KeySlot { hub: self.clone(), key_id })
    }

    /// Registers a WebSocket's key (checked on the key timer while the socket is open).
    pub fn register_socket(&self, key_id: i64) -> SocketKey {
        if let Ok(mut sockets) = self.inner.sockets.lock() {
            *sockets.entry(key_id).or_insert(0) += 1;
        }
        SocketKey { hub: self.clone(), key_id }
    }

    pub fn is_revoked(&self, key_id: i64) -> bool {
        self.inner.revoked.lock().map(|r| r.contains(&key_id)).unwrap_or(true)
    }

    /// Open subscriptions (for metrics and tests).
    pub fn open(&self) -> usize {
        self.inner.per_key.lock().map(|c| c.values().sum()).unwrap_or(0)
    }

    /// Starts the tail and the key checks, returning once the tail knows where it starts
    /// (so a subscriber that subscribes afterwards misses nothing the tail will read).
    pub async fn start(&self, pool: DbPool, database_url: Option<String>) {
        let at = loop {
            match current_position(&pool).await {
                Ok(at) => break at,
                Err(error) => {
                    tracing::warn!(error = %error, "live updates: cannot read the trail's position; retrying");
                    tokio::time::sleep(self.inner.settings.poll).await;
                }
            }
        };
        let wake = Arc::new(Notify::new());
        let retry = self.inner.settings.poll * 10;
        if let Some(url) = database_url {
            tokio::spawn(crate::db::listen::listen(url, CHANNEL, wake.clone(), retry));
        }
        tokio::spawn(self.clone().check_keys(pool.clone()));
        let hub = self.clone();
        tokio::spawn(async move { hub.tail(pool, wake, at).await });
    }

    async fn tail(&self, pool: DbPool, wake: Arc<Notify>, mut at: Position) {
        // After a wake that found nothing, look again soon: the commit that notified may be
        // waiting for an older transaction to end.
        let mut retry = Duration::ZERO;
        loop {
            let woken = if retry.is_zero() {
                tokio::time::timeout(self.inner.settings.poll, wake.notified()).await.is_ok()
            } else {
                tokio::time::sleep(retry).await;
                false
            };
            match read_after(&pool, at, BATCH, Scope::default()).await {
                Ok(events) if events.is_empty() => {
                    retry = match (woken, retry.as_millis()) {
                        (true, _) => Duration::from_millis(10),
                        (false, 0) => Duration::ZERO,
                        (false, ms) if ms < 500 => retry * 2,
                        _ => Duration::ZERO,
                    };
                }
                Ok(events) => {
                    let full = events.len() as i64 == BATCH;
                    for event in events {
                        at = event.position();
                        // No receiver is fine: nobody is subscribed.
                        let _ = self.inner.events.send(Arc::new(event));
                    }
                    retry = if full { Duration::from_millis(1) } else { Duration::from_millis(10) };
                }
                Err(error) => {
                    tracing::warn!(error = %error, "live updates: reading the trail failed; retrying");
                    retry = self.inner.settings.poll;
                }
            }
        }
    }

    /// Every `key_check`, marks the keys of open subscriptions that are no longer active.
    async fn check_keys(self, pool: DbPool) {
        loop {
            tokio::time::sleep(self.inner.settings.key_check).await;
            let mut keys: Vec<i64> = match (self.inner.per_key.lock(), self.inner.sockets.lock()) {
                (Ok(subscribed), Ok(sockets)) => subscribed.keys().chain(sockets.keys()).copied().collect(),
                _ => continue,
            };
            keys.sort_unstable();
            keys.dedup();
            if keys.is_empty() {
                continue;
            }
            match crate::db::queries::inactive_keys(&pool, &keys).await {
                Ok(inactive) => {
                    if let Ok(mut revoked) = self.inner.revoked.lock() {
                        // Only keys with open subscriptions or sockets are kept.
                        revoked.retain(|k| keys.contains(k));
                        revoked.extend(inactive);
                    }
                    let _ = self.inner.keys_checked.send(());
                }
                Err(error) => tracing::warn!(error = %error, "live updates: checking keys failed"),
            }
        }
    }
}
