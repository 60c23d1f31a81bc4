//! The transactional outbox: when an event moves a store order's seed status, the
//! merchant's deliveries are written in the same transaction, so a rolled-back change
//! sends nothing and a committed one is sent even if the process dies right after.

use diesel_async::AsyncPgConnection;
use serde_json::{Value, json};

use crate::db::{merchants as mq, models, queries, webhooks as wq};
use crate::domain::merchants::status::{self, PayMethod, SeedStatus};
use crate::error::{AppError, AppResult};
use crate::money::Currency;

/// The event type of a status change (the only kind sent today).
pub const STATUS_CHANGED: &str = "order.status_changed";

/// A major-unit amount as a JSON number (see [`Currency::to_major_json`]).
pub fn major_number(currency: &str, minor: i64) -> AppResult<Value> {
    Currency::of_stored(currency)?.to_major_json(minor)
}

fn millis(at: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    at.map_or(Value::Null, |t| json!(t.timestamp_millis()))
}

/// The body of a status-change delivery, in seed 001's callback shape plus `sequence` (the
/// order's event number: a receiver keeps the highest it has seen and drops lower ones),
/// `event_type` and `previous_status`.
pub fn body(
    order: &models::Order,
    request: &models::PaymentRequest,
    payments: &[models::Payment],
    user: Option<&models::User>,
    seq: i64,
    status: SeedStatus,
    previous: Option<&str>,
) -> AppResult<String> {
    let newest = payments.iter().max_by_key(|p| p.id);
    let authenticating = newest.filter(|p| p.authentication.is_some()).map(|p| p.updated_at);
    let confirmed = matches!(status, SeedStatus::Complete | SeedStatus::Refunded).then_some(order.paid_at).flatten();
    let user_payment = user.map(|u| {
        json!({
            "id": u.id.to_string(),
            "first_name": Value::Null,
            "last_name": Value::Null,
            "email": u.email,
            "phone": request.consumer_phone,
            "affiliate_code": Value::Null,
            "display_name": u.name,
            "address": Value::Null,
        })
    });
    let body = json!({
        "id": order.public_id,
        "pay_amount": major_number(&order.currency, order.total_cents)?,
        "currency": order.currency,
        "customer_id": request.customer_ref,
        "customer_order_id": request.customer_order_ref,
        "status": status.as_str(),
        "update_date": order.updated_at.timestamp_millis(),
        "create_date": order.created_at.timestamp_millis(),
        "pay_method": PayMethod::of_method(&order.payment_method).map(|m| m.code().to_string()),
        "pay_times": request.installment_term,
        "actual_payment_date": millis(order.paid_at),
        "confirmed_at": millis(confirmed),
        "authenticating_date": millis(authenticating),
        "user_payment": user_payment,
        "sequence": seq,
        "event_type": STATUS_CHANGED,
        "previous_status": previous,
    });
    serde_json::to_string(&body).map_err(|e| AppError::internal(anyhow::anyhow!("webhook body: {e}")))
}

/// Writes the deliveries of `event` if it moved the order's seed status: one to the
/// order's `callback_url`, or else one per enabled endpoint of the merchant. Nothing is
/// written when the merchant has neither (the change stays in the order's events).
pub async fn announce(
    conn: &mut AsyncPgConnection,
    order: &models::Order,
    event: &models::OrderEvent,
) -> AppResult<()> {
    let Some(merchant_id) = order.merchant_id else {
        return Ok(());
    };
    let Some(request) = mq::find_payment_request(conn, order.id).await? else {
        return Ok(());
    };
    let payments = queries::payments_for_orders(conn, &[order.id]).await?;
    let now_status = status::of_order(order, &payments);
    if request.announced_status.as_deref() == Some(now_status.as_str()) {
        return Ok(());
    }
    mq::update_payment_request(
        conn,
        order.id,
        &mq::PaymentRequestChanges {
            announced_status: Some(Some(now_status.as_str().to_owned())),
            ..Default::default()
        },
    )
    .await?;
    let user = match order.user_id {
        Some(user_id) => queries::find_user(conn, user_id).await?,
        None => None,
    };
    let body =
        body(order, &request, &payments, user.as_ref(), event.seq, now_status, request.announced_status.as_deref())?;
    enqueue(conn, order, merchant_id, &request, event.seq, STATUS_CHANGED, &body).await
}

/// The event type of a refund request's change (seed 004 on a store's order).
pub const REFUND_REQUEST_UPDATED: &str = "refund_request.updated";

/// Writes the deliveries announcing a refund request's transition (event data names the
/// request) on a store's order.
pub async fn announce_refund_request(
    conn: &mut AsyncPgConnection,
    order: &models::Order,
    event: &models::OrderEvent,
) -> AppResult<()> {
    let Some(merchant_id) = order.merchant_id else {
        return Ok(());
    };
    let Some(request_id) = event.data.get("refund_request_id").and_then(Value::as_i64) else {
        return Ok(());
    };
    let (Some(request), Some(refund_request)) =
        (mq::find_payment_request(conn, order.id).await?, crate::db::refund_requests::find(conn, request_id).await?)
    else {
        return Ok(());
    };
    let status = crate::domain::enums::decode(
        refund_request.status,
        crate::domain::RefundRequestStatus::from_code,
        "refund request status",
    )?;
    let body = json!({
        "event_type": REFUND_REQUEST_UPDATED,
        "sequence": event.seq,
        "id": order.public_id,
        "customer_order_id": request.customer_order_ref,
        "refund_request": {
            "id": refund_request.id,
            "status": status.as_str(),
            "amount": major_number(&refund_request.currency, refund_request.amount_cents)?,
            "currency": refund_request.currency,
            "requestReason": refund_request.request_reason,
            "responseReason": refund_request.response_reason,
            "requesterRole": refund_request.requester_role,
            "updatedAt": refund_request.updated_at.timestamp_millis(),
        },
    });
    let body = serde_json::to_string(&body).map_err(|e| AppError::internal(anyhow::anyhow!("webhook body: {e}")))?;
    enqueue(conn, order, merchant_id, &request, event.seq, REFUND_REQUEST_UPDATED, &body).await
}

/// One delivery per target: the order's `callback_url`, else each enabled endpoint of the
/// merchant; none when there is neither. Wakes the workers on commit.
async fn enqueue(
    conn: &mut AsyncPgConnection,
    order: &models::Order,
    merchant_id: uuid::Uuid,
    request: &models::PaymentRequest,
    seq: i64,
    event_type: &str,
    body: &str,
) -> AppResult<()> {
    let targets: Vec<(Option<i64>, String)> = match &request.callback_url {
        Some(url) => vec![(None, url.clone())],
        None => mq::enabled_endpoints(conn, merchant_id).await?.into_iter().map(|e| (Some(e.id), e.url)).collect(),
    };
    if targets.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = targets.iter().map(|_| format!("msg_{}", uuid::Uuid::new_v4().simple())).collect();
    let rows: Vec<models::NewWebhookDelivery<'_>> = targets
        .iter()
        .zip(&ids)
        .map(|((endpoint_id, url), webhook_id)| models::NewWebhookDelivery {
            webhook_id,
            merchant_id,
            order_id: order.id,
            order_seq: seq,
            event_type,
            endpoint_id: *endpoint_id,
            url,
            body,
        })
        .collect();
    wq::insert_deliveries(conn, &rows).await?;
    wq::notify(conn).await?;
    Ok(())
}
