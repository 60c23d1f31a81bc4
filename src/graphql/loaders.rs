//! Per-request DataLoaders: nested lists of a page of orders cost one query per kind.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use crate::db::{DbPool, models, queries};
use crate::error::AppError;

/// Rows that belong to an order and load in one batch for many orders.
pub trait OrderChild: Clone + Send + Sync + 'static {
    fn order_id(&self) -> i64;
    fn load_for(conn: &mut AsyncPgConnection, order_ids: &[i64])
    -> impl Future<Output = QueryResult<Vec<Self>>> + Send;
}

macro_rules! order_child {
    ($model:ty, $query:path) => {
        impl OrderChild for $model {
            fn order_id(&self) -> i64 {
                self.order_id
            }
            async fn load_for(conn: &mut AsyncPgConnection, order_ids: &[i64]) -> QueryResult<Vec<Self>> {
                $query(conn, order_ids).await
            }
        }
    };
}

order_child!(models::OrderItem, queries::items_for_orders);
order_child!(models::Payment, queries::payments_for_orders);
order_child!(models::Refund, queries::refunds_for_orders);
order_child!(models::OrderEvent, queries::events_for_orders);

/// Loads the children of many orders at once, grouped by order id.
pub struct ChildrenLoader<T> {
    pool: DbPool,
    _rows: PhantomData<fn() -> T>,
}

impl<T: OrderChild> Loader<i64> for ChildrenLoader<T> {
    type Value = Vec<T>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<T>>, Self::Error> {
        let mut conn = self.pool.get().await.map_err(|e| Arc::new(AppError::from(e)))?;
        let rows = T::load_for(&mut conn, keys).await.map_err(|e| Arc::new(AppError::from(e)))?;
        let mut grouped: HashMap<i64, Vec<T>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            grouped.entry(row.order_id()).or_default().push(row);
        }
        Ok(grouped)
    }
}

/// Loads users by id.
pub struct UserLoader {
    pool: DbPool,
}

impl Loader<i64> for UserLoader {
    type Value = models::User;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, models::User>, Self::Error> {
        let mut conn = self.pool.get().await.map_err(|e| Arc::new(AppError::from(e)))?;
        let users = queries::users_by_ids(&mut conn, keys).await.map_err(|e| Arc::new(AppError::from(e)))?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// A loader with a per-request cache, so rows prefetched for a page are not loaded again.
pub type Cached<T> = DataLoader<T, HashMapCache>;

/// The loaders of one request.
pub struct Loaders {
    pub items: Cached<ChildrenLoader<models::OrderItem>>,
    pub payments: Cached<ChildrenLoader<models::Payment>>,
    pub refunds: Cached<ChildrenLoader<models::Refund>>,
    pub events: Cached<ChildrenLoader<models::OrderEvent>>,
    pub users: Cached<UserLoader>,
}

impl Loaders {
    pub fn new(pool: DbPool) -> Self {
        fn cached<T: Loader<i64>>(loader: T) -> Cached<T> {
            DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default())
        }
        fn children<T: OrderChild>(pool: &DbPool) -> Cached<ChildrenLoader<T>> {
            cached(ChildrenLoader { pool: pool.clone(), _rows: PhantomData })
        }
        Self {
            items: children(&pool),
            payments: children(&pool),
            refunds: children(&pool),
            events: children(&pool),
            users: cached(UserLoader { pool }),
        }
    }

    /// Loads, for a page of orders, every nested list `nodes` selects: one query per kind,
    /// whatever the page size. The DataLoader's own batching depends on how fast resolvers
    /// are polled within its delay; this does not.
    pub async fn prefetch_for_page(
        &self,
        nodes: &async_graphql::Lookahead<'_>,
        orders: &[models::Order],
    ) -> Result<(), Arc<AppError>> {
        async fn prime<T: Loader<i64, Error = Arc<AppError>>>(
            selected: bool,
            loader: &Cached<T>,
            keys: &[i64],
        ) -> Result<(), Arc<AppError>> {
            if selected && !keys.is_empty() {
                loader.load_many(keys.iter().copied()).await?;
            }
            Ok(())
        }
        let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
        let mut user_ids: Vec<i64> = orders.iter().map(|o| o.user_id).collect();
        user_ids.sort_unstable();
        user_ids.dedup();
        futures_util::try_join!(
            prime(nodes.field("items").exists(), &self.items, &ids),
            prime(nodes.field("payments").exists(), &self.payments, &ids),
            prime(nodes.field("refunds").exists(), &self.refunds, &ids),
            prime(nodes.field("events").exists(), &self.events, &ids),
            prime(nodes.field("user").exists(), &self.users, &user_ids),
        )?;
        Ok(())
    }
}
