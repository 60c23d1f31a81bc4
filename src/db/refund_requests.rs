//! Queries of refund requests (seed 004) and their transitions.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::models::{RefundRequest, RefundRequestTransition};
use super::schema::{orders, refund_request_transitions, refund_requests};

/// A new request; the id is taken first so the refund key can name it.
pub struct NewRequest<'a> {
    pub order_id: i64,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub requester: &'a str,
    pub requester_role: &'a str,
    pub request_reason: &'a str,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewRequest<'_>) -> QueryResult<RefundRequest> {
    let id: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("nextval('refund_requests_id_seq')"))
        .get_result(conn)
        .await?;
    diesel::insert_into(refund_requests::table)
        .values((
            refund_requests::id.eq(id),
            refund_requests::order_id.eq(new.order_id),
            refund_requests::amount_cents.eq(new.amount_cents),
            refund_requests::currency.eq(new.currency),
            refund_requests::requester.eq(new.requester),
            refund_requests::requester_role.eq(new.requester_role),
            refund_requests::request_reason.eq(new.request_reason),
            refund_requests::refund_key.eq(refund_key(id)),
        ))
        .returning(RefundRequest::as_returning())
        .get_result(conn)
        .await
}

/// The request key the refund issuing request `id` carries.
pub fn refund_key(id: i64) -> String {
    format!("refund-request/{id}")
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<RefundRequest>> {
    refund_requests::table.find(id).select(RefundRequest::as_select()).first(conn).await.optional()
}

pub async fn lock(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<RefundRequest>> {
    refund_requests::table.find(id).select(RefundRequest::as_select()).for_update().first(conn).await.optional()
}

pub async fn find_by_refund_key(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<Option<RefundRequest>> {
    refund_requests::table
        .filter(refund_requests::refund_key.eq(key))
        .select(RefundRequest::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// The open (PENDING or PROCESSING) request of an order, if any.
pub async fn open_of_order(conn: &mut AsyncPgConnection, order_id: i64) -> QueryResult<Option<RefundRequest>> {
    refund_requests::table
        .filter(refund_requests::order_id.eq(order_id).and(refund_requests::status.eq_any([1i16, 2])))
        .select(RefundRequest::as_select())
        .first(conn)
        .await
        .optional()
}

/// What a transition changes.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = refund_requests)]
pub struct Changes {
    pub status: Option<i16>,
    pub response_reason: Option<Option<String>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<Option<DateTime<Utc>>>,
    pub issued_at: Option<Option<DateTime<Utc>>>,
}

pub async fn update(conn: &mut AsyncPgConnection, id: i64, changes: &Changes) -> QueryResult<RefundRequest> {
    diesel::update(refund_requests::table.find(id))
        .set(changes)
        .returning(RefundRequest::as_returning())
        .get_result(conn)
        .await
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_transition(
    conn: &mut AsyncPgConnection,
    request_id: i64,
    from: Option<i16>,
    to: i16,
    actor: &str,
    role: &str,
    reason: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(refund_request_transitions::table)
        .values((
            refund_request_transitions::request_id.eq(request_id),
            refund_request_transitions::from_status.eq(from),
            refund_request_transitions::to_status.eq(to),
            refund_request_transitions::actor.eq(actor),
            refund_request_transitions::role.eq(role),
            refund_request_transitions::reason.eq(reason),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn transitions_of(mut conn: &AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<RefundRequestTransition>> {
    refund_request_transitions::table
        .filter(refund_request_transitions::request_id.eq_any(ids))
        .order_by((refund_request_transitions::request_id.asc(), refund_request_transitions::id.asc()))
        .select(RefundRequestTransition::as_select())
        .load(&mut conn)
        .await
}

pub async fn of_orders(mut conn: &AsyncPgConnection, order_ids: &[i64]) -> QueryResult<Vec<RefundRequest>> {
    refund_requests::table
        .filter(refund_requests::order_id.eq_any(order_ids))
        .order_by((refund_requests::order_id.asc(), refund_requests::id.asc()))
        .select(RefundRequest::as_select())
        .load(&mut conn)
        .await
}

/// Filters of the list; the visibility filters (user, merchant) come from the caller.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub order_id: Option<i64>,
    pub status: Option<i16>,
    pub valid: Option<bool>,
    pub user_id: Option<i64>,
    pub merchant_id: Option<uuid::Uuid>,
    pub limit: i64,
    pub offset: i64,
}

/// SQL of `valid`: a request that can still lead to money back (or did). DENIED and
/// CANCELLED are not valid; a PENDING one is valid while its order is paid and can still
/// cover it; PROCESSING and ISSUED are.
pub const VALID_SQL: &str = "(CASE refund_requests.status WHEN 4 THEN false WHEN 5 THEN false \
    WHEN 1 THEN (o.payment_status IN (3, 5) AND o.total_cents - o.refunded_cents - o.refund_pending_cents >= refund_requests.amount_cents) \
    ELSE true END)";

/// One page of requests, newest first, with each one's `valid`.
pub async fn list(conn: &mut AsyncPgConnection, q: &ListQuery) -> QueryResult<Vec<(RefundRequest, bool)>> {
    let mut query =
        refund_requests::table.inner_join(orders::table.on(orders::id.eq(refund_requests::order_id))).into_boxed();
    if let Some(order_id) = q.order_id {
        query = query.filter(refund_requests::order_id.eq(order_id));
    }
    if let Some(status) = q.status {
        query = query.filter(refund_requests::status.eq(status));
    }
    if let Some(user_id) = q.user_id {
        query = query.filter(orders::user_id.eq(user_id));
    }
    if let Some(merchant_id) = q.merchant_id {
        query = query.filter(orders::merchant_id.eq(merchant_id));
    }
    let valid_sql = VALID_SQL.replace("o.", "orders.");
    if let Some(valid) = q.valid {
        query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&valid_sql).eq(valid));
    }
    query
        .order_by((refund_requests::created_at.desc(), refund_requests::id.desc()))
        .limit(q.limit)
        .offset(q.offset)
        .select((RefundRequest::as_select(), diesel::dsl::sql::<diesel::sql_types::Bool>(&valid_sql)))
        .load(conn)
        .await
}

/// The requests of the given orders with each one's `valid`, in one query.
pub async fn of_orders_with_valid(
    mut conn: &AsyncPgConnection,
    order_ids: &[i64],
) -> QueryResult<Vec<(RefundRequest, bool)>> {
    let valid_sql = VALID_SQL.replace("o.", "orders.");
    refund_requests::table
        .inner_join(orders::table.on(orders::id.eq(refund_requests::order_id)))
        .filter(refund_requests::order_id.eq_any(order_ids))
        .order_by((refund_requests::order_id.asc(), refund_requests::id.asc()))
        .select((RefundRequest::as_select(), diesel::dsl::sql::<diesel::sql_types::Bool>(&valid_sql)))
        .load(&mut conn)
        .await
}
