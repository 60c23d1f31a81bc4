//! Merchants (seed 001): who they are, their stores, where their webhooks go and the
//! secrets that sign them. Admins manage all of it; a merchant key reads its own merchant
//! and manages its own endpoints and secrets.

pub mod orders;
pub mod status;

use base64::Engine;
use chrono::{Duration, Utc};
use diesel_async::AsyncConnection;
use rand::RngCore;
use uuid::Uuid;

use super::access::{Caller, Role};
use crate::db::{DbPool, merchants as q, models};
use crate::error::{AppError, AppResult};

/// A name given by a client: trimmed, 1 to 200 characters, no control characters.
pub fn name(field: &str, value: &str) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(AppError::bad_input(format!("{field} must be 1 to 200 characters without control characters")));
    }
    Ok(value.to_owned())
}

/// Whether `caller` may act for merchant `id`: admins for all, a merchant key for its own.
/// Anyone else, and another merchant's key, finds nothing there.
pub fn require_merchant_access(caller: &Caller, id: Uuid, action: &str) -> AppResult<()> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::Merchant if caller.merchant_id == Some(id) => Ok(()),
        Role::Merchant => Err(AppError::not_found(format!("merchant {id} not found"))),
        _ => Err(AppError::Forbidden(format!("{action} requires an admin or merchant key"))),
    }
}

/// Whether `caller` may read merchant `id`: staff, and its own merchant key.
pub fn can_read_merchant(caller: &Caller, id: Uuid) -> bool {
    match caller.role {
        Role::Admin | Role::Support => true,
        Role::Merchant => caller.merchant_id == Some(id),
        Role::Customer | Role::Provider => false,
    }
}

/// A new signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes in
/// base64.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A merchant as created: its first signing secret is shown once, here.
pub struct CreatedMerchant {
    pub merchant: models::Merchant,
    pub secret: models::MerchantSecret,
}

pub async fn create_merchant(pool: &DbPool, caller: &Caller, display_name: &str) -> AppResult<CreatedMerchant> {
    caller.require_admin("createMerchant")?;
    let display_name = name("displayName", display_name)?;
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let merchant = q::insert_merchant(conn, &display_name).await?;
        let secret = q::insert_secret(conn, merchant.id, &new_secret()).await?;
        Ok(CreatedMerchant { merchant, secret })
    })
    .await
}

pub async fn rename_merchant(
    pool: &DbPool,
    caller: &Caller,
    id: Uuid,
    display_name: &str,
) -> AppResult<models::Merchant> {
    caller.require_admin("updateMerchant")?;
    let display_name = name("displayName", display_name)?;
    let mut conn = pool.get().await?;
    q::rename_merchant(&mut conn, id, &display_name)
        .await?
        .ok_or_else(|| AppError::not_found(format!("merchant {id} not found")))
}

pub async fn get_merchant(pool: &DbPool, caller: &Caller, id: Uuid) -> AppResult<Option<models::Merchant>> {
    if !can_read_merchant(caller, id) {
        return Ok(None);
    }
    let mut conn = pool.get().await?;
    Ok(q::find_merchant(&mut conn, id).await?)
}

pub async fn list_merchants(
    pool: &DbPool,
    caller: &Caller,
    limit: i64,
    offset: i64,
) -> AppResult<Vec<models::Merchant>> {
    let mut conn = pool.get().await?;
    match caller.role {
        Role::Admin | Role::Support => Ok(q::list_merchants(&mut conn, limit, offset).await?),
        Role::Merchant => {
            let own = caller.merchant_id.unwrap_or_else(Uuid::nil);
            Ok(if offset == 0 { q::find_merchant(&mut conn, own).await?.into_iter().collect() } else { Vec::new() })
        }
        Role::Customer | Role::Provider => {
            Err(AppError::Forbidden("listing merchants requires a staff key".to_owned()))
        }
    }
}

pub async fn create_store(
    pool: &DbPool,
    caller: &Caller,
    merchant_id: Uuid,
    store_name: &str,
    office_name: &str,
) -> AppResult<models::Store> {
    caller.require_admin("createStore")?;
    let store_name = name("storeName", store_name)?;
    let office_name = name("officeName", office_name)?;
    let mut conn = pool.get().await?;
    if q::find_merchant(&mut conn, merchant_id).await?.is_none() {
        return Err(AppError::not_found(format!("merchant {merchant_id} not found")));
    }
    Ok(q::insert_store(&mut conn, merchant_id, &store_name, &office_name).await?)
}

pub async fn update_store(
    pool: &DbPool,
    caller: &Caller,
    id: Uuid,
    store_name: &str,
    office_name: &str,
) -> AppResult<models::Store> {
    caller.require_admin("updateStore")?;
    let store_name = name("storeName", store_name)?;
    let office_name = name("officeName", office_name)?;
    let mut conn = pool.get().await?;
    q::update_store(&mut conn, id, &store_name, &office_name)
        .await?
        .ok_or_else(|| AppError::not_found(format!("store {id} not found")))
}

