//! GraphQL object types. Doc comments here are the schema's descriptions.

use async_graphql::{ComplexObject, Context, Enum, ID, Object, Result, SimpleObject};

use super::scalars::{JsonValue, Money};
use chrono::{DateTime, Utc};

use super::loaders::Wanted;
pub use super::payments::Payment;
use super::{caller, loaders};
use crate::db::models;
use crate::domain::cursor::{PagingArgs, Window};
use crate::domain::enums::decode;
use crate::domain::orders::{self, OrderSortField as DomainSortField, SortDirection as DomainDirection};
use crate::domain::paging::{Page, PageRequest, Total};
use crate::domain::{self, OrderStatus as DomainOrderStatus};
use crate::error::{AppError, AppResult};

/// Lifecycle of an order (REST code in brackets).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "OrderStatus", remote = "crate::domain::OrderStatus")]
pub enum OrderStatus {
    /// Created, not yet paid or cancelled (1).
    Pending,
    /// Paid (2).
    Completed,
    /// Cancelled before payment (3).
    Cancelled,
    /// Fully refunded (4).
    Refunded,
    /// Saved by its merchant, not yet open for payment (5).
    Draft,
}

/// Where the money of an order stands (REST code in brackets).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PaymentStatus", remote = "crate::domain::PaymentStatus")]
pub enum PaymentStatus {
    /// No payment has started (1).
    Unpaid,
    /// A payment attempt is under way (2).
    Processing,
    /// Paid in full (3).
    Paid,
    /// The last payment attempt failed (4).
    Failed,
    /// Paid, and part of it refunded (5).
    PartiallyRefunded,
    /// Paid, and all of it refunded (6).
    Refunded,
}

/// State of one payment attempt (REST code in brackets).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PaymentAttemptStatus", remote = "crate::domain::PaymentAttemptStatus")]
pub enum PaymentAttemptStatus {
    /// Started, outcome not known yet (1).
    Pending,
    /// The money was taken (2).
    Succeeded,
    /// The provider declined or the attempt errored (3).
    Failed,
    /// Abandoned, e.g. because the order was cancelled (4).
    Cancelled,
    /// The provider reserved the amount (manual capture); `capturePayment` takes it,
    /// `cancelPayment` releases it (5). Seed 002's `reserved`.
    Authorized,
}

/// State of one refund (REST code in brackets).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RefundStatus", remote = "crate::domain::RefundStatus")]
pub enum RefundStatus {
    /// Requested, not yet confirmed by the provider (1).
    Pending,
    /// The money went back (2).
    Succeeded,
    /// The provider refused the refund (3).
    Failed,
}

/// Field an order list is sorted by; ties are broken by id in the same direction.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::orders::OrderSortField")]
pub enum OrderSortField {
    /// Database id.
    Id,
    /// Order number.
    Number,
    /// Order status code.
    Status,
    /// Order total.
    TotalCents,
    /// Creation time (the default).
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Payment time; unpaid orders come last in either direction.
    PaidAt,
}

/// Sort direction.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::orders::SortDirection")]
pub enum SortDirection {
    /// Smallest first.
    Asc,
    /// Largest first (the default).
    Desc,
}

pub(crate) fn id(value: i64) -> ID {
    ID(value.to_string())
}

/// Parses a decimal database id given by the client; `field` names the argument.
pub(crate) fn parse_id(field: &str, value: &ID) -> AppResult<i64> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| AppError::bad_input(format!("{field} must be a positive decimal id (got {:?})", value.as_str())))
}

