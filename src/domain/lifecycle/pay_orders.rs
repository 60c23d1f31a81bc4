//! `payOrders`: one payment for several orders of one user in one currency.
//!
//! One provider charge (or one balance debit, in one transaction) for the sum of the
//! orders. Each order gets its own attempt for its share (its total), all members of one
//! group (`db::groups`), so every per-order rule holds as for a single payment: one
//! SUCCEEDED payment of the order's total, refunds capped at it and sent against the shared
//! charge. Any outcome of the charge is applied to every member in one transaction
//! (`outcomes::apply_outcome`): all orders are paid, or none is.
//!
//! Orders are always locked in ascending id order, so two payOrders sharing orders never
//! wait on each other crosswise; each refuses an order with an open attempt, so the second
//! of two sharing an order is `CONFLICT`, and `markOrderPaid` of one of the orders either
//! comes first (then payOrders finds it paid) or cancels that order's attempt, which
//! cancels the shared charge at the provider (money that still arrives is due back).

use super::*;
use crate::db::groups::{self, Member};
use create_payment::rand_token;

/// Most orders one payment may pay.
pub const MAX_ORDERS: usize = 20;

/// What `payOrders` is asked.
#[derive(Debug, Clone, Default)]
pub struct PayOrdersInput {
    pub order_ids: Vec<i64>,
    /// `balance` charges the user's balance (admins); anything else goes to the provider.
    pub payment_method: Option<String>,
    pub card: Option<crate::domain::payments::card::CardInput>,
}

/// The orders, checked: one buyer, one currency, each PENDING, unpaid and with no open
/// attempt. `open[i]` is the number of open attempts of `orders[i]`. Returns the buyer,
/// the currency and the sum.
fn check_all(caller: &Caller, orders: &[models::Order], open: &[i64]) -> AppResult<(i64, String, i64)> {
    let first = orders.first().ok_or_else(|| AppError::bad_input("orderIds must name at least two orders"))?;
    let mut total: i64 = 0;
    for (order, open) in orders.iter().zip(open) {
        caller.require_admin_or_owner("payOrders", order.user_id)?;
        let (status, payment_status) = state(order)?;
        if status != OrderStatus::Pending || is_paid(payment_status) {
            return Err(AppError::Conflict(format!(
                "order {} is {status}/{payment_status}; payOrders pays only PENDING orders that are not paid",
                order.number
            )));
        }
        if *open > 0 {
            return Err(AppError::Conflict(format!(
                "order {} already has an open payment attempt; payOrders pays only orders with none (wait for it, or cancel it)",
                order.number
            )));
        }
        if order.user_id.is_none() || order.user_id != first.user_id {
            return Err(AppError::bad_input(format!(
                "orderIds: the orders must belong to one user (order {} does not belong to the user of order {})",
                order.number, first.number
            )));
        }
        if order.store_id != first.store_id {
            // One seller's orders: cancelling one order cancels the shared charge, which
            // must not touch another merchant's sale.
            return Err(AppError::bad_input(format!(
                "orderIds: the orders must be sold by one store (order {} is not from the store of order {})",
                order.number, first.number
            )));
        }
        if order.currency != first.currency {
            return Err(AppError::bad_input(format!(
                "orderIds: the orders must be in one currency (order {} is in {}, order {} in {})",
                order.number, order.currency, first.number, first.currency
            )));
        }
        total = total
            .checked_add(order.total_cents)
            .ok_or_else(|| AppError::bad_input("orderIds: the orders' totals add up to more than can be charged"))?;
    }
    let user = first.user_id.ok_or_else(|| AppError::Conflict(format!("order {} has no buyer", first.number)))?;
    Ok((user, first.currency.clone(), total))
}

/// The ids, checked: 2 to `MAX_ORDERS` distinct orders; sorted (the locking order).
fn order_ids(mut ids: Vec<i64>) -> AppResult<Vec<i64>> {
    if !(2..=MAX_ORDERS).contains(&ids.len()) {
        return Err(AppError::bad_input(format!("orderIds must name 2 to {MAX_ORDERS} orders (got {})", ids.len())));
    }
    ids.sort_unstable();
    if let Some(twice) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(AppError::bad_input(format!("orderIds names order {} twice", twice[0])));
    }
    Ok(ids)
}