pub async fn get_store(pool: &DbPool, caller: &Caller, id: Uuid) -> AppResult<Option<models::Store>> {
    let mut conn = pool.get().await?;
    Ok(q::find_store(&mut conn, id).await?.filter(|s| can_read_merchant(caller, s.merchant_id)))
}

/// Adds a webhook endpoint; its URL must be one the service may call (see
/// [`crate::domain::webhooks::target`]).
pub async fn add_endpoint(
    pool: &DbPool,
    caller: &Caller,
    allow_private: bool,
    merchant_id: Uuid,
    url: &str,
) -> AppResult<models::MerchantEndpoint> {
    require_merchant_access(caller, merchant_id, "addWebhookEndpoint")?;
    let url = crate::domain::webhooks::target::check_url("url", url, allow_private).await?;
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        // Under the merchant's lock, so concurrent adds cannot pass the cap together.
        if q::lock_merchant(conn, merchant_id).await?.is_none() {
            return Err(AppError::not_found(format!("merchant {merchant_id} not found")));
        }
        let (total, enabled) = q::count_endpoints(conn, merchant_id).await?;
        room_for_endpoint(total + 1, enabled + 1)?;
        Ok(q::insert_endpoint(conn, merchant_id, url.as_str()).await?)
    })
    .await
}

/// Enabled webhook endpoints a merchant may have: each status change writes one delivery
/// per enabled endpoint inside the change's own transaction.
pub const MAX_ENDPOINTS: usize = 20;

/// Endpoints a merchant may have in all, disabled ones included (they are kept: their
/// deliveries refer to them).
pub const MAX_ENDPOINTS_IN_ALL: usize = 100;

/// Refuses a merchant's endpoint count that would pass a cap.
fn room_for_endpoint(total: i64, enabled: i64) -> AppResult<()> {
    if enabled > MAX_ENDPOINTS as i64 {
        return Err(AppError::Conflict(format!(
            "a merchant has at most {MAX_ENDPOINTS} enabled webhook endpoints (every order change is sent to each); disable one first"
        )));
    }
    if total > MAX_ENDPOINTS_IN_ALL as i64 {
        return Err(AppError::Conflict(format!(
            "a merchant has at most {MAX_ENDPOINTS_IN_ALL} webhook endpoints, disabled ones included"
        )));
    }
    Ok(())
}

/// Turns an endpoint on or off (a disabled endpoint receives nothing new).
pub async fn set_endpoint_enabled(
    pool: &DbPool,
    caller: &Caller,
    id: i64,
    enabled: bool,
) -> AppResult<models::MerchantEndpoint> {
    let mut conn = pool.get().await?;
    let missing = || AppError::not_found(format!("webhook endpoint {id} not found"));
    let endpoint = q::find_endpoint(&mut conn, id).await?.ok_or_else(missing)?;
    require_merchant_access(caller, endpoint.merchant_id, "setWebhookEndpointEnabled").map_err(|e| match e {
        AppError::NotFound(_) => missing(),
        other => other,
    })?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        // Under the merchant's lock, as adding: enabling counts against the cap too.
        q::lock_merchant(conn, endpoint.merchant_id).await?;
        let current = q::find_endpoint(conn, id).await?.ok_or_else(missing)?;
        if enabled && !current.enabled {
            let (total, enabled_now) = q::count_endpoints(conn, endpoint.merchant_id).await?;
            room_for_endpoint(total, enabled_now + 1)?;
        }
        let reason = (!enabled).then_some("disabled by request");
        q::set_endpoint_enabled(conn, id, reason).await?.ok_or_else(missing)
    })
    .await
}

/// Longest overlap of a rotation: how long the old secret keeps signing.
pub const MAX_ROTATION_OVERLAP_SECS: i64 = 7 * 24 * 3600;

/// Makes a new signing secret; the newest older one keeps signing for `overlap_secs` more
/// (deliveries carry a signature by each), then expires; any older still active ends now.
pub async fn rotate_secret(
    pool: &DbPool,
    caller: &Caller,
    merchant_id: Uuid,
    overlap_secs: i64,
) -> AppResult<models::MerchantSecret> {
    require_merchant_access(caller, merchant_id, "rotateMerchantSecret")?;
    if !(0..=MAX_ROTATION_OVERLAP_SECS).contains(&overlap_secs) {
        return Err(AppError::bad_input(format!(
            "overlapSeconds must be between 0 and {MAX_ROTATION_OVERLAP_SECS} (got {overlap_secs})"
        )));
    }
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        if q::lock_merchant(conn, merchant_id).await?.is_none() {
            return Err(AppError::not_found(format!("merchant {merchant_id} not found")));
        }
        let now = Utc::now();
        // Two sign at once at most: the new secret and the newest before it. Any older one
        // ends now, so rotating again and again cannot make every delivery carry more
        // signatures.
        if let Some(previous) = q::active_secrets(conn, merchant_id, now).await?.first() {
            q::expire_other_secrets(conn, merchant_id, previous.id, now).await?;
        }
        let secret = q::insert_secret(conn, merchant_id, &new_secret()).await?;
        q::expire_other_secrets(conn, merchant_id, secret.id, now + Duration::seconds(overlap_secs)).await?;
        Ok(secret)
    })
    .await
}