/// An order: what a user buys, what it costs and where its money stands.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Order {
    /// Database id.
    pub id: ID,
    /// Human-facing order number, `ORD-<yyyymmdd>-<id>`.
    pub number: String,
    /// The user who owns the order (the buyer); a store's payment request may have none
    /// yet.
    pub user_id: Option<ID>,
    /// The public id (seed 001's `id`), the same on every face.
    pub public_id: uuid::Uuid,
    /// The number of the order's last event (events are numbered 1, 2, 3, … per order).
    pub event_seq: i64,
    /// Lifecycle status.
    pub status: OrderStatus,
    /// Payment status.
    pub payment_status: PaymentStatus,
    /// Provider payment intent of the current or last attempt.
    pub payment_intent_id: Option<String>,
    /// Reference of the payment that paid the order.
    pub payment_reference: Option<String>,
    /// Failure code of the last failed attempt.
    pub payment_failure_code: Option<String>,
    /// Failure message of the last failed attempt.
    pub payment_failure_message: Option<String>,
    /// Sum of the items, in minor units of `currency`.
    pub total_cents: Money,
    /// ISO-4217 currency code, upper case.
    pub currency: String,
    /// How the order is (to be) paid: `card`, `bank_transfer`, `balance`, ...
    pub payment_method: String,
    /// Subscription plan the order is for, if any.
    pub plan_id: Option<ID>,
    /// The plan as it was when ordered.
    pub plan_snapshot: JsonValue,
    /// Free-form client data.
    pub metadata: JsonValue,
    /// Reason given when the order was cancelled.
    pub cancel_reason: Option<String>,
    /// When the order was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// When the order was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Amount refunded so far, in minor units (never more than `totalCents`).
    pub refunded_cents: Money,
    /// Refunds sent to the payment provider whose outcome is not known yet, in minor
    /// units: reserved, so they cannot be refunded twice (see `unresolvedWork`).
    pub refund_pending_cents: Money,
    /// When the last refund happened.
    pub refunded_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub(crate) raw_id: i64,
    #[graphql(skip)]
    pub(crate) raw_user_id: Option<i64>,
    #[graphql(skip)]
    pub(crate) row: models::Order,
}

impl TryFrom<models::Order> for Order {
    type Error = AppError;

    fn try_from(o: models::Order) -> AppResult<Self> {
        let row = o.clone();
        Ok(Self {
            id: id(o.id),
            number: o.number,
            user_id: o.user_id.map(id),
            public_id: o.public_id,
            event_seq: o.event_seq,
            status: decode(o.status, DomainOrderStatus::from_code, "order status")?.into(),
            payment_status: decode(o.payment_status, domain::PaymentStatus::from_code, "payment status")?.into(),
            payment_intent_id: o.payment_intent_id,
            payment_reference: o.payment_reference,
            payment_failure_code: o.payment_failure_code,
            payment_failure_message: o.payment_failure_message,
            total_cents: Money(o.total_cents),
            currency: o.currency,
            payment_method: o.payment_method,
            plan_id: o.plan_id.map(id),
            plan_snapshot: JsonValue(o.plan_snapshot),
            metadata: JsonValue(o.metadata),
            cancel_reason: o.cancel_reason,
            paid_at: o.paid_at,
            cancelled_at: o.cancelled_at,
            refunded_cents: Money(o.refunded_cents),
            refund_pending_cents: Money(o.refund_pending_cents),
            refunded_at: o.refunded_at,
            created_at: o.created_at,
            updated_at: o.updated_at,
            raw_id: o.id,
            raw_user_id: o.user_id,
            row,
        })
    }
}

impl Order {
    /// The order a field returns, with the nested lists its selection asks for loaded in
    /// one round trip (see [`loaders`](super::loaders)).
    pub async fn load(ctx: &Context<'_>, order: models::Order) -> Result<Self> {
        let wanted = Wanted::selected_in(&ctx.look_ahead());
        loaders(ctx)?.prefetch(wanted, std::slice::from_ref(&order)).await?;
        Ok(Self::try_from(order)?)
    }

    /// [`Order::load`] for what a mutation returns: rows this request loaded before the
    /// change are loaded again.
    ///
    /// The change is committed by now, so a failed prefetch is not the mutation's error:
    /// the nested fields then load on their own, and any failure shows at their path.
    pub async fn load_changed(ctx: &Context<'_>, order: models::Order) -> Result<Self> {
        let loaders = loaders(ctx)?;
        loaders.forget(&order);
        let wanted = Wanted::selected_in(&ctx.look_ahead());
        if let Err(error) = loaders.prefetch(wanted, std::slice::from_ref(&order)).await {
            tracing::warn!(error = %error, order = order.id, "prefetch after a change failed; fields load on their own");
        }
        Ok(Self::try_from(order)?)
    }

