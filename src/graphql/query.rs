use async_graphql::{Context, ID, Object, Result};

use super::inputs::OrderFilter;
use super::types::{Order, OrderPage, OrderSortField, SortDirection, User, parse_id};
use super::{app, caller};
use crate::domain::paging::PageRequest;
use crate::domain::{orders, users};

/// Read operations.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// One order by database id; null when absent (or not yours).
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        let id = parse_id("id", &id)?;
        let order = orders::get_order(app(ctx)?.pool(), caller(ctx)?, id).await?;
        Ok(order.map(Order::try_from).transpose()?)
    }

    /// One order by its number (exact match); null when absent (or not yours).
    async fn order_by_number(&self, ctx: &Context<'_>, number: String) -> Result<Option<Order>> {
        let order = orders::get_order_by_number(app(ctx)?.pool(), caller(ctx)?, &number).await?;
        Ok(order.map(Order::try_from).transpose()?)
    }

    /// A filtered, sorted page of orders. `perPage` is 1 to 100.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        filter: Option<OrderFilter>,
        #[graphql(default_with = "OrderSortField::CreatedAt")] sort: OrderSortField,
        #[graphql(default_with = "SortDirection::Desc")] direction: SortDirection,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 20)] per_page: i32,
    ) -> Result<OrderPage> {
        let request = PageRequest::new(page.into(), per_page.into(), "page", "perPage")?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let page = orders::list_orders(
            app(ctx)?.pool(),
            caller(ctx)?,
            filter,
            sort.into(),
            direction.into(),
            request,
        )
        .await?;
        Ok(OrderPage::try_from(page)?)
    }

    /// One user by database id; null when absent (or not yours).
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let id = parse_id("id", &id)?;
        let user = users::get_user(app(ctx)?.pool(), caller(ctx)?, id).await?;
        Ok(user.map(User::from))
    }
}
