//! GraphQL of merchants (seed 001): merchants, stores, their payment requests, webhook
//! endpoints, signing secrets and the delivery log.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::scalars::Money;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::types::{Order, id, page_request, parse_id};
use super::{app, caller};
use crate::db::models;
use crate::domain::merchants;
use crate::domain::merchants::orders::{self as merchant_orders, MerchantOrderChanges, NewMerchantOrder};
use crate::domain::webhooks::log::{self, LogFilter};
use crate::error::AppError;

/// A payment request's status in seed 001's vocabulary, derived from the order's own
/// states by a total mapping (docs/decisions.md, "Merchant statuses").
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::merchants::status::SeedStatus")]
pub enum MerchantOrderStatus {
    /// Saved, not yet open for payment (order DRAFT).
    TemporarySave,
    /// Open for payment, nothing paid yet (PENDING, UNPAID or with an attempt under way).
    WaitingForPayment,
    /// The payment waits for a one-time password from the customer.
    OtpConfirming,
    /// The customer did not confirm the one-time password in time.
    OtpTimeout,
    /// The payment waits for 3-D Secure authentication.
    #[graphql(name = "AUTHENTICATING_3DS")]
    Authenticating3ds,
    /// 3-D Secure authentication was not completed in time.
    #[graphql(name = "TIMEOUT_3DS")]
    Timeout3ds,
    /// Paid, waiting to be confirmed: no state of ours maps here yet (an attempt under way
    /// is still WAITING_FOR_PAYMENT).
    Processing,
    /// Paid (COMPLETED, also when partly refunded).
    Complete,
    /// Fully refunded.
    Refunded,
    /// Cancelled.
    Cancel,
    /// The last payment attempt failed.
    Error,
}

/// Seed 001's payment methods; each stands for one `paymentMethod` word.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::merchants::status::PayMethod")]
pub enum PayMethod {
    /// `card` (seed code 0).
    CreditCard,
    /// `cash` (1).
    Cash,
    /// `paypay` (2).
    Paypay,
    /// `famipay` (3).
    Famipay,
    /// `linepay` (4).
    Linepay,
    /// `applepay` (5).
    Applepay,
}

/// How the buyer pays a payment request off.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::merchants::orders::PaymentType")]
pub enum PaymentType {
    /// At once (the default).
    OneTime,
    /// In `installmentTerm` payments.
    Installment,
    /// Revolving credit.
    Revolving,
}

/// What a customer must complete before a payment attempt goes on.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::merchants::status::Authentication")]
pub enum AuthenticationKind {
    /// 3-D Secure.
    ThreeDs,
    /// A one-time password sent by email or SMS.
    Otp,
}

/// Where a webhook delivery stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum WebhookDeliveryState {
    /// Not delivered yet; will be tried (again) at `nextAttemptAt`.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Given up: its retries ran out, or the receiver refused it for good.
    GivenUp,
}

impl WebhookDeliveryState {
    fn code(self) -> i16 {
        match self {
            WebhookDeliveryState::Pending => crate::db::webhooks::state::PENDING,
            WebhookDeliveryState::Delivered => crate::db::webhooks::state::DELIVERED,
            WebhookDeliveryState::GivenUp => crate::db::webhooks::state::GIVEN_UP,
        }
    }

    fn of(code: i16) -> Self {
        match code {
            crate::db::webhooks::state::DELIVERED => WebhookDeliveryState::Delivered,
            crate::db::webhooks::state::GIVEN_UP => WebhookDeliveryState::GivenUp,
            _ => WebhookDeliveryState::Pending,
        }
    }
}

/// A merchant: owns stores, receives webhooks about its stores' orders.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Merchant {
    pub id: Uuid,
    /// The name shown for the merchant.
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<models::Merchant> for Merchant {
    fn from(m: models::Merchant) -> Self {
        Self { id: m.id, display_name: m.display_name, created_at: m.created_at, updated_at: m.updated_at }
    }
}

#[async_graphql::ComplexObject]
impl Merchant {
    /// The merchant's stores, oldest first.
    async fn stores(&self, ctx: &Context<'_>) -> Result<Vec<Store>> {
        let conn = app(ctx)?.pool().get().await.map_err(AppError::from)?;
        let stores = crate::db::merchants::stores_of_merchants(&conn, &[self.id]).await.map_err(AppError::from)?;
        Ok(stores.into_iter().map(Store::from).collect())
    }