    /// [`Order::load`] for a field that may find no order.
    pub async fn load_optional(ctx: &Context<'_>, order: Option<models::Order>) -> Result<Option<Self>> {
        match order {
            Some(order) => Ok(Some(Self::load(ctx, order).await?)),
            None => Ok(None),
        }
    }
}

pub(crate) fn convert_all<M, T: TryFrom<M, Error = AppError>>(rows: Vec<M>) -> AppResult<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

#[ComplexObject]
impl Order {
    /// Line items, in the order they were added.
    async fn items(&self, ctx: &Context<'_>) -> Result<Vec<OrderItem>> {
        Ok(loaders(ctx)?.items(self.raw_id).await?.into_iter().map(OrderItem::from).collect())
    }

    /// Refunds, oldest first.
    async fn refunds(&self, ctx: &Context<'_>) -> Result<Vec<Refund>> {
        Ok(convert_all(loaders(ctx)?.refunds(self.raw_id).await?)?)
    }

    /// Payment attempts, oldest first.
    async fn payments(&self, ctx: &Context<'_>) -> Result<Vec<Payment>> {
        let mut payments: Vec<Payment> = convert_all(loaders(ctx)?.payments(self.raw_id).await?)?;
        // Their order is this one, already read and visible: `payment.order` costs nothing.
        if ctx.look_ahead().field("order").exists() {
            let order = Box::new(self.clone());
            for payment in &mut payments {
                payment.preloaded_order = Some(order.clone());
            }
        }
        Ok(payments)
    }

    /// The user who owns the order; null while a store's payment request has no buyer,
    /// and always null for merchant keys (a buyer's account is not the merchant's to read).
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(user_id) = self.raw_user_id else {
            return Ok(None);
        };
        if caller(ctx)?.role == crate::domain::Role::Merchant {
            return Ok(None);
        }
        Ok(Some(User::from(loaders(ctx)?.user(self.raw_id, user_id).await?)))
    }

    /// Refund requests of this order (seed 004), oldest first; loaded for all the orders of
    /// a response in one query.
    async fn refund_requests(&self, ctx: &Context<'_>) -> Result<Vec<super::refund_requests::RefundRequest>> {
        super::refund_requests::of_order(ctx, self.raw_id).await
    }

    /// The order's status in seed 001's vocabulary (see docs/decisions.md, "Merchant
    /// statuses"): derived from `status`, `paymentStatus` and the newest payment attempt.
    async fn merchant_status(&self, ctx: &Context<'_>) -> Result<super::merchants::MerchantOrderStatus> {
        let payments = loaders(ctx)?.payments(self.raw_id).await?;
        Ok(crate::domain::merchants::status::of_order(&self.row, &payments).into())
    }

    /// Seed 001's payment method this order's `paymentMethod` stands for, if any.
    async fn pay_method(&self) -> Option<super::merchants::PayMethod> {
        crate::domain::merchants::status::PayMethod::of_method(&self.row.payment_method).map(Into::into)
    }

    /// The store whose payment request this is; null for other orders.
    async fn store(&self, ctx: &Context<'_>) -> Result<Option<super::merchants::Store>> {
        Ok(loaders(ctx)?.merchant_parts(&self.row).await?.store.map(Into::into))
    }

    /// The merchant of the store; null for other orders.
    async fn merchant(&self, ctx: &Context<'_>) -> Result<Option<super::merchants::Merchant>> {
        Ok(loaders(ctx)?.merchant_parts(&self.row).await?.merchant.map(Into::into))
    }

    /// What the merchant said about this payment request; null for other orders.
    async fn payment_request(&self, ctx: &Context<'_>) -> Result<Option<super::merchants::PaymentRequest>> {
        let base = &super::app(ctx)?.config().public_base_url;
        let parts = loaders(ctx)?.merchant_parts(&self.row).await?;
        let caller = caller(ctx)?;
        Ok(parts.request.map(|r| super::merchants::PaymentRequest::new(r, self.row.public_id, base, caller)))
    }

    /// The order's history, oldest first.
    async fn events(&self, ctx: &Context<'_>) -> Result<Vec<OrderEvent>> {
        let caller = super::caller(ctx)?;
        let events = loaders(ctx)?.events(self.raw_id).await?;
        Ok(events.into_iter().map(|e| OrderEvent::from(crate::domain::events::as_seen_by(caller, e))).collect())
    }
}

