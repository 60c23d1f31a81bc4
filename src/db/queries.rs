//! Query functions. Each takes a connection so callers can compose them in a transaction.
//! Lists keyed by order ids use `= ANY($1)` so a page of orders costs one query per kind.

use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::keyset::{self, Bound, KeyColumn, KeyKind, SortKey};
use super::models::*;
use super::schema::{
    api_keys, balance_ledger, idempotency_keys, order_events, order_items, orders, payments, refunds, users,
};

diesel::define_sql_function! {
    /// SQL `lower(text)`, used for case-insensitive number prefixes.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

// ---------------------------------------------------------------- users

pub async fn find_user(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<User>> {
    users::table.find(id).select(User::as_select()).first(conn).await.optional()
}

/// The owners of the given orders, found through the orders: it can be pipelined with the
/// order lookup itself, before the order's `user_id` is known.
pub async fn users_of_orders(mut conn: &AsyncPgConnection, order_ids: &[i64]) -> QueryResult<Vec<User>> {
    let owners = orders::table.filter(orders::id.eq_any(order_ids)).select(orders::user_id.assume_not_null());
    users::table.filter(users::id.eq_any(owners)).select(User::as_select()).load(&mut conn).await
}

/// Batch lookups take a shared reference so that several can be pipelined on one connection.
pub async fn users_by_ids(mut conn: &AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<User>> {
    users::table.filter(users::id.eq_any(ids)).select(User::as_select()).load(&mut conn).await
}

pub async fn user_email_taken(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.filter(lower(users::email).eq(email.to_lowercase()))))
        .get_result(conn)
        .await
}

pub async fn insert_user(conn: &mut AsyncPgConnection, new: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table).values(new).returning(User::as_returning()).get_result(conn).await
}

pub async fn insert_ledger_entry(conn: &mut AsyncPgConnection, new: &NewLedgerEntry<'_>) -> QueryResult<LedgerEntry> {
    diesel::insert_into(balance_ledger::table).values(new).returning(LedgerEntry::as_returning()).get_result(conn).await
}

pub async fn ledger_for_user(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<LedgerEntry>> {
    balance_ledger::table
        .filter(balance_ledger::user_id.eq(user_id))
        .order(balance_ledger::id.asc())
        .select(LedgerEntry::as_select())
        .load(conn)
        .await
}

// ---------------------------------------------------------------- orders

/// Column an order list is sorted by; ties are broken by id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderSortColumn {
    Id,
    Number,
    Status,
    TotalCents,
    #[default]
    CreatedAt,
    UpdatedAt,
    PaidAt,
}

/// A filtered, sorted page of orders. `None` filters match anything.
#[derive(Debug, Clone, Default)]
pub struct OrderListQuery {
    pub status: Option<i16>,
    pub payment_status: Option<i16>,
    pub payment_method: Option<String>,
    /// Case-insensitive prefix of the order number.
    pub number_prefix: Option<String>,
    pub user_id: Option<i64>,
    /// Orders of one merchant's stores (what a merchant key sees).
    pub merchant_id: Option<uuid::Uuid>,
    pub store_id: Option<uuid::Uuid>,
    /// Only orders of a store (`true`) or only orders without one (`false`).
    pub has_store: Option<bool>,
    pub sort: OrderSortColumn,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
    /// Keyset paging: only rows past (or, `before`, ahead of) this sort key and id.
    pub keyset: Option<Bound>,
    /// Read in the reverse of the list's order (paging backward from a cursor).
    pub reversed: bool,
}

/// Escapes `%`, `_` and `\` so user text matches literally inside LIKE.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn filter_orders<'a, ST: 'a>(
    mut query: orders::BoxedQuery<'a, Pg, ST>,
    q: &OrderListQuery,
) -> orders::BoxedQuery<'a, Pg, ST> {
    if let Some(status) = q.status {
        query = query.filter(orders::status.eq(status));
    }
    if let Some(payment_status) = q.payment_status {
        query = query.filter(orders::payment_status.eq(payment_status));
    }
    if let Some(method) = &q.payment_method {
        query = query.filter(orders::payment_method.eq(method.clone()));
    }
    if let Some(prefix) = &q.number_prefix {
        let pattern = format!("{}%", escape_like(&prefix.to_lowercase()));
        query = query.filter(lower(orders::number).like(pattern));
    }
    if let Some(user_id) = q.user_id {
        query = query.filter(orders::user_id.eq(user_id));
    }
    if let Some(merchant_id) = q.merchant_id {
        query = query.filter(orders::merchant_id.eq(merchant_id));
    }
    if let Some(store_id) = q.store_id {
        query = query.filter(orders::store_id.eq(store_id));
    }
    match q.has_store {
        Some(true) => query = query.filter(orders::store_id.is_not_null()),
        Some(false) => query = query.filter(orders::store_id.is_null()),
        None => {}
    }
    query
}

