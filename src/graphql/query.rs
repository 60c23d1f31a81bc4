use async_graphql::{Context, ID, Object, Result};

use super::inputs::OrderFilter;
use super::loaders::Wanted;
use super::types::{
    AuditViolation, Order, OrderPage, OrderSortField, SortDirection, UnresolvedItem, User, parse_id, window_request,
};
use super::{app, caller, loaders};
use crate::domain::cursor::PagingArgs;
use crate::domain::{orders, users};

/// Read operations on orders, users and the service's own health of money.
#[derive(Default)]
pub struct OrderQuery;

#[Object]
impl OrderQuery {
    /// One order by database id; null when absent (or not yours).
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        let id = parse_id("id", &id)?;
        let wanted = Wanted::selected_in(&ctx.look_ahead());
        let (caller, loaders) = (caller(ctx)?, loaders(ctx)?);
        let order = if caller.is_confined() {
            // A key bound to one user looks before it loads: nothing an order nests is read
            // for an order the caller may not see (one round trip more, for such keys only).
            let order = orders::visible_to(caller, loaders.order_with(Wanted::default(), id).await?);
            if let Some(order) = &order {
                loaders.prefetch(wanted, std::slice::from_ref(order)).await?;
            }
            order
        } else {
            orders::visible_to(caller, loaders.order_with(wanted, id).await?)
        };
        Ok(order.map(Order::try_from).transpose()?)
    }

    /// One order by its number (exact match); null when absent (or not yours).
    async fn order_by_number(&self, ctx: &Context<'_>, number: String) -> Result<Option<Order>> {
        let order = orders::get_order_by_number(app(ctx)?.pool(), caller(ctx)?, &number).await?;
        Order::load_optional(ctx, order).await
    }

    /// A filtered, sorted page of orders, paged one of two ways:
    /// - by number: `page` (from 1, default 1) and `perPage` (1 to 100, default 20);
    /// - by cursor (Relay): `first` (1 to 100, default 20) orders after the cursor `after`,
    ///   or `last` orders before `before`. Cursors come from `edges { cursor }` and
    ///   `pageInfo { startCursor endCursor }`, and only work with the filter, sort and
    ///   direction they were made with. A cursor walk never skips or repeats an order while
    ///   orders are created, and a deep page costs what the first one does.
    ///
    /// Mixing the two is a `BAD_USER_INPUT`.
    #[allow(clippy::too_many_arguments, reason = "the GraphQL arguments of the field")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        filter: Option<OrderFilter>,
        #[graphql(default_with = "Some(OrderSortField::CreatedAt)")] sort: Option<OrderSortField>,
        #[graphql(default_with = "Some(SortDirection::Desc)")] direction: Option<SortDirection>,
        page: Option<i32>,
        per_page: Option<i32>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<OrderPage> {
        // An explicit null means the default, like an omitted argument.
        let sort = sort.unwrap_or(OrderSortField::CreatedAt);
        let direction = direction.unwrap_or(SortDirection::Desc);
        let window = window_request(ctx, PagingArgs { page, per_page, first, after, last, before })?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let page =
            orders::list_orders(app(ctx)?.pool(), caller(ctx)?, filter, sort.into(), direction.into(), window).await?;
        OrderPage::load(ctx, page).await
    }

    /// One user by database id; null when absent (or not yours).
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let id = parse_id("id", &id)?;
        let user = users::get_user(app(ctx)?.pool(), caller(ctx)?, id).await?;
        Ok(user.map(User::from))
    }

    /// Checks every money invariant over the whole database (admins): an empty list means
    /// all hold. The same checks as `billing-api audit`.
    async fn audit(&self, ctx: &Context<'_>) -> Result<Vec<AuditViolation>> {
        let found = crate::domain::audit::audit(app(ctx)?.pool(), caller(ctx)?).await?;
        Ok(found.into_iter().map(AuditViolation::from).collect())
    }

    /// Refunds and payment attempts whose outcome is not known yet (PENDING), oldest first,
    /// at most `limit` of each kind (admins). The janitor asks the provider about each on
    /// its schedule; `billing-api unresolved` prints the same list.
    async fn unresolved_work(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 0)] older_than_seconds: i64,
        #[graphql(default = 50)] limit: i64,
    ) -> Result<Vec<UnresolvedItem>> {
        let items =
            crate::domain::janitor::unresolved(app(ctx)?.pool(), caller(ctx)?, older_than_seconds, limit).await?;
        Ok(items.into_iter().map(UnresolvedItem::from).collect())
    }
}
