//! Per-request loading of what orders nest: items, payments, refunds, events and users.
//!
//! Whatever produces orders (a page, `order`, a mutation) calls [`Loaders::prefetch`] with
//! the selection. The selected kinds load for all those orders at once, one query per kind,
//! pipelined on one pooled connection: one round trip whatever the page size and however
//! many kinds are selected. Field resolvers then read the request's cache without waiting,
//! so every field of an order completes on its first poll. An order that was not
//! prefetched loads what a field needs on first use.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_graphql::Lookahead;
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use crate::db::{DbPool, budget, models, queries};
use crate::error::{AppError, AppResult};

/// Which nested fields a selection of orders asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    pub items: bool,
    pub payments: bool,
    pub refunds: bool,
    pub events: bool,
    pub user: bool,
    /// The store, merchant and payment request of store orders (seed 001).
    pub merchant: bool,
}

impl Wanted {
    /// From the selection set of an `Order` (fragments included, aliases by field name).
    pub fn selected_in(order: &Lookahead<'_>) -> Self {
        Self {
            items: order.field("items").exists(),
            payments: order.field("payments").exists(),
            // A payment's state and refunded amount read its order's refunds.
            refunds: order.field("refunds").exists() || {
                let payments = order.field("payments");
                payments.field("state").exists()
                    || payments.field("amountRefundedCents").exists()
                    || payments.field("amountCapturedCents").exists()
            },
            events: order.field("events").exists(),
            user: order.field("user").exists(),
            merchant: ["store", "merchant", "paymentRequest"].iter().any(|f| order.field(f).exists()),
        }
        .with_status(order.field("merchantStatus").exists())
    }

    /// Whatever either selection asks for (a connection's `nodes` and `edges { node }`).
    pub fn or(self, other: Self) -> Self {
        Self {
            items: self.items || other.items,
            payments: self.payments || other.payments,
            refunds: self.refunds || other.refunds,
            events: self.events || other.events,
            user: self.user || other.user,
            merchant: self.merchant || other.merchant,
        }
    }

    /// The seed status needs the newest attempt, so it loads the attempts.
    fn with_status(mut self, status: bool) -> Self {
        self.payments |= status;
        self
    }
}

/// Rows loaded so far in this request. A key present with an empty list means "loaded,
/// none", which is different from "not loaded".
#[derive(Default)]
struct Cache {
    items: HashMap<i64, Vec<models::OrderItem>>,
    payments: HashMap<i64, Vec<models::Payment>>,
    refunds: HashMap<i64, Vec<models::Refund>>,
    events: HashMap<i64, Vec<models::OrderEvent>>,
    users: HashMap<i64, models::User>,
    requests: HashMap<i64, Option<models::PaymentRequest>>,
    stores: HashMap<uuid::Uuid, models::Store>,
    merchants: HashMap<uuid::Uuid, models::Merchant>,
}

/// What a store order nests from seed 001.
#[derive(Debug, Clone, Default)]
pub struct MerchantParts {
    pub request: Option<models::PaymentRequest>,
    pub store: Option<models::Store>,
    pub merchant: Option<models::Merchant>,
}

/// The loaders of one request.
pub struct Loaders {
    pool: DbPool,
    cache: Mutex<Cache>,
}