/// The orders (each must be visible), locked in id order when `lock`, and how many open
/// attempts each has.
async fn load_all(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    ids: &[i64],
    lock: bool,
) -> AppResult<(Vec<models::Order>, Vec<i64>)> {
    let mut orders = Vec::with_capacity(ids.len());
    let mut open = Vec::with_capacity(ids.len());
    for id in ids {
        let order = if lock {
            lock_visible_order(conn, caller, *id).await?
        } else {
            visible_to(caller, queries::find_order(conn, *id).await?)
                .ok_or_else(|| AppError::not_found(format!("order {id} not found")))?
        };
        open.push(queries::count_pending_payments(conn, order.id).await?);
        orders.push(order);
    }
    Ok((orders, open))
}

/// Records one order's attempt in a group.
async fn add_member(
    conn: &mut AsyncPgConnection,
    group_id: i64,
    new: &models::NewPayment<'_>,
) -> AppResult<models::Payment> {
    let payment = queries::insert_payment(conn, new).await?;
    groups::insert_member(conn, Member { payment_id: payment.id, group_id, order_id: payment.order_id }).await?;
    Ok(payment)
}

/// Pays several orders with one payment; the members' payments, in order id order.
pub async fn pay_orders(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    input: PayOrdersInput,
) -> AppResult<Vec<models::Payment>> {
    let ids = order_ids(input.order_ids)?;
    let method = text("paymentMethod", input.payment_method, 32)?;
    if let Some(method) = &method {
        validate_payment_method("paymentMethod", method)?;
    }
    if method.as_deref() == Some("balance") {
        caller.require_admin("payOrders with paymentMethod balance")?;
        if input.card.is_some() {
            return Err(AppError::bad_input("card: a balance payment takes no card"));
        }
        return pay_from_balance(pool, caller, &ids).await;
    }
    let card = input.card.map(|c| c.validated("card", Utc::now().date_naive())).transpose()?;
    // Check first, so no provider charge is created for orders that cannot take one.
    let (orders, (_, currency_code, total)) = {
        let mut conn = pool.get().await?;
        let (orders, open) = load_all(&mut conn, caller, &ids, false).await?;
        let checked = check_all(caller, &orders, &open)?;
        (orders, checked)
    };
    let provider = providers.for_new_payments()?;
    if card.is_some() && !provider.takes_cards() {
        return Err(AppError::bad_input(format!(
            "card: the configured payment provider ({}) takes no card details",
            provider.name()
        )));
    }
    let currency = crate::money::Currency::of_stored(&currency_code)?;
    provider
        .check_amount(total, currency)
        .map_err(|reason| AppError::Conflict(format!("these orders cannot be paid together: {reason}")))?;
    let first = orders.first().ok_or_else(|| AppError::bad_input("orderIds must name at least two orders"))?;
    let method = method.unwrap_or_else(|| first.payment_method.clone());
    let label = format!("{} and {} more", first.number, orders.len() - 1);
    let idempotency_key = format!("orders-{}-{}", first.id, rand_token());
    let begun = providers
        .in_slot(provider.start_payment(&StartPayment {
            order_id: first.id,
            order_number: &label,
            amount_cents: total,
            currency: &currency_code,
            payment_method: &method,
            idempotency_key: &idempotency_key,
            card: card.as_ref(),
            manual_capture: false,
        }))
        .await?;
    let mut details = models::PaymentDetails::default();
    if let Some(card) = &card {
        crate::domain::payments::card::show_on(&mut details, begun.card.clone(), card);
    }
    let intent = begun.intent_id.clone();
    let started: Vec<(i64, i64)> = orders.iter().map(|o| (o.id, o.total_cents)).collect();
    let recorded =
        record(pool, providers, caller, (&ids, &started), (provider.name(), &method, intent.as_deref()), &details)
            .await;
    if let (Err(_), Some(intent)) = (&recorded, intent.as_deref()) {
        // The orders changed while the provider worked: nothing points at the charge.
        cancel_unrecorded(providers, provider, intent, &ids).await;
    }
    let payments = recorded?;
    if let (Some(_), Some(intent), Some(lead)) = (&card, intent.as_deref(), payments.first()) {
        // Confirmed once, through the first member; the outcome is every member's.
        create_payment::confirm(pool, providers, provider, caller, lead.clone(), intent).await?;
    }
    // As they are now; as recorded if the database cannot say (money may have moved: the
    // answer must not turn into an error).
    let mut now = Vec::with_capacity(payments.len());
    for payment in payments {
        now.push(reread(pool, payment).await?);
    }
    Ok(now)
}

