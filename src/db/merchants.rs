//! Queries of merchants, their stores, endpoints and signing secrets, and of the payment
//! requests (seed 001) their stores' orders carry.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::{Merchant, MerchantEndpoint, MerchantSecret, Order, PaymentRequest, Store};
use super::schema::{merchant_endpoints, merchant_secrets, merchants, orders, payment_requests, stores};

pub async fn insert_merchant(conn: &mut AsyncPgConnection, display_name: &str) -> QueryResult<Merchant> {
    diesel::insert_into(merchants::table)
        .values(merchants::display_name.eq(display_name))
        .returning(Merchant::as_returning())
        .get_result(conn)
        .await
}

pub async fn find_merchant(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Merchant>> {
    merchants::table.find(id).select(Merchant::as_select()).first(conn).await.optional()
}

/// The merchant, locked until the transaction ends (its endpoints and secrets change one
/// request at a time).
pub async fn lock_merchant(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Merchant>> {
    merchants::table.find(id).select(Merchant::as_select()).for_update().first(conn).await.optional()
}

/// The merchant's endpoints: (all, enabled).
pub async fn count_endpoints(conn: &mut AsyncPgConnection, merchant_id: Uuid) -> QueryResult<(i64, i64)> {
    let all = merchant_endpoints::table.filter(merchant_endpoints::merchant_id.eq(merchant_id));
    let total: i64 = all.count().get_result(conn).await?;
    let enabled: i64 = all.filter(merchant_endpoints::enabled).count().get_result(conn).await?;
    Ok((total, enabled))
}

pub async fn merchants_by_ids(mut conn: &AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Merchant>> {
    merchants::table.filter(merchants::id.eq_any(ids)).select(Merchant::as_select()).load(&mut conn).await
}

pub async fn list_merchants(conn: &mut AsyncPgConnection, limit: i64, offset: i64) -> QueryResult<Vec<Merchant>> {
    merchants::table
        .order_by((merchants::created_at.asc(), merchants::id.asc()))
        .limit(limit)
        .offset(offset)
        .select(Merchant::as_select())
        .load(conn)
        .await
}

pub async fn rename_merchant(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    display_name: &str,
) -> QueryResult<Option<Merchant>> {
    diesel::update(merchants::table.find(id))
        .set((merchants::display_name.eq(display_name), merchants::updated_at.eq(Utc::now())))
        .returning(Merchant::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn insert_store(
    conn: &mut AsyncPgConnection,
    merchant_id: Uuid,
    store_name: &str,
    office_name: &str,
) -> QueryResult<Store> {
    diesel::insert_into(stores::table)
        .values((
            stores::merchant_id.eq(merchant_id),
            stores::store_name.eq(store_name),
            stores::office_name.eq(office_name),
        ))
        .returning(Store::as_returning())
        .get_result(conn)
        .await
}

pub async fn update_store(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    store_name: &str,
    office_name: &str,
) -> QueryResult<Option<Store>> {
    diesel::update(stores::table.find(id))
        .set((
            stores::store_name.eq(store_name),
            stores::office_name.eq(office_name),
            stores::updated_at.eq(Utc::now()),
        ))
        .returning(Store::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn find_store(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Store>> {
    stores::table.find(id).select(Store::as_select()).first(conn).await.optional()
}

pub async fn stores_by_ids(mut conn: &AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Store>> {
    stores::table.filter(stores::id.eq_any(ids)).select(Store::as_select()).load(&mut conn).await
}

pub async fn stores_of_merchants(mut conn: &AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Store>> {
    stores::table
        .filter(stores::merchant_id.eq_any(ids))
        .order_by((stores::created_at.asc(), stores::id.asc()))
        .select(Store::as_select())
        .load(&mut conn)
        .await
}

/// The store a merchant's order goes to when it names none: its first store.
pub async fn first_store_of(conn: &mut AsyncPgConnection, merchant_id: Uuid) -> QueryResult<Option<Store>> {
    stores::table
        .filter(stores::merchant_id.eq(merchant_id))
        .order_by((stores::created_at.asc(), stores::id.asc()))
        .select(Store::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn insert_endpoint(
    conn: &mut AsyncPgConnection,
    merchant_id: Uuid,
    url: &str,
) -> QueryResult<MerchantEndpoint> {
    diesel::insert_into(merchant_endpoints::table)
        .values((merchant_endpoints::merchant_id.eq(merchant_id), merchant_endpoints::url.eq(url)))
        .returning(MerchantEndpoint::as_returning())
        .get_result(conn)
        .await
}

pub async fn endpoints_of_merchants(mut conn: &AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<MerchantEndpoint>> {
    merchant_endpoints::table
        .filter(merchant_endpoints::merchant_id.eq_any(ids))
        .order_by(merchant_endpoints::id.asc())
        .select(MerchantEndpoint::as_select())
        .load(&mut conn)
        .await
}

pub async fn enabled_endpoints(conn: &mut AsyncPgConnection, merchant_id: Uuid) -> QueryResult<Vec<MerchantEndpoint>> {
    merchant_endpoints::table
        .filter(merchant_endpoints::merchant_id.eq(merchant_id).and(merchant_endpoints::enabled))
        .order_by(merchant_endpoints::id.asc())
        .select(MerchantEndpoint::as_select())
        .load(conn)
        .await
}

pub async fn find_endpoint(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<MerchantEndpoint>> {
    merchant_endpoints::table.find(id).select(MerchantEndpoint::as_select()).first(conn).await.optional()
}

/// Turns an endpoint on (`reason` `None`) or off; returns it as it now stands.
pub async fn set_endpoint_enabled(
    conn: &mut AsyncPgConnection,
    id: i64,
    disabled: Option<&str>,
) -> QueryResult<Option<MerchantEndpoint>> {
    let at = disabled.map(|_| Utc::now());
    diesel::update(merchant_endpoints::table.find(id))
        .set((
            merchant_endpoints::enabled.eq(disabled.is_none()),
            merchant_endpoints::disabled_reason.eq(disabled),
            merchant_endpoints::disabled_at.eq(at),
        ))
        .returning(MerchantEndpoint::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn insert_secret(
    conn: &mut AsyncPgConnection,
    merchant_id: Uuid,
    secret: &str,
) -> QueryResult<MerchantSecret> {
    diesel::insert_into(merchant_secrets::table)
        .values((merchant_secrets::merchant_id.eq(merchant_id), merchant_secrets::secret.eq(secret)))
        .returning(MerchantSecret::as_returning())
        .get_result(conn)
        .await
}

/// Sets the expiry of every other unexpired secret of the merchant (a rotation's overlap).
pub async fn expire_other_secrets(
    conn: &mut AsyncPgConnection,
    merchant_id: Uuid,
    keep: i64,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        merchant_secrets::table.filter(
            merchant_secrets::merchant_id
                .eq(merchant_id)
                .and(merchant_secrets::id.ne(keep))
                .and(merchant_secrets::expires_at.is_null().or(merchant_secrets::expires_at.gt(at))),
        ),
    )
    .set(merchant_secrets::expires_at.eq(at))
    .execute(conn)
    .await
}

/// The secrets a delivery is signed with at `now`: every one not yet expired, newest first.
pub async fn active_secrets(
    conn: &mut AsyncPgConnection,
    merchant_id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<Vec<MerchantSecret>> {
    merchant_secrets::table
        .filter(
            merchant_secrets::merchant_id
                .eq(merchant_id)
                .and(merchant_secrets::expires_at.is_null().or(merchant_secrets::expires_at.gt(now))),
        )
        .order_by(merchant_secrets::id.desc())
        .select(MerchantSecret::as_select())
        .load(conn)
        .await
}

pub async fn insert_payment_request(conn: &mut AsyncPgConnection, row: &PaymentRequest) -> QueryResult<PaymentRequest> {
    diesel::insert_into(payment_requests::table)
        .values(row)
        .returning(PaymentRequest::as_returning())
        .get_result(conn)
        .await
}

pub async fn find_payment_request(conn: &mut AsyncPgConnection, order_id: i64) -> QueryResult<Option<PaymentRequest>> {
    payment_requests::table.find(order_id).select(PaymentRequest::as_select()).first(conn).await.optional()
}

pub async fn payment_requests_for_orders(
    mut conn: &AsyncPgConnection,
    order_ids: &[i64],
) -> QueryResult<Vec<PaymentRequest>> {
    payment_requests::table
        .filter(payment_requests::order_id.eq_any(order_ids))
        .select(PaymentRequest::as_select())
        .load(&mut conn)
        .await
}

/// What an update of a payment request changes; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = payment_requests)]
pub struct PaymentRequestChanges {
    pub description: Option<Option<String>>,
    pub payment_date: Option<Option<DateTime<Utc>>>,
    pub announced_status: Option<Option<String>>,
    pub updated_by: Option<Option<String>>,
    pub updated_at: Option<Option<DateTime<Utc>>>,
}

pub async fn update_payment_request(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    changes: &PaymentRequestChanges,
) -> QueryResult<PaymentRequest> {
    diesel::update(payment_requests::table.find(order_id))
        .set(changes)
        .returning(PaymentRequest::as_returning())
        .get_result(conn)
        .await
}

pub async fn find_order_by_public_id(conn: &mut AsyncPgConnection, public_id: Uuid) -> QueryResult<Option<Order>> {
    orders::table.filter(orders::public_id.eq(public_id)).select(Order::as_select()).first(conn).await.optional()
}

/// The order with `public_id`, locked until the transaction ends.
pub async fn lock_order_by_public_id(conn: &mut AsyncPgConnection, public_id: Uuid) -> QueryResult<Option<Order>> {
    orders::table
        .filter(orders::public_id.eq(public_id))
        .select(Order::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}
