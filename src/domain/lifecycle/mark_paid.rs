//! `markOrderPaid`: a manual or balance payment.

use super::*;

#[derive(Debug, Clone, Default)]
pub struct MarkPaidInput {
    pub order_id: i64,
    pub payment_method: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
    pub reference: Option<String>,
    pub charge_balance: bool,
}

/// Records a succeeded manual payment for a PENDING order; with `charge_balance` the
/// user's balance pays (too little balance is INSUFFICIENT_BALANCE and nothing changes).
pub async fn mark_order_paid(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    input: MarkPaidInput,
) -> AppResult<models::Order> {
    caller.require_admin("markOrderPaid")?;
    let method = text("paymentMethod", input.payment_method, 32)?;
    if let Some(method) = &method {
        validate_payment_method("paymentMethod", method)?;
    }
    if input.charge_balance && method.as_deref().is_some_and(|m| m != "balance") {
        return Err(AppError::bad_input("paymentMethod must be balance (or absent) when chargeBalance is true"));
    }
    let note = text("note", input.note, 500)?;
    let reference = text("reference", input.reference, 200)?;
    let now = Utc::now();
    let paid_at = timestamp("paidAt", input.paid_at, now)?;
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    let (order, superseded) = conn
        .transaction::<_, AppError, _>(async |conn| {
            let order = lock_visible_order(conn, caller, input.order_id).await?;
            let (status, payment_status) = state(&order)?;
            if is_paid(payment_status) {
                return Err(AppError::Conflict(format!("order {} is already paid ({payment_status})", order.number)));
            }
            if status != OrderStatus::Pending {
                return Err(AppError::Conflict(format!(
                    "order {} is {status}; only PENDING orders can be marked paid",
                    order.number
                )));
            }
            refuse_while_capturing(conn, &order).await?;
            let (provider, method) = if input.charge_balance {
                ("balance", "balance".to_owned())
            } else {
                ("manual", method.unwrap_or_else(|| order.payment_method.clone()))
            };
            if input.charge_balance {
                let buyer = order.user_id.ok_or_else(|| {
                    AppError::Conflict(format!(
                        "order {} has no buyer yet: there is no balance to charge",
                        order.number
                    ))
                })?;
                ledger::change_balance(
                    conn,
                    buyer,
                    -order.total_cents,
                    Entry {
                        kind: ledger_kind::ORDER_CHARGE,
                        order_id: Some(order.id),
                        refund_id: None,
                        note: Some(&order.number),
                    },
                )
                .await?;
            }
            let superseded_attempts = cancel_pending_attempts(conn, order.id, now).await?;
            let superseded: Vec<i64> = superseded_attempts.iter().map(|p| p.id).collect();
            let payment = queries::insert_payment(
                conn,
                &models::NewPayment {
                    order_id: order.id,
                    status: PaymentAttemptStatus::Succeeded.code(),
                    provider,
                    payment_method: &method,
                    amount_cents: order.total_cents,
                    currency: &order.currency,
                    reference: reference.as_deref(),
                    payment_intent_id: None,
                    note: note.as_deref(),
                    paid_at: Some(paid_at),
                    next_check_at: None,
                    details: Default::default(),
                },
            )
            .await?;
            let order = queries::update_order(
                conn,
                order.id,
                &OrderChanges {
                    payment_method: Some(method.clone()),
                    payment_reference: Some(reference.clone()),
                    ..paid_changes(paid_at, now)
                },
            )
            .await?;
            events::record(
            conn,
            order.id,
            kind::PAID,
            &actor,
            json!({ "payment_id": payment.id, "provider": provider, "payment_method": method, "reference": reference,
                    "note": note, "charged_balance": input.charge_balance, "amount_cents": order.total_cents,
                    "superseded_payment_ids": superseded }),
        )
        .await?;
            Ok((order, superseded_attempts))
        })
        .await?;
    drop(conn);
    // Attempts superseded by this payment must not be payable any more either.
    cancel_intents(pool, providers, &actor, superseded).await;
    Ok(order)
}
