use async_graphql::{Context, Object, Result};

use super::inputs::{
    CancelOrderInput, CreateOrderInput, CreatePaymentInput, CreateUserInput, MarkOrderPaidInput, PaymentCallbackInput,
    ReconcilePaymentInput, RefundDuePaymentInput, RefundOrderInput,
};
use super::types::{Order, Payment, User, parse_id};
use super::{app, caller};
use crate::app::App;
use crate::domain::{lifecycle, orders, users};
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;

/// Counts the outcome of a money operation: `success` when it worked, else its error kind.
fn count<T>(app: &App, result: AppResult<T>, record: fn(&Metrics, &str), success: &str) -> AppResult<T> {
    let outcome = match &result {
        Ok(_) => success,
        Err(AppError::Provider(_)) => "provider_error",
        Err(AppError::InsufficientBalance(_)) => "insufficient_balance",
        Err(AppError::Conflict(_)) => "refused",
        Err(AppError::BadUserInput(_) | AppError::NotFound(_)) => "invalid",
        Err(AppError::Forbidden(_) | AppError::Unauthenticated(_)) => "forbidden",
        Err(_) => "error",
    };
    record(app.metrics(), outcome);
    result
}

/// Write operations on orders and users. Every one honours an `Idempotency-Key` header.
#[derive(Default)]
pub struct OrderMutation;

#[Object]
impl OrderMutation {
    /// Creates a user; an opening balance is recorded in the balance ledger. Admin only.
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<User> {
        let user = users::create_user(app(ctx)?.pool(), caller(ctx)?, input.into()).await?;
        Ok(User::from(user))
    }

    /// Creates a PENDING, UNPAID order whose total is the sum of its items. Admins may
    /// create orders for anyone, customer keys only for their own user.
    async fn create_order(&self, ctx: &Context<'_>, input: CreateOrderInput) -> Result<Order> {
        let order = orders::create_order(app(ctx)?.pool(), caller(ctx)?, input.into_domain()?).await?;
        Order::load_changed(ctx, order).await
    }

    /// Starts a payment attempt (PENDING) with the configured provider for a PENDING order
    /// that is not paid; the order's payment status becomes PROCESSING.
    async fn create_payment(&self, ctx: &Context<'_>, input: CreatePaymentInput) -> Result<Payment> {
        let app = app(ctx)?;
        let order_id = parse_id("input.orderId", &input.order_id)?;
        let details = input.details();
        let started = lifecycle::create_payment(
            app.pool(),
            app.providers(),
            caller(ctx)?,
            order_id,
            input.payment_method,
            details,
        )
        .await;
        let payment = count(app, started, Metrics::payment, "started")?;
        Ok(Payment::try_from(payment)?)
    }

    /// Cancels a PENDING order that is not paid (a paid order is CONFLICT: refund it
    /// instead); pending payment attempts are cancelled. Admin only.
    async fn cancel_order(&self, ctx: &Context<'_>, input: CancelOrderInput) -> Result<Order> {
        let app = app(ctx)?;
        let order = lifecycle::cancel_order(app.pool(), app.providers(), caller(ctx)?, input.into_domain()?).await?;
        Order::load_changed(ctx, order).await
    }

    /// Records a succeeded manual payment of a PENDING order (payment UNPAID, PROCESSING or
    /// FAILED): the order becomes COMPLETED/PAID. With `chargeBalance` the user's balance
    /// pays through the ledger; too little is INSUFFICIENT_BALANCE. Admin only.
    async fn mark_order_paid(&self, ctx: &Context<'_>, input: MarkOrderPaidInput) -> Result<Order> {
        let app = app(ctx)?;
        let paid = lifecycle::mark_order_paid(app.pool(), app.providers(), caller(ctx)?, input.into_domain()?).await;
        let order = count(app, paid, Metrics::payment, "marked_paid")?;
        Order::load_changed(ctx, order).await
    }

    /// Refunds part or all of a PAID or PARTIALLY_REFUNDED order, at most what is left to
    /// refund. With `creditBalance` the amount goes to the user's balance; otherwise back
    /// through the provider of the payment. Admin only.
    async fn refund_order(&self, ctx: &Context<'_>, input: RefundOrderInput) -> Result<Order> {
        let app = app(ctx)?;
        let refunded =
            crate::domain::refunds::refund_order(app.pool(), app.providers(), caller(ctx)?, input.into_domain()?).await;
        let order = count(app, refunded, Metrics::refund, "succeeded")?;
        Order::load_changed(ctx, order).await
    }

    /// Gives back, through its provider, the whole amount of a payment attempt that was
    /// paid after its order had been paid by another (`Payment.moneyDueBack`). The order's
    /// own refunded amount does not change; the refund shows with `dueBack: true`. Unknown
    /// provider outcomes are OUTCOME_PENDING as for `refundOrder`. Admin only.
    async fn refund_due_payment(&self, ctx: &Context<'_>, input: RefundDuePaymentInput) -> Result<Order> {
        let app = app(ctx)?;
        let payment = parse_id("paymentId", &input.payment_id)?;
        let refunded = crate::domain::refunds::refund_due_payment(
            app.pool(),
            app.providers(),
            caller(ctx)?,
            payment,
            input.reason,
        )
        .await;
        let order = count(app, refunded, Metrics::refund, "due_back")?;
        Order::load_changed(ctx, order).await
    }

    /// Applies a payment outcome reported by the provider. Repeats change nothing; a
    /// non-success after a success is recorded as an ignored event. Admin only over
    /// GraphQL; providers use the signed REST callback.
    async fn process_payment_callback(&self, ctx: &Context<'_>, input: PaymentCallbackInput) -> Result<Order> {
        let app = app(ctx)?;
        let outcome = match input.status {
            super::types::PaymentAttemptStatus::Pending => "callback_pending",
            super::types::PaymentAttemptStatus::Succeeded => "callback_succeeded",
            super::types::PaymentAttemptStatus::Failed => "callback_failed",
            super::types::PaymentAttemptStatus::Cancelled => "callback_cancelled",
            super::types::PaymentAttemptStatus::Authorized => "callback_authorized",
        };
        let reported = input.into_domain(app.config().authentication_timeout)?;
        let applied = lifecycle::process_callback(app.pool(), app.providers(), caller(ctx)?, reported).await;
        let order = count(app, applied, Metrics::payment, outcome)?;
        Order::load_changed(ctx, order).await
    }

    /// Asks the payment's provider for its current state and applies it like a callback.
    /// Manual payments come back unchanged; an unreachable provider is PROVIDER_ERROR.
    /// Admin only.
    async fn reconcile_payment(&self, ctx: &Context<'_>, input: ReconcilePaymentInput) -> Result<Order> {
        let app = app(ctx)?;
        let order_id = parse_id("input.orderId", &input.order_id)?;
        let payment_id = parse_id("input.paymentId", &input.payment_id)?;
        let reconciled =
            lifecycle::reconcile_payment(app.pool(), app.providers(), caller(ctx)?, order_id, payment_id).await;
        let order = count(app, reconciled, Metrics::payment, "reconciled")?;
        Order::load_changed(ctx, order).await
    }
}