    /// Where webhooks go when an order has no `callbackUrl` (admins and the merchant
    /// itself; empty for other keys).
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> Result<Vec<WebhookEndpoint>> {
        if merchants::require_merchant_access(caller(ctx)?, self.id, "webhookEndpoints").is_err()
            && caller(ctx)?.role != crate::domain::Role::Support
        {
            return Ok(Vec::new());
        }
        let conn = app(ctx)?.pool().get().await.map_err(AppError::from)?;
        let rows = crate::db::merchants::endpoints_of_merchants(&conn, &[self.id]).await.map_err(AppError::from)?;
        Ok(rows.into_iter().map(WebhookEndpoint::from).collect())
    }
}

/// A store of a merchant: payment requests are made in a store.
#[derive(SimpleObject)]
pub struct Store {
    pub id: Uuid,
    pub merchant_id: Uuid,
    pub store_name: String,
    pub office_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<models::Store> for Store {
    fn from(s: models::Store) -> Self {
        Self {
            id: s.id,
            merchant_id: s.merchant_id,
            store_name: s.store_name,
            office_name: s.office_name,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// What a merchant said about a payment request (seed 001).
#[derive(SimpleObject)]
pub struct PaymentRequest {
    /// The customer's id in the merchant's system (seed `customer_id`).
    pub customer_id: Option<String>,
    /// The order's id in the merchant's system (seed `customer_order_id`).
    pub customer_order_id: Option<String>,
    pub description: Option<String>,
    /// Where the buyer goes after paying.
    pub success_url: Option<String>,
    /// Where the buyer goes after cancelling.
    pub cancel_url: Option<String>,
    /// Where this order's status changes are POSTed; else the merchant's endpoints.
    pub callback_url: Option<String>,
    pub consumer_email: Option<String>,
    pub consumer_phone: Option<String>,
    pub payment_type: PaymentType,
    /// Number of installments (INSTALLMENT only).
    pub installment_term: Option<i32>,
    /// The payment date the merchant set; stored and shown, no charge is started on it.
    pub payment_date: Option<DateTime<Utc>>,
    /// Where the buyer pays: `<PUBLIC_BASE_URL>/gateway/payment/<publicId>`.
    pub payment_url: String,
    /// The key name that created it. Keys bound to a merchant or a user see their own name
    /// and `staff` for any other key, as in the order's events.
    pub created_by: Option<String>,
    /// The key name that last changed it (shown like `createdBy`).
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl PaymentRequest {
    pub fn new(r: models::PaymentRequest, public_id: Uuid, base: &str, caller: &crate::domain::Caller) -> Self {
        Self {
            customer_id: r.customer_ref,
            customer_order_id: r.customer_order_ref,
            description: r.description,
            success_url: r.success_url,
            cancel_url: r.cancel_url,
            callback_url: r.callback_url,
            consumer_email: r.consumer_email,
            consumer_phone: r.consumer_phone,
            payment_type: merchant_orders::PaymentType::parse(&r.payment_type).unwrap_or_default().into(),
            installment_term: r.installment_term.map(i32::from),
            payment_date: r.payment_date,
            payment_url: format!("{base}/gateway/payment/{public_id}"),
            created_by: Some(caller.shown_name(&r.created_by)),
            updated_by: r.updated_by.map(|name| caller.shown_name(&name)),
            updated_at: r.updated_at,
        }
    }
}

/// A URL a merchant's webhooks go to.
#[derive(SimpleObject)]
pub struct WebhookEndpoint {
    pub id: ID,
    pub merchant_id: Uuid,
    pub url: String,
    /// A disabled endpoint receives nothing new (410 Gone, days of failures, or by hand).
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<models::MerchantEndpoint> for WebhookEndpoint {
    fn from(e: models::MerchantEndpoint) -> Self {
        Self {
            id: id(e.id),
            merchant_id: e.merchant_id,
            url: e.url,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            disabled_at: e.disabled_at,
            created_at: e.created_at,
        }
    }
}

/// A webhook signing secret (Standard Webhooks `whsec_…`), shown only when made.
#[derive(SimpleObject)]
pub struct SigningSecret {
    pub id: ID,
    /// Verify `webhook-signature` with this; it is not shown again.
    pub secret: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<models::MerchantSecret> for SigningSecret {
    fn from(s: models::MerchantSecret) -> Self {
        Self { id: id(s.id), secret: s.secret, created_at: s.created_at, expires_at: s.expires_at }
    }
}

/// A new merchant and its first signing secret.
#[derive(SimpleObject)]
pub struct CreateMerchantPayload {
    pub merchant: Merchant,
    pub signing_secret: SigningSecret,
}

/// One attempt of a delivery.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    /// 1 for the first attempt (counting again from 1 after a redelivery).
    pub attempt: i32,
    pub url: String,
    /// The receiver's HTTP status; null when no answer came (see `error`).
    pub response_status: Option<i32>,
    /// The first 1 KiB of the receiver's answer.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub latency_ms: i32,
    pub created_at: DateTime<Utc>,
}

impl From<models::WebhookAttempt> for WebhookAttempt {
    fn from(a: models::WebhookAttempt) -> Self {
        Self {
            attempt: a.attempt,
            url: a.url,
            response_status: a.response_status,
            response_excerpt: a.response_excerpt,
            error: a.error,
            latency_ms: a.latency_ms,
            created_at: a.created_at,
        }
    }
}

/// One webhook message to one URL, with every attempt to deliver it.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    pub id: ID,
    /// The Standard Webhooks `webhook-id`, the same on every attempt and redelivery.
    pub webhook_id: String,
    pub order_id: ID,
    /// The order's event number this announces (the body's `sequence`).
    pub sequence: i64,
    pub event_type: String,
    /// The merchant endpoint it goes to; null when it goes to the order's `callbackUrl`.
    pub endpoint_id: Option<ID>,
    pub url: String,
    /// The exact bytes sent.
    pub body: String,
    pub state: WebhookDeliveryState,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub given_up_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<WebhookAttempt>,
}

impl WebhookDelivery {
    fn new(d: models::WebhookDelivery, attempts: Vec<WebhookAttempt>) -> Self {
        let state = WebhookDeliveryState::of(d.state);
        Self {
            id: id(d.id),
            webhook_id: d.webhook_id,
            order_id: id(d.order_id),
            sequence: d.order_seq,
            event_type: d.event_type,
            endpoint_id: d.endpoint_id.map(id),
            url: d.url,
            body: d.body,
            state,
            attempts: d.attempts,
            next_attempt_at: (state == WebhookDeliveryState::Pending).then_some(d.next_attempt_at),
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            given_up_at: d.given_up_at,
            attempt_log: attempts,
        }
    }
}

/// A page of webhook deliveries, newest first.
#[derive(SimpleObject)]
pub struct WebhookDeliveryPage {
    pub nodes: Vec<WebhookDelivery>,
    pub has_next_page: bool,
}

/// Filters of the delivery log; they combine with AND.
#[derive(InputObject, Default)]
pub struct WebhookDeliveryFilter {
    pub order_id: Option<ID>,
    pub endpoint_id: Option<ID>,
    pub state: Option<WebhookDeliveryState>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_until: Option<DateTime<Utc>>,
}

impl WebhookDeliveryFilter {
    fn into_domain(self) -> crate::error::AppResult<LogFilter> {
        Ok(LogFilter {
            order_id: self.order_id.as_ref().map(|v| parse_id("filter.orderId", v)).transpose()?,
            endpoint_id: self.endpoint_id.as_ref().map(|v| parse_id("filter.endpointId", v)).transpose()?,
            state: self.state.map(WebhookDeliveryState::code),
            created_from: self.created_from,
            created_until: self.created_until,
        })
    }
}

/// Input of `createMerchantOrder`. Amounts are minor units of `currency`.
#[derive(InputObject)]
pub struct CreateMerchantOrderInput {
    /// The store; a merchant key may leave it out for its first store. Required for admins.
    pub store_id: Option<Uuid>,
    /// The amount to pay, in minor units (1 to 10^12).
    pub amount_cents: Money,
    /// ISO 4217 code; JPY when absent (seed 001's default).
    pub currency: Option<String>,
    pub description: Option<String>,
    pub customer_id: Option<String>,
    pub customer_order_id: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    /// Where this order's status changes are POSTed (a public http(s) URL).
    pub callback_url: Option<String>,
    /// The buyer's user id (admin keys only).
    pub user_id: Option<ID>,
    pub consumer_email: Option<String>,
    pub consumer_phone: Option<String>,
    /// ONE_TIME when absent.
    pub payment_type: Option<PaymentType>,
    /// Required for INSTALLMENT (3, 5, 6, 10, 12, 15, 18, 20 or 24), refused otherwise.
    pub installment_term: Option<i32>,
    /// CREDIT_CARD when absent.
    pub pay_method: Option<PayMethod>,
    pub payment_date: Option<DateTime<Utc>>,
    /// Save as DRAFT (TEMPORARY_SAVE) instead of opening it for payment.
    #[graphql(default = false)]
    pub draft: bool,
}

impl CreateMerchantOrderInput {
    fn into_domain(self) -> crate::error::AppResult<NewMerchantOrder> {
        Ok(NewMerchantOrder {
            store_id: self.store_id,
            amount_cents: self.amount_cents.0,
            currency: self.currency,
            description: self.description,
            customer_id: self.customer_id,
            customer_order_id: self.customer_order_id,
            success_url: self.success_url,
            cancel_url: self.cancel_url,
            callback_url: self.callback_url,
            user_id: self.user_id.as_ref().map(|v| parse_id("input.userId", v)).transpose()?,
            consumer_email: self.consumer_email,
            consumer_phone: self.consumer_phone,
            payment_type: self.payment_type.map(Into::into),
            installment_term: self.installment_term,
            pay_method: self.pay_method.map(Into::into),
            payment_date: self.payment_date,
            draft: self.draft,
        })
    }
}

/// Input of `updateMerchantOrder`: what to change; absent fields stay.
#[derive(InputObject)]
pub struct UpdateMerchantOrderInput {
    /// The new amount, in minor units.
    pub amount_cents: Option<Money>,
    /// The new description (an empty string clears it).
    pub description: Option<String>,
    pub payment_date: Option<DateTime<Utc>>,
}

/// Reads of merchants.
#[derive(Default)]
pub struct MerchantQuery;

#[Object]
impl MerchantQuery {
    /// One merchant; null when absent or not yours (staff see all, a merchant key itself).
    async fn merchant(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<Merchant>> {
        Ok(merchants::get_merchant(app(ctx)?.pool(), caller(ctx)?, id).await?.map(Merchant::from))
    }

    /// Merchants, oldest first (staff; a merchant key sees itself). `perPage` 1 to 100.
    async fn merchants(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 20)] per_page: i32,
    ) -> Result<Vec<Merchant>> {
        let request = page_request(ctx, Some(page), Some(per_page))?;
        let rows =
            merchants::list_merchants(app(ctx)?.pool(), caller(ctx)?, request.per_page, request.offset()).await?;
        Ok(rows.into_iter().map(Merchant::from).collect())
    }

    /// One store; null when absent or not yours.
    async fn store(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<Store>> {
        Ok(merchants::get_store(app(ctx)?.pool(), caller(ctx)?, id).await?.map(Store::from))
    }

    /// One order by its public id (seed 001's `id`); null when absent or not yours.
    async fn order_by_public_id(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<Order>> {
        let order = merchant_orders::get(app(ctx)?.pool(), caller(ctx)?, id).await?;
        Order::load_optional(ctx, order).await
    }

    /// The webhook delivery log, newest first: admins and support see all, a merchant its
    /// own. `perPage` 1 to 100.
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        filter: Option<WebhookDeliveryFilter>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 20)] per_page: i32,
    ) -> Result<WebhookDeliveryPage> {
        let request = page_request(ctx, Some(page), Some(per_page))?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let pool = app(ctx)?.pool();
        let (rows, has_next_page) = log::list(pool, caller(ctx)?, filter, request).await?;
        let attempts = if ctx.look_ahead().field("nodes").field("attemptLog").exists() && !rows.is_empty() {
            let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
            log::attempts(pool, &ids).await?
        } else {
            Vec::new()
        };
        let mut by_delivery: std::collections::HashMap<i64, Vec<WebhookAttempt>> = std::collections::HashMap::new();
        for attempt in attempts {
            by_delivery.entry(attempt.delivery_id).or_default().push(attempt.into());
        }
        let nodes = rows
            .into_iter()
            .map(|d| {
                let attempts = by_delivery.remove(&d.id).unwrap_or_default();
                WebhookDelivery::new(d, attempts)
            })
            .collect();
        Ok(WebhookDeliveryPage { nodes, has_next_page })
    }
}

/// Changes of merchants and their payment requests.
#[derive(Default)]
pub struct MerchantMutation;

#[Object]
impl MerchantMutation {
    /// Creates a merchant with its first webhook signing secret (shown only here). Admin
    /// only.
    async fn create_merchant(&self, ctx: &Context<'_>, display_name: String) -> Result<CreateMerchantPayload> {
        let created = merchants::create_merchant(app(ctx)?.pool(), caller(ctx)?, &display_name).await?;
        Ok(CreateMerchantPayload { merchant: created.merchant.into(), signing_secret: created.secret.into() })
    }

    /// Renames a merchant. Admin only.
    async fn update_merchant(&self, ctx: &Context<'_>, id: Uuid, display_name: String) -> Result<Merchant> {
        Ok(merchants::rename_merchant(app(ctx)?.pool(), caller(ctx)?, id, &display_name).await?.into())
    }

    /// Creates a store of a merchant. Admin only.
    async fn create_store(
        &self,
        ctx: &Context<'_>,
        merchant_id: Uuid,
        store_name: String,
        office_name: String,
    ) -> Result<Store> {
        let pool = app(ctx)?.pool();
        Ok(merchants::create_store(pool, caller(ctx)?, merchant_id, &store_name, &office_name).await?.into())
    }

    /// Renames a store. Admin only.
    async fn update_store(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        store_name: String,
        office_name: String,
    ) -> Result<Store> {
        Ok(merchants::update_store(app(ctx)?.pool(), caller(ctx)?, id, &store_name, &office_name).await?.into())
    }

    /// Adds a webhook endpoint (a public http(s) URL). Admins, or the merchant itself.
    async fn add_webhook_endpoint(&self, ctx: &Context<'_>, merchant_id: Uuid, url: String) -> Result<WebhookEndpoint> {
        let app = app(ctx)?;
        let allow = app.config().webhooks.allow_private_targets;
        Ok(merchants::add_endpoint(app.pool(), caller(ctx)?, allow, merchant_id, &url).await?.into())
    }

    /// Turns a webhook endpoint on or off. Admins, or the merchant itself.
    async fn set_webhook_endpoint_enabled(&self, ctx: &Context<'_>, id: ID, enabled: bool) -> Result<WebhookEndpoint> {
        let id = parse_id("id", &id)?;
        Ok(merchants::set_endpoint_enabled(app(ctx)?.pool(), caller(ctx)?, id, enabled).await?.into())
    }

    /// Makes a new signing secret (shown only here). Older secrets keep signing for
    /// `overlapSeconds` (default a day, at most a week), so deliveries carry both
    /// signatures while the merchant switches. Admins, or the merchant itself.
    async fn rotate_merchant_secret(
        &self,
        ctx: &Context<'_>,
        merchant_id: Uuid,
        #[graphql(default = 86400)] overlap_seconds: i64,
    ) -> Result<SigningSecret> {
        Ok(merchants::rotate_secret(app(ctx)?.pool(), caller(ctx)?, merchant_id, overlap_seconds).await?.into())
    }

    /// Creates a payment request: an order of a store for one amount (one line), PENDING
    /// (WAITING_FOR_PAYMENT) or, with `draft`, DRAFT (TEMPORARY_SAVE). Merchant keys (their
    /// own stores) and admins.
    async fn create_merchant_order(&self, ctx: &Context<'_>, input: CreateMerchantOrderInput) -> Result<Order> {
        let app = app(ctx)?;
        let allow = app.config().webhooks.allow_private_targets;
        let order = merchant_orders::create(app.pool(), caller(ctx)?, allow, input.into_domain()?).await?;
        Order::load_changed(ctx, order).await
    }

    /// Changes the amount, description or payment date of an unpaid payment request (DRAFT,
    /// or PENDING with no payment under way); otherwise CONFLICT.
    async fn update_merchant_order(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        input: UpdateMerchantOrderInput,
    ) -> Result<Order> {
        let changes = MerchantOrderChanges {
            amount_cents: input.amount_cents.map(|m| m.0),
            description: input.description,
            payment_date: input.payment_date,
        };
        let order = merchant_orders::update(app(ctx)?.pool(), caller(ctx)?, id, changes).await?;
        Order::load_changed(ctx, order).await
    }

    /// Opens a DRAFT payment request for payment (PENDING, WAITING_FOR_PAYMENT).
    async fn submit_merchant_order(&self, ctx: &Context<'_>, id: Uuid) -> Result<Order> {
        let order = merchant_orders::submit(app(ctx)?.pool(), caller(ctx)?, id).await?;
        Order::load_changed(ctx, order).await
    }

    /// Sends webhook deliveries again under their own `webhook-id`: one (`deliveryId`), or
    /// those of an order or a creation-time range (at most 1000). Returns the ids.
    /// Admins, or a merchant for its own.
    async fn redeliver_webhooks(
        &self,
        ctx: &Context<'_>,
        delivery_id: Option<ID>,
        filter: Option<WebhookDeliveryFilter>,
    ) -> Result<Vec<ID>> {
        let delivery_id = delivery_id.as_ref().map(|v| parse_id("deliveryId", v)).transpose()?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let sent = log::redeliver(app(ctx)?.pool(), caller(ctx)?, delivery_id, filter).await?;
        Ok(sent.into_iter().map(id).collect())
    }
}
