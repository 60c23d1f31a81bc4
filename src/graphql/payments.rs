//! Payments read on their own: `payment(id)` and `payments(...)` (issue 13's reads).

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::loaders::Wanted;
use super::scalars::JsonValue;
use super::scalars::Money;
use super::types::{Order, PageInfo, PaymentAttemptStatus, SortDirection, convert_all, id, parse_id, window_request};
use super::{app, caller, loaders};
use crate::db::models;
use crate::db::payments::PaymentSortColumn;
use crate::domain::cursor::PagingArgs;
use crate::domain::enums::decode;
use crate::domain::paging::Page;
use crate::domain::payments;
use crate::domain::payments::details::BillingAddress as DomainAddress;
use crate::domain::payments::state as payment_state;
use crate::domain::{self, orders};
use crate::error::{AppError, AppResult};

/// Seed 002's state of a payment (`current_state`), derived from the attempt status, its
/// refunds, settlement and the janitor's checks by a total mapping (docs/decisions.md).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::payments::state::PaymentState")]
pub enum PaymentState {
    /// PENDING with nothing at a provider (a manual attempt awaiting its outcome).
    Created,
    /// PENDING at a provider, or waiting for the customer to authenticate.
    Processing,
    /// PENDING, and the janitor's last question to the provider failed; it asks again.
    OnRetry,
    /// Authorised and not captured.
    Reserved,
    /// The money was taken; not settled yet.
    Captured,
    /// The money was taken and settled.
    Succeeded,
    Failed,
    Cancelled,
    /// A refund of it is under way.
    PendingRefund,
    /// Its latest refund failed.
    RefundFailed,
    /// Part of its money went back.
    PartialRefund,
    /// All of its money went back.
    Refunded,
}

/// A billing address (Stripe's address fields and a name).
#[derive(SimpleObject, Clone)]
pub struct BillingAddress {
    pub name: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

impl From<DomainAddress> for BillingAddress {
    fn from(a: DomainAddress) -> Self {
        Self {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            state: a.state,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

/// What is shown of the card a payment used: never its number or security code.
#[derive(SimpleObject, Clone)]
pub struct CardSummary {
    /// `visa`, `mastercard`, `amex`, ...
    pub brand: Option<String>,
    pub last4: String,
    pub exp_month: Option<i32>,
    pub exp_year: Option<i32>,
}

/// What `payments` is sorted by (then by id, in the same direction).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PaymentSortField {
    CreatedAt,
    Amount,
    /// Unpaid attempts sort last in both directions.
    PaidAt,
    /// Unsettled payments sort last in both directions.
    SettledAt,
}

impl From<PaymentSortField> for PaymentSortColumn {
    fn from(field: PaymentSortField) -> Self {
        match field {
            PaymentSortField::CreatedAt => PaymentSortColumn::CreatedAt,
            PaymentSortField::Amount => PaymentSortColumn::Amount,
            PaymentSortField::PaidAt => PaymentSortColumn::PaidAt,
            PaymentSortField::SettledAt => PaymentSortColumn::SettledAt,
        }
    }
}

/// One attempt to pay an order.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Payment {
    /// Database id.
    pub id: ID,
    /// The order being paid.
    pub order_id: ID,
    /// Attempt status.
    pub status: PaymentAttemptStatus,
    /// Who processes it: `manual`, `stripe` or `balance`.
    pub provider: String,
    /// How it is paid: `card`, `bank_transfer`, `balance`, ...
    pub payment_method: String,
    /// Amount, in minor units.
    pub amount_cents: Money,
    /// ISO-4217 currency code.
    pub currency: String,
    /// Provider or manual reference.
    pub reference: Option<String>,
    /// Provider payment intent.
    pub payment_intent_id: Option<String>,
    /// Why it failed (provider code).
    /// True when money arrived on this attempt after its order had been paid by another
    /// (failure code `duplicate_payment`): it is due back (`refundDuePayment`).
    pub money_due_back: bool,
    pub failure_code: Option<String>,
    /// Why it failed (human text).
    pub failure_message: Option<String>,
    /// When the money was taken.
    pub paid_at: Option<DateTime<Utc>>,
    /// What the customer must complete (3-D Secure or a one-time password) while the
    /// attempt is PENDING; kept after it fails with `authentication_timeout`.
    pub authentication: Option<super::merchants::AuthenticationKind>,
    /// Until when the customer may authenticate.
    pub authentication_expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Six characters, unique, without look-alikes (no 0/O, 1/I/L): for people to quote.
    pub human_id: String,
    /// Money the provider holds reserved for a manual capture (while AUTHORIZED).
    pub amount_reserved_cents: Money,
    /// When the provider reported the money settled.
    pub settled_at: Option<DateTime<Utc>>,
    /// How much settled (null until it did).
    pub settled_amount_cents: Option<Money>,
    pub description: Option<String>,
    pub billing_address: Option<BillingAddress>,
    /// Free-form client data.
    pub metadata: JsonValue,
    /// Seed 002's flag; it does not stop an outcome the provider reports.
    pub active: bool,
    /// When the client means it to happen: stored and shown, never acted on.
    pub payment_date: Option<DateTime<Utc>>,
    /// The card's brand, last four digits and expiry, for card payments whose card is known.
    pub card: Option<CardSummary>,
    #[graphql(skip)]
    pub raw: Box<models::Payment>,
    #[graphql(skip)]
    pub raw_order_id: i64,
    /// The order, when a list loaded it with its page.
    #[graphql(skip)]
    pub preloaded_order: Option<Box<Order>>,
}

#[ComplexObject]
impl Payment {
    /// The order this payment pays (null if not visible to your key). A list of payments
    /// loads the orders of its page at once.
    async fn order(&self, ctx: &Context<'_>) -> Result<Option<Order>> {
        if let Some(order) = &self.preloaded_order {
            return Ok(Some(Order::clone(order)));
        }
        let wanted = Wanted::selected_in(&ctx.look_ahead());
        let order = orders::visible_to(caller(ctx)?, loaders(ctx)?.order_with(wanted, self.raw_order_id).await?);
        Ok(order.map(Order::try_from).transpose()?)
    }

