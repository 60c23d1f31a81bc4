//! Per-request DataLoaders: nested lists of a page of orders cost one query per kind.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use crate::db::{DbPool, models, queries};
use crate::error::AppError;

/// Rows that belong to an order and load in one batch for many orders.
pub trait OrderChild: Clone + Send + Sync + 'static {
    fn order_id(&self) -> i64;
    fn load_for(
        conn: &mut AsyncPgConnection,
        order_ids: &[i64],
    ) -> impl Future<Output = QueryResult<Vec<Self>>> + Send;
}

macro_rules! order_child {
    ($model:ty, $query:path) => {
        impl OrderChild for $model {
            fn order_id(&self) -> i64 {
                self.order_id
            }
            async fn load_for(
                conn: &mut AsyncPgConnection,
                order_ids: &[i64],
            ) -> QueryResult<Vec<Self>> {
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
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| Arc::new(AppError::from(e)))?;
        let rows = T::load_for(&mut conn, keys)
            .await
            .map_err(|e| Arc::new(AppError::from(e)))?;
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
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| Arc::new(AppError::from(e)))?;
        let users = queries::users_by_ids(&mut conn, keys)
            .await
            .map_err(|e| Arc::new(AppError::from(e)))?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// The loaders of one request.
pub struct Loaders {
    pub items: DataLoader<ChildrenLoader<models::OrderItem>>,
    pub payments: DataLoader<ChildrenLoader<models::Payment>>,
    pub refunds: DataLoader<ChildrenLoader<models::Refund>>,
    pub events: DataLoader<ChildrenLoader<models::OrderEvent>>,
    pub users: DataLoader<UserLoader>,
}

impl Loaders {
    pub fn new(pool: DbPool) -> Self {
        fn children<T: OrderChild>(pool: &DbPool) -> DataLoader<ChildrenLoader<T>> {
            DataLoader::new(
                ChildrenLoader {
                    pool: pool.clone(),
                    _rows: PhantomData,
                },
                tokio::spawn,
            )
        }
        Self {
            items: children(&pool),
            payments: children(&pool),
            refunds: children(&pool),
            events: children(&pool),
            users: DataLoader::new(UserLoader { pool }, tokio::spawn),
        }
    }
}