/// One line of an order.
#[derive(SimpleObject)]
pub struct OrderItem {
    /// Database id.
    pub id: ID,
    /// What was bought.
    pub name: String,
    /// Stock-keeping unit, if the product has one.
    pub sku: Option<String>,
    /// How many.
    pub quantity: i32,
    /// Price of one, in minor units.
    pub unit_price_cents: Money,
    /// `quantity × unitPriceCents`.
    pub total_cents: Money,
    /// Free-form client data.
    pub metadata: JsonValue,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<models::OrderItem> for OrderItem {
    fn from(i: models::OrderItem) -> Self {
        Self {
            id: id(i.id),
            name: i.name,
            sku: i.sku,
            quantity: i.quantity,
            unit_price_cents: Money(i.unit_price_cents),
            total_cents: Money(i.total_cents),
            metadata: JsonValue(i.metadata),
            created_at: i.created_at,
        }
    }
}

/// Money given back for an order.
#[derive(SimpleObject)]
pub struct Refund {
    /// Database id.
    pub id: ID,
    /// The refunded order.
    pub order_id: ID,
    /// The payment the money came from.
    pub payment_id: Option<ID>,
    /// Refund status.
    pub status: RefundStatus,
    /// Amount, in minor units.
    pub amount_cents: Money,
    /// ISO-4217 currency code.
    pub currency: String,
    /// Why it was refunded.
    pub reason: Option<String>,
    /// Free-form client data.
    pub metadata: JsonValue,
    /// True when the amount went to the user's balance instead of the payment provider.
    pub credit_balance: bool,
    /// True when it gave back a duplicate payment's money, not the order's own.
    pub due_back: bool,
    /// True when it records the part of an authorisation that was not captured: no money
    /// moved (it never left the customer).
    pub released: bool,
    /// When the money went back.
    pub refunded_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl TryFrom<models::Refund> for Refund {
    type Error = AppError;

    fn try_from(r: models::Refund) -> AppResult<Self> {
        Ok(Self {
            id: id(r.id),
            order_id: id(r.order_id),
            payment_id: r.payment_id.map(id),
            status: decode(r.status, domain::RefundStatus::from_code, "refund status")?.into(),
            amount_cents: Money(r.amount_cents),
            currency: r.currency,
            reason: r.reason,
            metadata: JsonValue(r.metadata),
            credit_balance: r.credit_balance,
            due_back: r.due_back,
            released: r.released,
            refunded_at: r.refunded_at,
            created_at: r.created_at,
        })
    }
}

/// Something that happened to an order (append-only).
#[derive(SimpleObject)]
pub struct OrderEvent {
    /// Database id.
    pub id: ID,
    /// What happened: `created`, `payment_started`, `paid`, `payment_failed`, `cancelled`,
    /// `refunded`, `reconciled`, `callback_ignored`, ...
    pub kind: String,
    /// Who did it: the API key's name, or `payment-provider`. Customer keys see `staff`
    /// for every key.
    pub actor: String,
    /// Details of the event. Customer keys see amounts, ids and outcomes only (no notes,
    /// references, provider identifiers or provider messages).
    pub data: JsonValue,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl From<models::OrderEvent> for OrderEvent {
    fn from(e: models::OrderEvent) -> Self {
        Self { id: id(e.id), kind: e.kind, actor: e.actor, data: JsonValue(e.data), created_at: e.created_at }
    }
}

/// A customer account with a balance that can pay for orders.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct User {
    /// Database id.
    pub id: ID,
    /// E-mail address (unique, case-insensitive).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Balance in minor units; never negative.
    pub balance_cents: Money,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub(crate) raw_id: i64,
}

impl From<models::User> for User {
    fn from(u: models::User) -> Self {
        Self {
            id: id(u.id),
            email: u.email,
            name: u.name,
            balance_cents: Money(u.balance_cents),
            created_at: u.created_at,
            raw_id: u.id,
        }
    }
}

#[ComplexObject]
impl User {
    /// The user's orders, newest first. Page by number (`page` from 1, `perPage` 1 to 100,
    /// default 20) or by cursor (`first`/`after` or `last`/`before`, see `orders`).
    #[allow(clippy::too_many_arguments, reason = "the GraphQL arguments of the field")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        page: Option<i32>,
        per_page: Option<i32>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<OrderPage> {
        let app = super::app(ctx)?;
        let window = window_request(ctx, PagingArgs { page, per_page, first, after, last, before })?;
        let filter = orders::OrderFilter { user_id: Some(self.raw_id), ..Default::default() };
        let page = orders::list_orders(
            app.pool(),
            caller(ctx)?,
            filter,
            DomainSortField::CreatedAt,
            DomainDirection::Desc,
            window,
        )
        .await?;
        OrderPage::load(ctx, page).await
    }
}

/// Where a page sits in its list (see the `#[Object]` impl for the fields).
pub struct PageInfo {
    /// `None` when paged by cursor.
    page: Option<i32>,
    per_page: i32,
    /// Counted only when the query selects `totalCount` (see [`page_request`]).
    total_count: Total,
    has_next_page: bool,
    has_previous_page: bool,
    start_cursor: Option<String>,
    end_cursor: Option<String>,
}

impl PageInfo {
    /// The paging numbers of `page`.
    pub fn of<T>(page: &Page<T>) -> Self {
        PageInfo {
            page: if page.by_cursor { None } else { Some(i32::try_from(page.request.page).unwrap_or(i32::MAX)) },
            per_page: i32::try_from(page.request.per_page).unwrap_or(i32::MAX),
            has_previous_page: page.has_previous_page,
            total_count: page.total_count.clone(),
            has_next_page: page.has_next_page,
            start_cursor: page.cursors.first().cloned(),
            end_cursor: page.cursors.last().cloned(),
        }
    }
}

/// Where a page sits in its list.
#[Object]
impl PageInfo {
    /// This page's number, from 1; null when the list is paged by cursor.
    async fn page(&self) -> Option<i32> {
        self.page
    }