/// Records the started charge as one PENDING attempt per order, grouped, under the
/// orders' locks (checked again: they may have changed while the provider worked).
async fn record(
    pool: &DbPool,
    providers: &Providers,
    caller: &Caller,
    (ids, started): (&[i64], &[(i64, i64)]),
    (provider, method, intent): (&str, &str, Option<&str>),
    details: &models::PaymentDetails,
) -> AppResult<Vec<models::Payment>> {
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let (orders, open) = load_all(conn, caller, ids, true).await?;
        let (user, currency, total) = check_all(caller, &orders, &open)?;
        let now_totals: Vec<(i64, i64)> = orders.iter().map(|o| (o.id, o.total_cents)).collect();
        if now_totals != started {
            return Err(AppError::Conflict(
                "an order's amount changed while the payment was being started; start it again".to_owned(),
            ));
        }
        let group = groups::insert_group(conn, user, provider, total, &currency, intent).await?;
        let order_ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
        let now = Utc::now();
        let mut payments = Vec::with_capacity(orders.len());
        for order in &orders {
            let payment = add_member(
                conn,
                group.id,
                &models::NewPayment {
                    order_id: order.id,
                    status: PaymentAttemptStatus::Pending.code(),
                    provider,
                    payment_method: method,
                    amount_cents: order.total_cents,
                    currency: &order.currency,
                    reference: None,
                    payment_intent_id: intent,
                    note: None,
                    paid_at: None,
                    next_check_at: intent.is_some().then(|| providers.next_check(now, 0)),
                    details: details.clone(),
                },
            )
            .await?;
            queries::update_order(
                conn,
                order.id,
                &OrderChanges {
                    payment_status: Some(PaymentStatus::Processing.code()),
                    payment_intent_id: intent.map(|i| Some(i.to_owned())),
                    updated_at: Some(now),
                    ..Default::default()
                },
            )
            .await?;
            events::record(
                conn,
                order.id,
                kind::PAYMENT_STARTED,
                &actor,
                json!({ "payment_id": payment.id, "provider": provider, "payment_method": method,
                        "amount_cents": payment.amount_cents, "payment_intent_id": intent,
                        "group_id": group.id, "group_amount_cents": total, "group_order_ids": order_ids }),
            )
            .await?;
            payments.push(payment);
        }
        Ok(payments)
    })
    .await
}

/// Pays the orders from their user's balance in one transaction: the orders locked in id
/// order, then the user; one charge per order in the ledger (each refundable to the
/// balance on its own), all or none. Too little balance is INSUFFICIENT_BALANCE.
async fn pay_from_balance(pool: &DbPool, caller: &Caller, ids: &[i64]) -> AppResult<Vec<models::Payment>> {
    let actor = caller.name.clone();
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        let (orders, open) = load_all(conn, caller, ids, true).await?;
        let (user, currency, total) = check_all(caller, &orders, &open)?;
        for order in &orders {
            let entry = Entry {
                kind: ledger_kind::ORDER_CHARGE,
                order_id: Some(order.id),
                refund_id: None,
                note: Some(&order.number),
            };
            ledger::change_balance(conn, user, -order.total_cents, entry).await?;
        }
        let group = groups::insert_group(conn, user, "balance", total, &currency, None).await?;
        let order_ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
        let now = Utc::now();
        let mut payments = Vec::with_capacity(orders.len());
        for order in &orders {
            let payment = add_member(
                conn,
                group.id,
                &models::NewPayment {
                    order_id: order.id,
                    status: PaymentAttemptStatus::Succeeded.code(),
                    provider: "balance",
                    payment_method: "balance",
                    amount_cents: order.total_cents,
                    currency: &order.currency,
                    reference: None,
                    payment_intent_id: None,
                    note: None,
                    paid_at: Some(now),
                    next_check_at: None,
                    details: Default::default(),
                },
            )
            .await?;
            queries::update_order(
                conn,
                order.id,
                &OrderChanges { payment_method: Some("balance".to_owned()), ..paid_changes(now, now) },
            )
            .await?;
            events::record(
                conn,
                order.id,
                kind::PAID,
                &actor,
                json!({ "payment_id": payment.id, "provider": "balance", "payment_method": "balance",
                        "charged_balance": true, "amount_cents": order.total_cents,
                        "group_id": group.id, "group_amount_cents": total, "group_order_ids": order_ids }),
            )
            .await?;
            payments.push(payment);
        }
        Ok(payments)
    })
    .await
}
