//! `updatePayment`: the fields seed 002 lets a client change (`active`, payment method,
//! billing address, payment date) while the payment has not succeeded.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{Map, Value, json};

use super::super::access::Caller;
use super::super::enums::PaymentAttemptStatus;
use super::super::events::{self, kind};
use super::super::lifecycle::{lock_visible_order as lock_order_seen_by, text as trimmed_text};
use super::super::orders::validate_payment_method;
use super::details::BillingAddress;
use super::state::money_arrived;
use crate::db::models::{self, PaymentChanges};
use crate::db::{DbPool, queries};
use crate::error::{AppError, AppResult};

/// What to change; `None` leaves a field alone, `Some(None)` clears a clearable one.
#[derive(Debug, Clone, Default)]
pub struct PaymentUpdate {
    pub payment_id: i64,
    pub active: Option<bool>,
    pub payment_method: Option<String>,
    pub billing_address: Option<Option<BillingAddress>>,
    pub payment_date: Option<Option<DateTime<Utc>>>,
}

/// Changes a payment that has not succeeded. The payment's order is locked first (as every
/// change of its payments does), then the payment; one whose money arrived is CONFLICT.
/// The payment method may change only on a manual attempt: a provider's attempt was
/// started with its method. A change that changes nothing is answered with the payment
/// and records nothing.
pub async fn update_payment(pool: &DbPool, caller: &Caller, update: PaymentUpdate) -> AppResult<models::Payment> {
    let method = trimmed_text("paymentMethod", update.payment_method.clone(), 32)?;
    if let Some(method) = &method {
        validate_payment_method("paymentMethod", method)?;
        if method == "balance" {
            // A balance payment is one that charged the balance (markOrderPaid): a label
            // alone would show a balance payment with no debit.
            return Err(AppError::bad_input(
                "paymentMethod balance is given by charging the user's balance, not by an update",
            ));
        }
    }
    let address = match update.billing_address.clone() {
        Some(Some(address)) => Some(Some(address.validated("billingAddress")?)),
        other => other,
    };
    super::details::check_date("paymentDate", update.payment_date.flatten())?;
    if update.active.is_none() && method.is_none() && address.is_none() && update.payment_date.is_none() {
        return Err(AppError::bad_input(
            "nothing to change: give active, paymentMethod, billingAddress or paymentDate",
        ));
    }
    let order_id = {
        let mut conn = pool.get().await?;
        let payment = super::get_payment_in(&mut conn, caller, update.payment_id).await?;
        payment.ok_or_else(|| AppError::not_found(format!("payment {} not found", update.payment_id)))?.order_id
    };
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async |conn| {
        let order = lock_order_seen_by(conn, caller, order_id).await?;
        caller.require_admin_or_owner("updatePayment", order.user_id)?;
        let payment = queries::lock_payment_of_order(conn, order.id, update.payment_id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("payment {} not found", update.payment_id)))?;
        apply(conn, &actor, &order, payment, method, address, update.active, update.payment_date).await
    })
    .await
}

#[expect(clippy::too_many_arguments, reason = "one call site: the checked parts of the update")]
async fn apply(
    conn: &mut AsyncPgConnection,
    actor: &str,
    order: &models::Order,
    payment: models::Payment,
    method: Option<String>,
    address: Option<Option<BillingAddress>>,
    active: Option<bool>,
    payment_date: Option<Option<DateTime<Utc>>>,
) -> AppResult<models::Payment> {
    let method = method.filter(|m| *m != payment.payment_method);
    let current_address = payment.billing_address.as_ref().map(BillingAddress::from_json);
    let address = address.filter(|a| *a != current_address);
    let active = active.filter(|a| *a != payment.active);
    let payment_date = payment_date.filter(|d| *d != payment.payment_date);
    if method.is_none() && address.is_none() && active.is_none() && payment_date.is_none() {
        // Nothing would change (seed 003 sends the whole payment back): no refusal either.
        return Ok(payment);
    }
    if money_arrived(&payment)? {
        return Err(AppError::Conflict(format!(
            "payment {} has succeeded; it can no longer be changed",
            payment.human_id
        )));
    }
    if method.is_some() && payment.provider != "manual" {
        return Err(AppError::Conflict(format!(
            "payment {} was started at {} with its payment method, which cannot change; start a new payment instead",
            payment.human_id, payment.provider
        )));
    }
    let mut changed = Map::new();
    if let Some(method) = &method {
        changed.insert("payment_method".into(), json!(method));
    }
    if let Some(active) = active {
        changed.insert("active".into(), json!(active));
    }
    if let Some(date) = payment_date {
        changed.insert("payment_date".into(), json!(date));
    }
    if address.is_some() {
        // The address itself is personal data: the trail says that it changed, not to what.
        changed.insert("billing_address_changed".into(), json!(true));
    }
    let now = Utc::now();
    let updated = queries::update_payment(
        conn,
        payment.id,
        &PaymentChanges {
            payment_method: method,
            active,
            billing_address: address.map(|a| a.map(|a| a.to_json())),
            payment_date,
            updated_at: Some(now),
            ..Default::default()
        },
    )
    .await?;
    let mut data =
        json!({ "payment_id": payment.id, "status": PaymentAttemptStatus::from_code(i64::from(payment.status)) });
    if let Value::Object(map) = &mut data {
        map.extend(changed);
    }
    queries::update_order(conn, order.id, &models::OrderChanges { updated_at: Some(now), ..Default::default() })
        .await?;
    events::record(conn, order.id, kind::PAYMENT_UPDATED, actor, data).await?;
    Ok(updated)
}