/// The ids of `ids` that `loaded` does not hold yet, without repeats; none when not wanted.
fn missing<V>(wanted: bool, ids: &[i64], loaded: &HashMap<i64, V>) -> Vec<i64> {
    if !wanted {
        return Vec::new();
    }
    let mut out: Vec<i64> = ids.iter().copied().filter(|id| !loaded.contains_key(id)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Runs `load` only when there is something to load, so no statement is sent for nothing.
async fn when<T, F>(ids: &[i64], load: impl FnOnce() -> F) -> QueryResult<Vec<T>>
where
    F: Future<Output = QueryResult<Vec<T>>>,
{
    if ids.is_empty() { Ok(Vec::new()) } else { load().await }
}

/// Files `rows` under their order, marking every asked id as loaded. Two loads of one
/// order can overlap (sibling lists that share orders each find it missing); the first to
/// file it wins and the other's rows for it are dropped, so no row is ever filed twice.
fn group<T>(into: &mut HashMap<i64, Vec<T>>, asked: &[i64], rows: Vec<T>, order_id: fn(&T) -> i64) {
    let mut fresh: HashMap<i64, Vec<T>> = asked.iter().map(|id| (*id, Vec::new())).collect();
    for row in rows {
        if let Some(list) = fresh.get_mut(&order_id(&row)) {
            list.push(row);
        }
    }
    for (id, list) in fresh {
        into.entry(id).or_insert(list);
    }
}

/// The order ids each order-keyed kind is to be loaded for; an empty list sends nothing.
#[derive(Default)]
struct Asked {
    items: Vec<i64>,
    payments: Vec<i64>,
    refunds: Vec<i64>,
    events: Vec<i64>,
}

/// The rows [`Asked::load`] returns, kind by kind.
type Children = (Vec<models::OrderItem>, Vec<models::Payment>, Vec<models::Refund>, Vec<models::OrderEvent>);

impl Asked {
    fn is_empty(&self) -> bool {
        [&self.items, &self.payments, &self.refunds, &self.events].iter().all(|ids| ids.is_empty())
    }

    /// One query per asked kind. Through a shared reference the queries are pipelined with
    /// each other and with whatever the caller joins this with: all are sent before the
    /// first answer is read (diesel-async), and PostgreSQL runs them in order.
    async fn load(&self, conn: &AsyncPgConnection) -> QueryResult<Children> {
        futures_util::try_join!(
            when(&self.items, || queries::items_for_orders(conn, &self.items)),
            when(&self.payments, || queries::payments_for_orders(conn, &self.payments)),
            when(&self.refunds, || queries::refunds_for_orders(conn, &self.refunds)),
            when(&self.events, || queries::events_for_orders(conn, &self.events)),
        )
    }
}

impl Loaders {
    pub fn new(pool: DbPool) -> Self {
        Self { pool, cache: Mutex::new(Cache::default()) }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // The cache is plain data: a panic elsewhere cannot leave it half-updated.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Files what was loaded; every asked order id counts as loaded, rows or not.
    fn store(
        &self,
        asked: &Asked,
        (items, payments, refunds, events): Children,
        users: Vec<models::User>,
    ) -> AppResult<()> {
        budget::charge_rows(items.len() + payments.len() + refunds.len() + events.len() + users.len())?;
        let mut cache = self.cache();
        group(&mut cache.items, &asked.items, items, |r| r.order_id);
        group(&mut cache.payments, &asked.payments, payments, |r| r.order_id);
        group(&mut cache.refunds, &asked.refunds, refunds, |r| r.order_id);
        group(&mut cache.events, &asked.events, events, |r| r.order_id);
        cache.users.extend(users.into_iter().map(|u| (u.id, u)));
        Ok(())
    }

    /// Forgets what this request loaded for `order` and its owner: a mutation changed them,
    /// and what it returns must show the change (a second mutation in one request would
    /// otherwise answer from what the first one loaded).
    pub fn forget(&self, order: &models::Order) {
        let mut cache = self.cache();
        cache.items.remove(&order.id);
        cache.payments.remove(&order.id);
        cache.refunds.remove(&order.id);
        cache.events.remove(&order.id);
        cache.requests.remove(&order.id);
        if let Some(user_id) = order.user_id {
            cache.users.remove(&user_id);
        }
    }

    /// Loads what `wanted` selects for `orders` that this request has not loaded yet.
    /// Forgets everything loaded (a subscription's next update reads afresh).
    pub fn clear(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Cache::default();
        }
    }

    pub async fn prefetch(&self, wanted: Wanted, orders: &[models::Order]) -> AppResult<()> {
        // The orders themselves were read for this request too.
        budget::charge_rows(orders.len())?;
        let order_ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
        let user_ids: Vec<i64> = orders.iter().filter_map(|o| o.user_id).collect();
        self.fetch(wanted, &order_ids, &user_ids).await?;
        if wanted.merchant {
            self.fetch_merchant_parts(orders).await?;
        }
        Ok(())
    }

    /// Loads the payment requests, stores and merchants of the store orders among `orders`
    /// that this request has not loaded yet: three queries pipelined, one round trip.
    async fn fetch_merchant_parts(&self, orders: &[models::Order]) -> AppResult<()> {
        let (order_ids, store_ids, merchant_ids) = {
            let cache = self.cache();
            let store_orders: Vec<&models::Order> = orders.iter().filter(|o| o.store_id.is_some()).collect();
            let mut order_ids: Vec<i64> =
                store_orders.iter().map(|o| o.id).filter(|id| !cache.requests.contains_key(id)).collect();
            let mut store_ids: Vec<uuid::Uuid> =
                store_orders.iter().filter_map(|o| o.store_id).filter(|id| !cache.stores.contains_key(id)).collect();
            let mut merchant_ids: Vec<uuid::Uuid> = store_orders
                .iter()
                .filter_map(|o| o.merchant_id)
                .filter(|id| !cache.merchants.contains_key(id))
                .collect();
            for ids in [&mut store_ids, &mut merchant_ids] {
                ids.sort_unstable();
                ids.dedup();
            }
            order_ids.sort_unstable();
            order_ids.dedup();
            (order_ids, store_ids, merchant_ids)
        };
        if order_ids.is_empty() && store_ids.is_empty() && merchant_ids.is_empty() {
            return Ok(());
        }
        budget::check_statements()?;
        let pooled = self.pool.get().await?;
        let conn: &AsyncPgConnection = &pooled;
        let (requests, stores, merchants) = futures_util::try_join!(
            when(&order_ids, || crate::db::merchants::payment_requests_for_orders(conn, &order_ids)),
            async {
                if store_ids.is_empty() {
                    Ok(Vec::new())
                } else {
                    crate::db::merchants::stores_by_ids(conn, &store_ids).await
                }
            },
            async {
                if merchant_ids.is_empty() {
                    Ok(Vec::new())
                } else {
                    crate::db::merchants::merchants_by_ids(conn, &merchant_ids).await
                }
            },
        )?;
        drop(pooled);
        budget::charge_rows(requests.len() + stores.len() + merchants.len())?;
        let mut cache = self.cache();
        for id in &order_ids {
            cache.requests.entry(*id).or_insert(None);
        }
        for request in requests {
            cache.requests.insert(request.order_id, Some(request));
        }
        cache.stores.extend(stores.into_iter().map(|s| (s.id, s)));
        cache.merchants.extend(merchants.into_iter().map(|m| (m.id, m)));
        Ok(())
    }

    /// The seed 001 parts of `order` (all `None` for an order without a store).
    pub async fn merchant_parts(&self, order: &models::Order) -> AppResult<MerchantParts> {
        if order.store_id.is_none() {
            return Ok(MerchantParts::default());
        }
        let read = |cache: &Cache| -> Option<MerchantParts> {
            let request = cache.requests.get(&order.id)?.clone();
            let store = Some(cache.stores.get(&order.store_id?)?.clone());
            let merchant = Some(cache.merchants.get(&order.merchant_id?)?.clone());
            Some(MerchantParts { request, store, merchant })
        };
        if let Some(parts) = read(&self.cache()) {
            return Ok(parts);
        }
        self.fetch_merchant_parts(std::slice::from_ref(order)).await?;
        Ok(read(&self.cache()).unwrap_or_default())
    }

    async fn fetch(&self, wanted: Wanted, order_ids: &[i64], user_ids: &[i64]) -> AppResult<()> {
        let (asked, users) = {
            let cache = self.cache();
            let asked = Asked {
                items: missing(wanted.items, order_ids, &cache.items),
                payments: missing(wanted.payments, order_ids, &cache.payments),
                refunds: missing(wanted.refunds, order_ids, &cache.refunds),
                events: missing(wanted.events, order_ids, &cache.events),
            };
            (asked, missing(wanted.user, user_ids, &cache.users))
        };
        if asked.is_empty() && users.is_empty() {
            return Ok(());
        }
        budget::check_statements()?;
        let pooled = self.pool.get().await?;
        let conn: &AsyncPgConnection = &pooled;
        let (children, user_rows) =
            futures_util::try_join!(asked.load(conn), when(&users, || queries::users_by_ids(conn, &users)))?;
        drop(pooled);
        self.store(&asked, children, user_rows)
    }

    /// One order by id with the kinds `wanted` selects, all pipelined on one connection: a
    /// single round trip, because the nested rows are keyed by the id the caller already
    /// has (the owner is found through the order). Whether the caller may see the order is
    /// for the caller to decide ([`crate::domain::orders::visible_to`]); the nested rows
    /// stay in this request's cache and are only reachable through an `Order` it returns.
    pub async fn order_with(&self, wanted: Wanted, id: i64) -> AppResult<Option<models::Order>> {
        let pick = |on: bool| if on { vec![id] } else { Vec::new() };
        let asked = Asked {
            items: pick(wanted.items),
            payments: pick(wanted.payments),
            refunds: pick(wanted.refunds),
            events: pick(wanted.events),
        };
        let owner = pick(wanted.user);
        budget::check_statements()?;
        let pooled = self.pool.get().await?;
        let conn: &AsyncPgConnection = &pooled;
        let (order, children, user_rows) = futures_util::try_join!(
            queries::find_order(conn, id),
            asked.load(conn),
            when(&owner, || queries::users_of_orders(conn, &owner)),
        )?;
        drop(pooled);
        if order.is_some() {
            budget::charge_rows(1)?;
            self.store(&asked, children, user_rows)?;
        }
        Ok(order)
    }

    /// A cached value, or `None` when this request has not loaded it.
    fn cached<T: Clone>(&self, pick: fn(&Cache) -> &HashMap<i64, T>, id: i64) -> Option<T> {
        pick(&self.cache()).get(&id).cloned()
    }

    /// Reads from the cache, loading `wanted` for this one order first when it is not there.
    async fn one<T: Clone>(
        &self,
        pick: fn(&Cache) -> &HashMap<i64, T>,
        wanted: Wanted,
        order_id: i64,
        user_id: i64,
        key: i64,
    ) -> AppResult<Option<T>> {
        if let Some(hit) = self.cached(pick, key) {
            return Ok(Some(hit));
        }
        self.fetch(wanted, &[order_id], &[user_id]).await?;
        Ok(self.cached(pick, key))
    }

    /// Loads the refunds of these orders that this request has not loaded yet: at most
    /// one statement (payments list their state from them).
    pub async fn prefetch_refunds(&self, order_ids: &[i64]) -> AppResult<()> {
        self.fetch(Wanted { refunds: true, ..Wanted::default() }, order_ids, &[]).await
    }

    pub async fn items(&self, order_id: i64) -> AppResult<Vec<models::OrderItem>> {
        let wanted = Wanted { items: true, ..Wanted::default() };
        Ok(self.one(|c| &c.items, wanted, order_id, 0, order_id).await?.unwrap_or_default())
    }

    pub async fn payments(&self, order_id: i64) -> AppResult<Vec<models::Payment>> {
        let wanted = Wanted { payments: true, ..Wanted::default() };
        Ok(self.one(|c| &c.payments, wanted, order_id, 0, order_id).await?.unwrap_or_default())
    }

    pub async fn refunds(&self, order_id: i64) -> AppResult<Vec<models::Refund>> {
        let wanted = Wanted { refunds: true, ..Wanted::default() };
        Ok(self.one(|c| &c.refunds, wanted, order_id, 0, order_id).await?.unwrap_or_default())
    }

    pub async fn events(&self, order_id: i64) -> AppResult<Vec<models::OrderEvent>> {
        let wanted = Wanted { events: true, ..Wanted::default() };
        Ok(self.one(|c| &c.events, wanted, order_id, 0, order_id).await?.unwrap_or_default())
    }

    /// The owner of an order; an order always has one, so absence is an internal error.
    pub async fn user(&self, order_id: i64, user_id: i64) -> AppResult<models::User> {
        let wanted = Wanted { user: true, ..Wanted::default() };
        self.one(|c| &c.users, wanted, order_id, user_id, user_id)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("order {order_id} has no user {user_id}")))
    }
}