    /// Page size (`perPage`, or `first`/`last` when paged by cursor).
    async fn per_page(&self) -> i32 {
        self.per_page
    }

    /// How many items match, on all pages (whatever the cursor). Counted only when selected.
    async fn total_count(&self) -> Result<i64> {
        // page_request() asks for the count whenever this field is selected.
        self.total_count
            .get()
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("totalCount selected but not counted")).into())
    }

    /// Whether a later page has items.
    async fn has_next_page(&self) -> bool {
        self.has_next_page
    }

    /// Whether an earlier page has items: true past page 1, or when this page starts after
    /// a cursor (`after`), or, paging backward, when rows come before it.
    async fn has_previous_page(&self) -> bool {
        self.has_previous_page
    }

    /// The cursor of this page's first item (null on an empty page).
    async fn start_cursor(&self) -> Option<&str> {
        self.start_cursor.as_deref()
    }

    /// The cursor of this page's last item: pass it as `after` for the next page.
    async fn end_cursor(&self) -> Option<&str> {
        self.end_cursor.as_deref()
    }
}

/// The page a list field asks for, counting the matches only when the query selects
/// `pageInfo { totalCount }` (a count visits every matching row; the page does not).
pub fn page_request(ctx: &Context<'_>, page: Option<i32>, per_page: Option<i32>) -> Result<PageRequest> {
    // Every list costs statements: past the request's ceiling, none is started.
    crate::db::budget::check_statements()?;
    let request = PageRequest::from_args(page, per_page)?;
    let counted = ctx.look_ahead().field("pageInfo").field("totalCount").exists();
    Ok(if counted { request } else { request.without_total() })
}

