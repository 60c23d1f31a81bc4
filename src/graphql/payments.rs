//! Payments read on their own: `payment(id)` and `payments(...)` (issue 13's reads).

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::loaders::Wanted;
use super::scalars::Money;
use super::types::{
    Order, PageInfo, Payment, PaymentAttemptStatus, SortDirection, convert_all, parse_id, window_request,
};
use super::{app, caller, loaders};
use crate::db::payments::PaymentSortColumn;
use crate::domain::cursor::PagingArgs;
use crate::domain::paging::Page;
use crate::domain::payments;
use crate::error::AppResult;

/// What `payments` is sorted by (then by id, in the same direction).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PaymentSortField {
    CreatedAt,
    Amount,
    /// Unpaid attempts sort last in both directions.
    PaidAt,
}

impl From<PaymentSortField> for PaymentSortColumn {
    fn from(field: PaymentSortField) -> Self {
        match field {
            PaymentSortField::CreatedAt => PaymentSortColumn::CreatedAt,
            PaymentSortField::Amount => PaymentSortColumn::Amount,
            PaymentSortField::PaidAt => PaymentSortColumn::PaidAt,
        }
    }
}

/// Filters of `payments`; absent fields match anything. Ranges are inclusive, and a range
/// whose low end is above its high end is `BAD_USER_INPUT`.
#[derive(InputObject, Default)]
pub struct PaymentFilter {
    pub status: Option<PaymentAttemptStatus>,
    /// `card`, `bank_transfer`, `balance`, ... (exact).
    pub payment_method: Option<String>,
    /// `manual`, `stripe` or `balance`.
    pub provider: Option<String>,
    pub order_id: Option<ID>,
    /// Payments of this user's orders.
    pub user_id: Option<ID>,
    pub amount_gte: Option<Money>,
    pub amount_lte: Option<Money>,
    pub created_at_gte: Option<DateTime<Utc>>,
    pub created_at_lte: Option<DateTime<Utc>>,
    pub paid_at_gte: Option<DateTime<Utc>>,
    pub paid_at_lte: Option<DateTime<Utc>>,
}

impl PaymentFilter {
    fn into_domain(self) -> AppResult<payments::PaymentFilter> {
        Ok(payments::PaymentFilter {
            status: self.status.map(Into::into),
            payment_method: self.payment_method,
            provider: self.provider,
            order_id: self.order_id.as_ref().map(|id| parse_id("filter.orderId", id)).transpose()?,
            user_id: self.user_id.as_ref().map(|id| parse_id("filter.userId", id)).transpose()?,
            amount_gte: self.amount_gte.map(|m| m.0),
            amount_lte: self.amount_lte.map(|m| m.0),
            created_at_gte: self.created_at_gte,
            created_at_lte: self.created_at_lte,
            paid_at_gte: self.paid_at_gte,
            paid_at_lte: self.paid_at_lte,
        })
    }
}

/// One payment of a page, with its cursor.
#[derive(SimpleObject)]
pub struct PaymentEdge {
    /// Opaque; pass it as `after` (or `before`) with the same filter and sort.
    pub cursor: String,
    pub node: Payment,
}

/// A page of payments: `nodes`, or `edges` with cursors, and `pageInfo`.
#[derive(SimpleObject)]
pub struct PaymentPage {
    pub nodes: Vec<Payment>,
    pub edges: Vec<PaymentEdge>,
    pub page_info: PageInfo,
}

impl PaymentPage {
    /// Builds the page. When `order` is selected, the page's orders (and what they nest)
    /// are loaded at once: a constant number of statements whatever the page size.
    async fn load(ctx: &Context<'_>, page: Page<crate::db::models::Payment>) -> Result<Self> {
        crate::db::budget::charge_rows(page.nodes.len())?;
        let look = ctx.look_ahead();
        let (in_nodes, in_edges) =
            (look.field("nodes").field("order"), look.field("edges").field("node").field("order"));
        let mut preloaded = std::collections::HashMap::new();
        if in_nodes.exists() || in_edges.exists() {
            let wanted = Wanted::selected_in(&in_nodes).or(Wanted::selected_in(&in_edges));
            let mut ids: Vec<i64> = page.nodes.iter().map(|p| p.order_id).collect();
            ids.sort_unstable();
            ids.dedup();
            let caller = caller(ctx)?;
            crate::db::budget::check_statements()?;
            let found = {
                let conn = app(ctx)?.pool().get().await?;
                crate::db::queries::orders_by_ids(&conn, &ids).await?
            };
            let visible: Vec<_> = found.into_iter().filter(|o| caller.can_see_order(o)).collect();
            loaders(ctx)?.prefetch(wanted, &visible).await?;
            for order in visible {
                preloaded.insert(order.id, Order::try_from(order)?);
            }
        }
        let cursors = page.cursors.clone();
        let info = PageInfo::of(&page);
        let mut nodes: Vec<Payment> = convert_all(page.nodes)?;
        for payment in &mut nodes {
            payment.preloaded_order = preloaded.get(&payment.raw_order_id).cloned().map(Box::new);
        }
        let edges = if look.field("edges").exists() {
            nodes.clone().into_iter().zip(cursors).map(|(node, cursor)| PaymentEdge { cursor, node }).collect()
        } else {
            Vec::new()
        };
        Ok(Self { nodes, edges, page_info: info })
    }
}

/// Reads of payments.
#[derive(Default)]
pub struct PaymentQuery;

#[Object]
impl PaymentQuery {
    /// One payment by id; null when absent or when its order is not visible to your key.
    async fn payment(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Payment>> {
        let id = parse_id("id", &id)?;
        let payment = payments::get_payment(app(ctx)?.pool(), caller(ctx)?, id).await?;
        Ok(payment.map(Payment::try_from).transpose()?)
    }

    /// The payments you may see (customers: their own orders'; merchant keys: their
    /// stores'; support and admins: all), filtered and sorted, paged by number (`page`,
    /// `perPage`) or by cursor (`first`/`after`, `last`/`before`), as `orders` is.
    #[allow(clippy::too_many_arguments, reason = "the GraphQL arguments of the field")]
    async fn payments(
        &self,
        ctx: &Context<'_>,
        filter: Option<PaymentFilter>,
        #[graphql(default_with = "Some(PaymentSortField::CreatedAt)")] sort: Option<PaymentSortField>,
        #[graphql(default_with = "Some(SortDirection::Desc)")] direction: Option<SortDirection>,
        page: Option<i32>,
        per_page: Option<i32>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<PaymentPage> {
        let sort = sort.unwrap_or(PaymentSortField::CreatedAt);
        let descending = direction.unwrap_or(SortDirection::Desc) == SortDirection::Desc;
        let window = window_request(ctx, PagingArgs { page, per_page, first, after, last, before })?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let page =
            payments::list_payments(app(ctx)?.pool(), caller(ctx)?, filter, sort.into(), descending, window).await?;
        PaymentPage::load(ctx, page).await
    }
}