/// The keyset column of a sort field.
fn key_column(sort: OrderSortColumn) -> KeyColumn {
    use OrderSortColumn as S;
    let column = match sort {
        S::Id => None,
        S::Number => Some("orders.number"),
        S::Status => Some("orders.status"),
        S::TotalCents => Some("orders.total_cents"),
        S::CreatedAt => Some("orders.created_at"),
        S::UpdatedAt => Some("orders.updated_at"),
        S::PaidAt => Some("orders.paid_at"),
    };
    KeyColumn { id: "orders.id", column, small_int: sort == S::Status, nulls_last: sort == S::PaidAt }
}

/// The sort key of `order` for `sort`, as a cursor carries it.
pub fn order_sort_key(order: &Order, sort: OrderSortColumn) -> SortKey {
    use OrderSortColumn as S;
    match sort {
        S::Id => SortKey::Int(order.id),
        S::Number => SortKey::Text(order.number.clone()),
        S::Status => SortKey::Int(i64::from(order.status)),
        S::TotalCents => SortKey::Int(order.total_cents),
        S::CreatedAt => SortKey::Time(order.created_at),
        S::UpdatedAt => SortKey::Time(order.updated_at),
        S::PaidAt => order.paid_at.map_or(SortKey::Null, SortKey::Time),
    }
}

/// The kind of key a sort field's cursors carry.
pub fn order_key_kind(sort: OrderSortColumn) -> KeyKind {
    use OrderSortColumn as S;
    match sort {
        S::Id | S::TotalCents => KeyKind::Int,
        S::Status => KeyKind::SmallInt,
        S::Number => KeyKind::Text,
        S::CreatedAt | S::UpdatedAt => KeyKind::Time,
        S::PaidAt => KeyKind::NullableTime,
    }
}

/// Sorts by `sort` then id; `reversed` reads the list from its other end (paid_at's NULLs,
/// last in the list, then come first).
fn sort_orders<'a, ST: 'a>(
    query: orders::BoxedQuery<'a, Pg, ST>,
    sort: OrderSortColumn,
    descending: bool,
    reversed: bool,
) -> orders::BoxedQuery<'a, Pg, ST> {
    use OrderSortColumn as S;
    let descending = descending != reversed;
    macro_rules! by {
        ($col:expr) => {
            if descending {
                query.order_by(($col.desc(), orders::id.desc()))
            } else {
                query.order_by(($col.asc(), orders::id.asc()))
            }
        };
    }
    match sort {
        S::Id if descending => query.order_by(orders::id.desc()),
        S::Id => query.order_by(orders::id.asc()),
        S::Number => by!(orders::number),
        S::Status => by!(orders::status),
        S::TotalCents => by!(orders::total_cents),
        S::CreatedAt => by!(orders::created_at),
        S::UpdatedAt => by!(orders::updated_at),
        // Unpaid orders have no paid_at; they sort last in both directions (first when read
        // from the other end).
        S::PaidAt if reversed && descending => {
            query.order_by((orders::paid_at.desc().nulls_first(), orders::id.desc()))
        }
        S::PaidAt if reversed => query.order_by((orders::paid_at.asc().nulls_first(), orders::id.asc())),
        S::PaidAt if descending => query.order_by((orders::paid_at.desc().nulls_last(), orders::id.desc())),
        S::PaidAt => query.order_by((orders::paid_at.asc().nulls_last(), orders::id.asc())),
    }
}

