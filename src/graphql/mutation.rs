use async_graphql::{Context, Object, Result};

use super::inputs::{CreateOrderInput, CreatePaymentInput, CreateUserInput};
use super::types::{Order, Payment, User, parse_id};
use super::{app, caller};
use crate::domain::{orders, users};

/// Write operations.
pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a user; an opening balance is recorded in the balance ledger. Admin only.
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<User> {
        let user = users::create_user(app(ctx)?.pool(), caller(ctx)?, input.into()).await?;
        Ok(User::from(user))
    }

    /// Creates a PENDING, UNPAID order whose total is the sum of its items. Admins may
    /// create orders for anyone, customer keys only for their own user.
    async fn create_order(&self, ctx: &Context<'_>, input: CreateOrderInput) -> Result<Order> {
        let order = orders::create_order(app(ctx)?.pool(), caller(ctx)?, input.into_domain()?).await?;
        Ok(Order::try_from(order)?)
    }

    /// Starts a payment attempt (PENDING) for a PENDING order that is not paid; the order's
    /// payment status becomes PROCESSING.
    async fn create_payment(&self, ctx: &Context<'_>, input: CreatePaymentInput) -> Result<Payment> {
        let order_id = parse_id("input.orderId", &input.order_id)?;
        let payment = orders::create_payment(app(ctx)?.pool(), caller(ctx)?, order_id, input.payment_method).await?;
        Ok(Payment::try_from(payment)?)
    }
}