    /// Seed 002's state (see `PaymentState`).
    async fn state(&self, ctx: &Context<'_>) -> Result<PaymentState> {
        let refunds = loaders(ctx)?.refunds(self.raw_order_id).await?;
        Ok(payment_state::state_of(&self.raw, &refunds)?.into())
    }

    /// Money taken (0 until it is): the amount, less what a partial capture released.
    async fn amount_captured_cents(&self, ctx: &Context<'_>) -> Result<Money> {
        let refunds = loaders(ctx)?.refunds(self.raw_order_id).await?;
        Ok(Money(payment_state::captured_cents(&self.raw, &refunds)?))
    }

    /// Money of this payment that went back (its SUCCEEDED refunds; a release of an
    /// uncaptured part is not one).
    async fn amount_refunded_cents(&self, ctx: &Context<'_>) -> Result<Money> {
        let refunds = loaders(ctx)?.refunds(self.raw_order_id).await?;
        Ok(Money(payment_state::refunded_cents(&self.raw, &refunds)))
    }
}

impl TryFrom<models::Payment> for Payment {
    type Error = AppError;

    fn try_from(p: models::Payment) -> AppResult<Self> {
        let due_back = crate::domain::lifecycle::is_due_back(&p);
        let card = p.card_last4.clone().map(|last4| CardSummary {
            brand: p.card_brand.clone(),
            last4,
            exp_month: p.card_exp_month.map(i32::from),
            exp_year: p.card_exp_year.map(i32::from),
        });
        Ok(Self {
            human_id: p.human_id.clone(),
            amount_reserved_cents: Money(payment_state::reserved_cents(&p)),
            settled_at: p.settled_at,
            settled_amount_cents: p.settled_cents.map(Money),
            description: p.description.clone(),
            billing_address: p.billing_address.as_ref().map(|a| DomainAddress::from_json(a).into()),
            metadata: JsonValue(p.metadata.clone()),
            active: p.active,
            payment_date: p.payment_date,
            card,
            id: id(p.id),
            order_id: id(p.order_id),
            status: decode(p.status, domain::PaymentAttemptStatus::from_code, "payment attempt status")?.into(),
            provider: p.provider.clone(),
            payment_method: p.payment_method.clone(),
            amount_cents: Money(p.amount_cents),
            currency: p.currency.clone(),
            reference: p.reference.clone(),
            payment_intent_id: p.payment_intent_id.clone(),
            money_due_back: due_back,
            failure_code: p.failure_code.clone(),
            failure_message: p.failure_message.clone(),
            paid_at: p.paid_at,
            authentication: p
                .authentication
                .as_deref()
                .and_then(crate::domain::merchants::status::Authentication::parse)
                .map(Into::into),
            authentication_expires_at: p.authentication_expires_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
            raw_order_id: p.order_id,
            preloaded_order: None,
            raw: Box::new(p),
        })
    }
}

/// Filters of `payments`; absent fields match anything. Ranges are inclusive, and a range
/// whose low end is above its high end is `BAD_USER_INPUT`.
#[derive(InputObject, Default)]
pub struct PaymentFilter {
    pub status: Option<PaymentAttemptStatus>,
    /// Any of these statuses (combined with `status`: both must hold).
    pub status_in: Option<Vec<PaymentAttemptStatus>>,
    /// The six-character human id (case-insensitive).
    pub human_id: Option<String>,
    /// Only settled (`true`) or only unsettled (`false`) payments.
    pub settled: Option<bool>,
    /// Only payments whose money arrived (`true`: SUCCEEDED, or a duplicate whose money is
    /// due back) or only the others (`false`).
    pub money_arrived: Option<bool>,
    /// `card`, `bank_transfer`, `balance`, ... (exact).
    pub payment_method: Option<String>,
    /// `manual`, `stripe` or `balance`.
    pub provider: Option<String>,
    /// ISO 4217 code, upper case: amounts compare in one currency's minor units.
    pub currency: Option<String>,
    pub order_id: Option<ID>,
    /// Payments of this user's orders.
    pub user_id: Option<ID>,
    pub amount_gte: Option<Money>,
    pub amount_lte: Option<Money>,
    pub created_at_gte: Option<DateTime<Utc>>,
    pub created_at_lte: Option<DateTime<Utc>>,
    pub paid_at_gte: Option<DateTime<Utc>>,
    pub paid_at_lte: Option<DateTime<Utc>>,
    pub settled_at_gte: Option<DateTime<Utc>>,
    pub settled_at_lte: Option<DateTime<Utc>>,
}

impl PaymentFilter {
    fn into_domain(self) -> AppResult<payments::PaymentFilter> {
        let mut statuses: Vec<domain::PaymentAttemptStatus> =
            self.status_in.unwrap_or_default().into_iter().map(Into::into).collect();
        if let Some(status) = self.status {
            let status = status.into();
            if !statuses.is_empty() && !statuses.contains(&status) {
                // Both must hold and cannot: nothing matches.
                return Ok(payments::PaymentFilter { nothing: true, ..Default::default() });
            }
            statuses = vec![status];
        }
        Ok(payments::PaymentFilter {
            statuses,
            human_id: self.human_id,
            settled: self.settled,
            money_arrived: self.money_arrived,
            settled_at_gte: self.settled_at_gte,
            settled_at_lte: self.settled_at_lte,
            nothing: false,
            payment_method: self.payment_method,
            provider: self.provider,
            currency: self.currency,
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
        let needs_refunds = ["state", "amountRefundedCents", "amountCapturedCents"]
            .iter()
            .any(|f| look.field("nodes").field(f).exists() || look.field("edges").field("node").field(f).exists());
        if needs_refunds {
            let ids: Vec<i64> = page.nodes.iter().map(|p| p.order_id).collect();
            loaders(ctx)?.prefetch_refunds(&ids).await?;
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

/// Changes to payments of their own.
#[derive(Default)]
pub struct PaymentMutation;

#[Object]
impl PaymentMutation {
    /// Changes `active`, the payment method (manual payments only), the billing address or
    /// the payment date of a payment that has not succeeded; afterwards `CONFLICT`. Admins,
    /// and customers for their own orders' payments. The payment date is stored and shown;
    /// the service does not start charges on it. Honours an `Idempotency-Key` header.
    async fn update_payment(&self, ctx: &Context<'_>, input: super::inputs::UpdatePaymentInput) -> Result<Payment> {
        let payment =
            crate::domain::payments::update::update_payment(app(ctx)?.pool(), caller(ctx)?, input.into_domain()?)
                .await?;
        Ok(Payment::try_from(payment)?)
    }

    /// Captures all of an AUTHORIZED payment, or part of it (`amountCents`, at most what is
    /// reserved; the rest is released and never taken). The order is paid when the provider
    /// confirms; a partial capture shows the released part as refunded on the order, so
    /// refunds stay within what was captured. Admins, and merchant keys for their stores'
    /// orders. A payment that is not AUTHORIZED is `CONFLICT`. Honours an `Idempotency-Key`.
    async fn capture_payment(&self, ctx: &Context<'_>, input: CapturePaymentInput) -> Result<Payment> {
        let app = app(ctx)?;
        let payment_id = parse_id("input.id", &input.id)?;
        let amount = input.amount_cents.map(|m| m.0);
        let payment =
            domain::lifecycle::capture_payment(app.pool(), app.providers(), caller(ctx)?, payment_id, amount).await?;
        Ok(Payment::try_from(payment)?)
    }

    /// Pays several orders of one user in one currency with one payment: one provider
    /// charge for their sum (or, with `paymentMethod: "balance"`, one balance debit in one
    /// transaction). Each order gets its own attempt for its total, all moving together:
    /// when the charge succeeds every order is paid in one transaction, when it fails none
    /// is. Refunding one order refunds at most its total, against the shared charge.
    /// Admins, and customers for their own orders. Honours an `Idempotency-Key`.
    async fn pay_orders(&self, ctx: &Context<'_>, input: PayOrdersInput) -> Result<Vec<Payment>> {
        let app = app(ctx)?;
        if input.order_ids.len() > domain::lifecycle::MAX_ORDERS * 4 {
            return Err(AppError::bad_input(format!(
                "orderIds must name 2 to {} orders (got {})",
                domain::lifecycle::MAX_ORDERS,
                input.order_ids.len()
            ))
            .into());
        }
        let order_ids = input
            .order_ids
            .iter()
            .enumerate()
            .map(|(i, id)| parse_id(&format!("input.orderIds[{i}]"), id))
            .collect::<AppResult<Vec<i64>>>()?;
        let card = input.card.map(super::inputs::CardInput::into_domain);
        let request = domain::lifecycle::PayOrdersInput { order_ids, payment_method: input.payment_method, card };
        let payments = domain::lifecycle::pay_orders(app.pool(), app.providers(), caller(ctx)?, request).await?;
        Ok(payments.into_iter().map(Payment::try_from).collect::<AppResult<Vec<_>>>()?)
    }

    /// Cancels an open payment: a PENDING one stops, an AUTHORIZED one releases its
    /// reservation at the provider. The order's payment becomes UNPAID unless another
    /// attempt is open. One whose money arrived, or that ended, is `CONFLICT`. Admins,
    /// merchant keys for their stores' orders, and customers for their own orders.
    async fn cancel_payment(&self, ctx: &Context<'_>, input: CancelPaymentInput) -> Result<Payment> {
        let app = app(ctx)?;
        let payment_id = parse_id("input.id", &input.id)?;
        let payment = domain::lifecycle::cancel_payment(app.pool(), app.providers(), caller(ctx)?, payment_id).await?;
        Ok(Payment::try_from(payment)?)
    }
}

/// Orders to pay together.
#[derive(InputObject)]
pub struct PayOrdersInput {
    /// 2 to 20 distinct orders of one user, in one currency, each PENDING, unpaid and with
    /// no open payment attempt.
    pub order_ids: Vec<ID>,
    /// `balance` charges the user's balance (admins only); anything else (default: the
    /// first order's method) goes to the configured provider as one charge.
    pub payment_method: Option<String>,
    /// A card to pay with now (stripe), as in `createPayment`.
    pub card: Option<super::inputs::CardInput>,
}

/// What to capture of an AUTHORIZED payment.
#[derive(InputObject)]
pub struct CapturePaymentInput {
    pub id: ID,
    /// Minor units to capture, at most what is reserved; default all of it.
    pub amount_cents: Option<Money>,
}

/// The open payment to cancel.
#[derive(InputObject)]
pub struct CancelPaymentInput {
    pub id: ID,
}