/// One page of orders (`q.limit` rows at most, from `q.offset`).
///
/// Past the first page the rows to skip are found by id alone (a deferred join): the sort
/// indexes hold (filter column, sort column, id), so PostgreSQL skips them with an
/// index-only scan instead of reading every skipped row from the table.
///
/// A keyset page (`q.keyset`) starts at its cursor through the same indexes, so its cost
/// does not grow with its depth.
pub async fn list_orders(conn: &mut AsyncPgConnection, q: &OrderListQuery) -> QueryResult<Vec<Order>> {
    let mut rows = filter_orders(orders::table.select(Order::as_select()).into_boxed(), q);
    if let Some(bound) = &q.keyset {
        let Some(condition) = keyset::condition::<orders::table>(&key_column(q.sort), q.descending, bound) else {
            return Ok(Vec::new());
        };
        rows = rows.filter(condition);
    }
    let page = if q.offset == 0 {
        sort_orders(rows, q.sort, q.descending, q.reversed).limit(q.limit)
    } else {
        let ids =
            sort_orders(filter_orders(orders::table.select(orders::id).into_boxed(), q), q.sort, q.descending, false)
                .limit(q.limit)
                .offset(q.offset);
        sort_orders(
            orders::table.select(Order::as_select()).into_boxed().filter(orders::id.eq_any(ids)),
            q.sort,
            q.descending,
            false,
        )
    };
    page.load(conn).await
}

/// How many orders match the filter (paging ignored).
pub async fn count_orders(conn: &mut AsyncPgConnection, q: &OrderListQuery) -> QueryResult<i64> {
    filter_orders(orders::table.select(count_star()).into_boxed(), q).get_result(conn).await
}

/// Several orders by id, in one query.
pub async fn orders_by_ids(mut conn: &AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<Order>> {
    orders::table.filter(orders::id.eq_any(ids)).select(Order::as_select()).load(&mut conn).await
}

/// A shared reference, so the nested rows of the order can be pipelined with it.
pub async fn find_order(mut conn: &AsyncPgConnection, id: i64) -> QueryResult<Option<Order>> {
    orders::table.find(id).select(Order::as_select()).first(&mut conn).await.optional()
}

pub async fn find_order_by_number(conn: &mut AsyncPgConnection, number: &str) -> QueryResult<Option<Order>> {
    orders::table.filter(orders::number.eq(number)).select(Order::as_select()).first(conn).await.optional()
}

/// Reserves the id of the next order, so its number can be derived from it.
pub async fn next_order_id(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("nextval('orders_id_seq')")).get_result(conn).await
}

pub async fn insert_order(conn: &mut AsyncPgConnection, new: &NewOrder<'_>) -> QueryResult<Order> {
    diesel::insert_into(orders::table).values(new).returning(Order::as_returning()).get_result(conn).await
}