/// [`page_request`] for lists that also page by cursor.
pub fn window_request(ctx: &Context<'_>, args: PagingArgs) -> Result<Window> {
    crate::db::budget::check_statements()?;
    let window = Window::from_args(args)?;
    let counted = ctx.look_ahead().field("pageInfo").field("totalCount").exists();
    Ok(if counted { window } else { window.without_total() })
}

/// One order of a page, with its cursor (Relay's edge).
#[derive(SimpleObject)]
pub struct OrderEdge {
    /// Opaque; pass it as `after` (or `before`) with the same filter and sort.
    pub cursor: String,
    pub node: Order,
}

/// A page of orders: `nodes`, or `edges` with cursors (the same orders), and `pageInfo`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct OrderPage {
    /// The orders of this page.
    pub nodes: Vec<Order>,
    /// Paging numbers.
    pub page_info: PageInfo,
    #[graphql(skip)]
    pub cursors: Vec<String>,
}

#[ComplexObject]
impl OrderPage {
    /// The orders of this page with their cursors (the Relay connection form of `nodes`).
    async fn edges(&self) -> Vec<OrderEdge> {
        self.nodes
            .iter()
            .zip(&self.cursors)
            .map(|(node, cursor)| OrderEdge { cursor: cursor.clone(), node: node.clone() })
            .collect()
    }
}

impl OrderPage {
    /// Builds the page, prefetching the nested lists the query selects.
    pub async fn load(ctx: &Context<'_>, page: Page<models::Order>) -> Result<Self> {
        let look = ctx.look_ahead();
        let wanted =
            Wanted::selected_in(&look.field("nodes")).or(Wanted::selected_in(&look.field("edges").field("node")));
        loaders(ctx)?.prefetch(wanted, &page.nodes).await?;
        Ok(Self::try_from(page)?)
    }
}

impl TryFrom<Page<models::Order>> for OrderPage {
    type Error = AppError;

    fn try_from(page: Page<models::Order>) -> AppResult<Self> {
        let page_info = PageInfo::of(&page);
        Ok(Self { nodes: convert_all(page.nodes)?, page_info, cursors: page.cursors })
    }
}

/// A broken money invariant found by `audit`.
#[derive(SimpleObject)]
pub struct AuditViolation {
    /// The check that failed (see the README's list of audit checks).
    pub check: String,
    /// The rows involved, as `table:id` separated by spaces.
    pub rows: String,
    /// What the rows say.
    pub detail: String,
}

impl From<crate::domain::audit::Violation> for AuditViolation {
    fn from(v: crate::domain::audit::Violation) -> Self {
        Self { check: v.check, rows: v.rows, detail: v.detail }
    }
}

/// A refund or payment attempt whose outcome the provider has not made known yet.
#[derive(SimpleObject)]
pub struct UnresolvedItem {
    /// `refund` or `payment`.
    pub kind: String,
    /// The refund's or payment attempt's database id.
    pub id: ID,
    pub order_id: ID,
    /// Amount, in minor units.
    pub amount_cents: Money,
    /// ISO-4217 currency code.
    pub currency: String,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// Seconds since it began.
    pub age_seconds: i64,
    /// How many times the janitor has asked the provider.
    pub checks: i32,
    /// When the janitor asks next.
    pub next_check_at: Option<DateTime<Utc>>,
    /// What the provider (or the connection to it) said last.
    pub last_error: Option<String>,
}

impl From<crate::domain::janitor::Unresolved> for UnresolvedItem {
    fn from(u: crate::domain::janitor::Unresolved) -> Self {
        Self {
            kind: u.kind.to_owned(),
            id: id(u.id),
            order_id: id(u.order_id),
            amount_cents: Money(u.amount_cents),
            currency: u.currency,
            created_at: u.created_at,
            age_seconds: u.age_seconds,
            checks: u.checks,
            next_check_at: u.next_check_at,
            last_error: u.last_error,
        }
    }
}