pub async fn insert_order_items(
    conn: &mut AsyncPgConnection,
    items: &[NewOrderItem<'_>],
) -> QueryResult<Vec<OrderItem>> {
    diesel::insert_into(order_items::table).values(items).returning(OrderItem::as_returning()).get_results(conn).await
}

/// Sets the price (and so the total) of a one-unit line.
pub async fn set_single_item_price(conn: &mut AsyncPgConnection, item_id: i64, cents: i64) -> QueryResult<()> {
    diesel::update(order_items::table.find(item_id))
        .set((order_items::quantity.eq(1), order_items::unit_price_cents.eq(cents), order_items::total_cents.eq(cents)))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Reads an order and locks its row until the transaction ends (`SELECT … FOR UPDATE`),
/// so concurrent changes of one order serialise.
pub async fn lock_order(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Order>> {
    orders::table.find(id).select(Order::as_select()).for_update().first(conn).await.optional()
}

pub async fn set_order_payment_status(
    conn: &mut AsyncPgConnection,
    id: i64,
    payment_status: i16,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(orders::table.find(id))
        .set((orders::payment_status.eq(payment_status), orders::updated_at.eq(at)))
        .execute(conn)
        .await
        .map(|_| ())
}

// ---------------------------------------------------------------- nested lists
// Shared references, so that the kinds a page selects are pipelined on one connection.

pub async fn items_for_orders(mut conn: &AsyncPgConnection, order_ids: &[i64]) -> QueryResult<Vec<OrderItem>> {
    order_items::table
        .filter(order_items::order_id.eq_any(order_ids))
        .order((order_items::order_id, order_items::id))
        .select(OrderItem::as_select())
        .load(&mut conn)
        .await
}

pub async fn payments_for_orders(mut conn: &AsyncPgConnection, order_ids: &[i64]) -> QueryResult<Vec<Payment>> {
    payments::table
        .filter(payments::order_id.eq_any(order_ids))
        .order((payments::order_id, payments::id))
        .select(Payment::as_select())
        .load(&mut conn)
        .await
}

pub async fn refunds_for_orders(mut conn: &AsyncPgConnection, order_ids: &[i64]) -> QueryResult<Vec<Refund>> {
    refunds::table
        .filter(refunds::order_id.eq_any(order_ids))
        .order((refunds::order_id, refunds::id))
        .select(Refund::as_select())
        .load(&mut conn)
        .await
}

pub async fn events_for_orders(mut conn: &AsyncPgConnection, order_ids: &[i64]) -> QueryResult<Vec<OrderEvent>> {
    order_events::table
        .filter(order_events::order_id.eq_any(order_ids))
        .order((order_events::order_id, order_events::id))
        .select(OrderEvent::as_select())
        .load(&mut conn)
        .await
}

// ---------------------------------------------------------------- payments and events

pub async fn insert_payment(conn: &mut AsyncPgConnection, new: &NewPayment<'_>) -> QueryResult<Payment> {
    diesel::insert_into(payments::table).values(new).returning(Payment::as_returning()).get_result(conn).await
}

/// Takes the order's next event number (the order row stays locked until the transaction
/// ends, so numbers are gap-free and in commit order per order) and returns the order as it
/// now stands.
pub async fn next_event_seq(conn: &mut AsyncPgConnection, order_id: i64) -> QueryResult<Order> {
    diesel::update(orders::table.find(order_id))
        .set(orders::event_seq.eq(orders::event_seq + 1))
        .returning(Order::as_returning())
        .get_result(conn)
        .await
}

pub async fn insert_event(conn: &mut AsyncPgConnection, new: &NewOrderEvent<'_>) -> QueryResult<OrderEvent> {
    diesel::insert_into(order_events::table).values(new).returning(OrderEvent::as_returning()).get_result(conn).await
}

// ---------------------------------------------------------------- api keys

pub async fn insert_api_key(conn: &mut AsyncPgConnection, new: &NewApiKey<'_>) -> QueryResult<ApiKey> {
    diesel::insert_into(api_keys::table).values(new).returning(ApiKey::as_returning()).get_result(conn).await
}

pub async fn find_active_key_by_hash(conn: &mut AsyncPgConnection, hash: &str) -> QueryResult<Option<ApiKey>> {
    api_keys::table
        .filter(api_keys::key_hash.eq(hash))
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKey::as_select())
        .first(conn)
        .await
        .optional()
}

/// Which of `ids` are no longer active keys (revoked or gone).
pub async fn inactive_keys(pool: &super::DbPool, ids: &[i64]) -> Result<Vec<i64>, crate::error::AppError> {
    let mut conn = pool.get().await?;
    let active: Vec<i64> = api_keys::table
        .filter(api_keys::id.eq_any(ids))
        .filter(api_keys::revoked_at.is_null())
        .select(api_keys::id)
        .load(&mut conn)
        .await?;
    Ok(ids.iter().copied().filter(|id| !active.contains(id)).collect())
}

pub async fn list_api_keys(conn: &mut AsyncPgConnection) -> QueryResult<Vec<ApiKey>> {
    api_keys::table.order(api_keys::id.asc()).select(ApiKey::as_select()).load(conn).await
}

/// Revokes an active key; returns whether a key was revoked.
pub async fn revoke_api_key(conn: &mut AsyncPgConnection, id: i64, at: DateTime<Utc>) -> QueryResult<bool> {
    diesel::update(api_keys::table.find(id).filter(api_keys::revoked_at.is_null()))
        .set(api_keys::revoked_at.eq(at))
        .execute(conn)
        .await
        .map(|n| n == 1)
}

// ---------------------------------------------------------------- state changes

pub async fn update_order(conn: &mut AsyncPgConnection, id: i64, changes: &OrderChanges) -> QueryResult<Order> {
    diesel::update(orders::table.find(id)).set(changes).returning(Order::as_returning()).get_result(conn).await
}

/// Reads a user and locks the row until the transaction ends.
pub async fn lock_user(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<User>> {
    users::table.find(id).select(User::as_select()).for_update().first(conn).await.optional()
}

pub async fn set_user_balance(
    conn: &mut AsyncPgConnection,
    id: i64,
    balance_cents: i64,
    at: DateTime<Utc>,
) -> QueryResult<User> {
    diesel::update(users::table.find(id))
        .set((users::balance_cents.eq(balance_cents), users::updated_at.eq(at)))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Reads a payment attempt of an order and locks it until the transaction ends.
pub async fn lock_payment_of_order(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    payment_id: i64,
) -> QueryResult<Option<Payment>> {
    payments::table
        .find(payment_id)
        .filter(payments::order_id.eq(order_id))
        .select(Payment::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn find_payment_of_order(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    payment_id: i64,
) -> QueryResult<Option<Payment>> {
    payments::table
        .find(payment_id)
        .filter(payments::order_id.eq(order_id))
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()
}

/// The attempt that paid an order, if any.
pub async fn succeeded_payment(conn: &mut AsyncPgConnection, order_id: i64) -> QueryResult<Option<Payment>> {
    payments::table
        .filter(payments::order_id.eq(order_id))
        .filter(payments::status.eq(2))
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn update_payment(conn: &mut AsyncPgConnection, id: i64, changes: &PaymentChanges) -> QueryResult<Payment> {
    diesel::update(payments::table.find(id)).set(changes).returning(Payment::as_returning()).get_result(conn).await
}

/// Sets every attempt of an order in `from` status to `to`; returns the ids changed.
pub async fn set_payments_status_where(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    from: &[i16],
    to: i16,
    at: DateTime<Utc>,
) -> QueryResult<Vec<Payment>> {
    diesel::update(payments::table.filter(payments::order_id.eq(order_id)).filter(payments::status.eq_any(from)))
        .set((payments::status.eq(to), payments::updated_at.eq(at)))
        .returning(Payment::as_returning())
        .get_results(conn)
        .await
}

pub async fn insert_refund(conn: &mut AsyncPgConnection, new: &NewRefund<'_>) -> QueryResult<Refund> {
    diesel::insert_into(refunds::table).values(new).returning(Refund::as_returning()).get_result(conn).await
}

pub async fn update_refund(conn: &mut AsyncPgConnection, id: i64, changes: &RefundChanges) -> QueryResult<Refund> {
    diesel::update(refunds::table.find(id)).set(changes).returning(Refund::as_returning()).get_result(conn).await
}

pub async fn find_refund(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Refund>> {
    refunds::table.find(id).select(Refund::as_select()).first(conn).await.optional()
}

/// A refund, locked (inside a transaction that already holds its order's lock).
pub async fn lock_refund(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Refund>> {
    refunds::table.find(id).select(Refund::as_select()).for_update().first(conn).await.optional()
}

/// The live (PENDING or SUCCEEDED) refund a client request key made.
pub async fn refund_of_request(conn: &mut AsyncPgConnection, request_key: &str) -> QueryResult<Option<Refund>> {
    refunds::table
        .filter(refunds::request_key.eq(request_key))
        .filter(refunds::status.ne(3))
        .select(Refund::as_select())
        .first(conn)
        .await
        .optional()
}

/// After the janitor checked an attempt: a PENDING one is checked again at `next`; one
/// resolved meanwhile needs no check.
pub async fn reschedule_payment(
    conn: &mut AsyncPgConnection,
    id: i64,
    next: DateTime<Utc>,
    last_error: Option<&str>,
) -> QueryResult<usize> {
    use diesel::dsl::case_when;
    diesel::update(payments::table.find(id))
        .set((
            // Open attempts stay scheduled: a PENDING one's outcome is unknown, and an
            // AUTHORIZED one's reservation can run out at the provider.
            payments::next_check_at
                .eq(case_when(payments::status.eq_any([1, 5]), Some(next)).otherwise(None::<DateTime<Utc>>)),
            payments::last_error.eq(last_error),
        ))
        .execute(conn)
        .await
}

/// PENDING refunds begun before `before`, oldest first, at most `limit`.
pub async fn unresolved_refunds(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Refund>> {
    refunds::table
        .filter(refunds::status.eq(1))
        .filter(refunds::created_at.lt(before))
        .order((refunds::created_at.asc(), refunds::id.asc()))
        .limit(limit)
        .select(Refund::as_select())
        .load(conn)
        .await
}

/// PENDING payment attempts at a provider that can be asked (they have an intent), begun
/// before `before`, oldest first, at most `limit`.
pub async fn unresolved_payments(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Payment>> {
    payments::table
        .filter(payments::status.eq(1))
        .filter(payments::next_check_at.is_not_null())
        .filter(payments::created_at.lt(before))
        .order((payments::created_at.asc(), payments::id.asc()))
        .limit(limit)
        .select(Payment::as_select())
        .load(conn)
        .await
}

/// How many refunds are PENDING, and when the oldest began.
pub async fn pending_refunds_summary(conn: &mut AsyncPgConnection) -> QueryResult<(i64, Option<DateTime<Utc>>)> {
    refunds::table
        .filter(refunds::status.eq(1))
        .select((count_star(), diesel::dsl::min(refunds::created_at)))
        .first(conn)
        .await
}

/// How many provider payment attempts are PENDING, and when the oldest began.
pub async fn pending_payments_summary(conn: &mut AsyncPgConnection) -> QueryResult<(i64, Option<DateTime<Utc>>)> {
    payments::table
        .filter(payments::status.eq(1))
        .filter(payments::next_check_at.is_not_null())
        .select((count_star(), diesel::dsl::min(payments::created_at)))
        .first(conn)
        .await
}

/// The live (PENDING or SUCCEEDED) due-back refund of an attempt.
pub async fn live_due_back_refund(conn: &mut AsyncPgConnection, payment_id: i64) -> QueryResult<Option<Refund>> {
    refunds::table
        .filter(refunds::payment_id.eq(payment_id))
        .filter(refunds::due_back.eq(true))
        .filter(refunds::status.ne(3))
        .select(Refund::as_select())
        .first(conn)
        .await
        .optional()
}

/// PENDING attempts whose customer authentication deadline has passed, oldest first.
pub async fn authentications_due(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Payment>> {
    payments::table
        .filter(
            payments::status
                .eq(1)
                .and(payments::authentication.is_not_null())
                .and(payments::authentication_expires_at.le(now)),
        )
        .order_by((payments::authentication_expires_at.asc(), payments::id.asc()))
        .limit(limit)
        .select(Payment::as_select())
        .load(conn)
        .await
}

pub async fn find_payment(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Payment>> {
    payments::table.find(id).select(Payment::as_select()).first(conn).await.optional()
}

/// Claims up to `limit` PENDING refunds whose check is due: each one's next check moves to
/// `lease_until`, so no other worker (in this or another process) takes it meanwhile, and
/// the claim holds no lock once its transaction commits. Run it in a transaction: rows
/// another worker is claiming are skipped (`FOR UPDATE SKIP LOCKED`), not waited for.
pub async fn claim_due_refunds(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Refund>> {
    let due = refunds::table
        .filter(refunds::status.eq(1))
        .filter(refunds::next_check_at.le(now))
        .order((refunds::next_check_at.asc(), refunds::id.asc()))
        .limit(limit)
        .select(refunds::id)
        .for_update()
        .skip_locked()
        .load::<i64>(conn)
        .await?;
    diesel::update(refunds::table.filter(refunds::id.eq_any(due)))
        .set((refunds::next_check_at.eq(lease_until), refunds::checks.eq(refunds::checks + 1)))
        .returning(Refund::as_returning())
        .get_results(conn)
        .await
}

/// Claims up to `limit` PENDING payment attempts whose check is due, as `claim_due_refunds`.
pub async fn claim_due_payments(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Payment>> {
    // Open attempts: PENDING, and AUTHORIZED (an authorisation expires at the provider).
    let due = payments::table
        .filter(payments::status.eq_any([1, 5]))
        .filter(payments::next_check_at.le(now))
        .order((payments::next_check_at.asc(), payments::id.asc()))
        .limit(limit)
        .select(payments::id)
        .for_update()
        .skip_locked()
        .load::<i64>(conn)
        .await?;
    diesel::update(payments::table.filter(payments::id.eq_any(due)))
        .set((payments::next_check_at.eq(lease_until), payments::checks.eq(payments::checks + 1)))
        .returning(Payment::as_returning())
        .get_results(conn)
        .await
}

// ---------------------------------------------------------------- idempotency

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys, check_for_backend(diesel::pg::Pg))]
pub struct IdempotencyRecord {
    pub id: i64,
    pub request_hash: String,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Inserts a claim on `(scope, key)`; returns its id, or `None` when the key is taken.
pub async fn claim_idempotency_key(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    locked_until: DateTime<Utc>,
) -> QueryResult<Option<i64>> {
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::scope.eq(scope),
            idempotency_keys::key.eq(key),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::locked_until.eq(locked_until),
        ))
        .on_conflict_do_nothing()
        .returning(idempotency_keys::id)
        .get_result(conn)
        .await
        .optional()
}

/// Extends a claim still running (its holder is alive).
pub async fn extend_idempotency_claim(
    conn: &mut AsyncPgConnection,
    id: i64,
    locked_until: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(idempotency_keys::table.find(id).filter(idempotency_keys::completed_at.is_null()))
        .set(idempotency_keys::locked_until.eq(locked_until))
        .execute(conn)
        .await
}

/// Takes over an unfinished claim on `(scope, key)` for the same request whose lease ran
/// out (its holder died, or its completion was never written); returns its id when taken.
pub async fn take_over_idempotency_key(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
    locked_until: DateTime<Utc>,
) -> QueryResult<Option<i64>> {
    diesel::update(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(scope))
            .filter(idempotency_keys::key.eq(key))
            .filter(idempotency_keys::request_hash.eq(request_hash))
            .filter(idempotency_keys::completed_at.is_null())
            .filter(idempotency_keys::locked_until.is_null().or(idempotency_keys::locked_until.lt(now))),
    )
    .set(idempotency_keys::locked_until.eq(locked_until))
    .returning(idempotency_keys::id)
    .get_result(conn)
    .await
    .optional()
}

pub async fn find_idempotency_key(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
) -> QueryResult<Option<IdempotencyRecord>> {
    idempotency_keys::table
        .filter(idempotency_keys::scope.eq(scope))
        .filter(idempotency_keys::key.eq(key))
        .select(IdempotencyRecord::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn complete_idempotency_key(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: i32,
    body: &str,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(idempotency_keys::table.find(id))
        .set((
            idempotency_keys::response_status.eq(status),
            idempotency_keys::response_body.eq(body),
            idempotency_keys::completed_at.eq(at),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn delete_idempotency_key(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
    diesel::delete(idempotency_keys::table.find(id)).execute(conn).await.map(|_| ())
}

pub async fn delete_idempotency_keys_before(conn: &mut AsyncPgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before))).execute(conn).await
}

/// Records a callback signature as accepted; false when it already was.
pub async fn claim_callback_signature(conn: &mut AsyncPgConnection, signature: &[u8]) -> QueryResult<bool> {
    use crate::db::schema::accepted_callback_signatures as sigs;
    let inserted = diesel::insert_into(sigs::table)
        .values(sigs::signature.eq(signature))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

pub async fn release_callback_signature(conn: &mut AsyncPgConnection, signature: &[u8]) -> QueryResult<usize> {
    use crate::db::schema::accepted_callback_signatures as sigs;
    diesel::delete(sigs::table.filter(sigs::signature.eq(signature))).execute(conn).await
}

pub async fn delete_callback_signatures_before(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
) -> QueryResult<usize> {
    use crate::db::schema::accepted_callback_signatures as sigs;
    diesel::delete(sigs::table.filter(sigs::accepted_at.lt(before))).execute(conn).await
}

pub async fn count_users(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    users::table.select(count_star()).get_result(conn).await
}

/// How many of the order's attempts are AUTHORIZED (a reservation waiting to be captured).
pub async fn count_authorized_payments(mut conn: &AsyncPgConnection, order_id: i64) -> QueryResult<i64> {
    payments::table
        .filter(payments::order_id.eq(order_id))
        .filter(payments::status.eq(crate::domain::PaymentAttemptStatus::Authorized.code()))
        .select(count_star())
        .get_result(&mut conn)
        .await
}

/// Payment attempts of an order that are still open (PENDING or AUTHORIZED).
pub async fn count_pending_payments(mut conn: &AsyncPgConnection, order_id: i64) -> QueryResult<i64> {
    payments::table
        .filter(payments::order_id.eq(order_id))
        .filter(payments::status.eq_any(crate::domain::PaymentAttemptStatus::OPEN.map(|s| s.code())))
        .select(count_star())
        .get_result(&mut conn)
        .await
}
