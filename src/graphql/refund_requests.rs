//! GraphQL of refund requests (seed 004).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::scalars::Money;
use chrono::{DateTime, Utc};

use super::types::{id, page_request, parse_id};
use super::{app, caller};
use crate::db::{DbPool, models};
use crate::domain::refund_requests::{self as domain, RequestFilter, Seen};
use crate::error::AppError;

/// State of a refund request (seed 004's vocabulary).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::RefundRequestStatus")]
pub enum RefundRequestStatus {
    /// Asked, not decided.
    Pending,
    /// Approved; the refund is being issued (an unknown provider outcome keeps it here
    /// until the refund settles).
    Processing,
    /// The money went back.
    Issued,
    /// Refused, with a response reason.
    Denied,
    /// Withdrawn by the requester or an admin.
    Cancelled,
}

/// A request for money back, decided by a seller or an admin.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct RefundRequest {
    pub id: ID,
    pub order_id: ID,
    /// Minor units of `currency`.
    pub amount_cents: Money,
    pub currency: String,
    pub status: RefundRequestStatus,
    /// False when it can no longer lead to money back: DENIED, CANCELLED, or PENDING on an
    /// order that can no longer cover it (refunded another way, say).
    pub valid: bool,
    /// The key name of who asked (keys bound to a user or merchant see `staff` for others).
    pub requester: String,
    /// `customer`, `merchant` or `admin`.
    pub requester_role: String,
    pub request_reason: String,
    pub response_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it was approved.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When the money went back.
    pub issued_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    raw_id: i64,
    /// The history when the list that produced this request loaded it for the whole page.
    #[graphql(skip)]
    history: Option<Vec<models::RefundRequestTransition>>,
    /// The order when the list that produced this request loaded the page's orders.
    #[graphql(skip)]
    order: Option<models::Order>,
}

impl RefundRequest {
    pub fn new(seen: Seen, caller: &crate::domain::Caller) -> Result<Self, AppError> {
        let r = seen.request;
        Ok(Self {
            id: id(r.id),
            order_id: id(r.order_id),
            amount_cents: Money(r.amount_cents),
            currency: r.currency,
            status: crate::domain::enums::decode(
                r.status,
                crate::domain::RefundRequestStatus::from_code,
                "refund request status",
            )?
            .into(),
            valid: seen.valid,
            requester: caller.shown_name(&r.requester),
            requester_role: r.requester_role,
            request_reason: r.request_reason,
            response_reason: r.response_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
            confirmed_at: r.confirmed_at,
            issued_at: r.issued_at,
            raw_id: r.id,
            history: None,
            order: None,
        })
    }
}

/// One transition of a request.
#[derive(SimpleObject, Clone)]
pub struct RefundRequestTransition {
    pub from: Option<RefundRequestStatus>,
    pub to: RefundRequestStatus,
    /// The key name (keys bound to a user or merchant see `staff` for others).
    pub actor: String,
    /// `customer`, `merchant` or `admin`.
    pub role: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[ComplexObject]
impl RefundRequest {
    /// The order asked about (visible: a request is only ever shown with its order). The
    /// orders of a whole page load in one query.
    async fn order(&self, ctx: &Context<'_>) -> Result<super::types::Order> {
        if let Some(order) = &self.order {
            return Ok(super::types::Order::try_from(order.clone())?);
        }
        let loader = ctx.data::<DataLoader<RequestLoader>>()?;
        let order_id = parse_id("orderId", &self.order_id)?;
        let order = loader.load_one(OrderOf(order_id)).await.map_err(|e| async_graphql::Error::new(e.to_string()))?;
        let order = order
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("refund request {} lost its order", self.raw_id)))?;
        Ok(super::types::Order::try_from(order)?)
    }

    /// Every transition, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<RefundRequestTransition>> {
        let rows = match &self.history {
            Some(rows) => rows.clone(),
            None => {
                let loader = ctx.data::<DataLoader<RequestLoader>>()?;
                let rows = loader.load_one(HistoryOf(self.raw_id)).await;
                rows.map_err(|e| async_graphql::Error::new(e.to_string()))?.unwrap_or_default()
            }
        };
        let caller = caller(ctx)?;
        Ok(rows
            .into_iter()
            .map(|t| {
                let status = |code: i16| crate::domain::RefundRequestStatus::from_code(i64::from(code)).map(Into::into);
                Ok(RefundRequestTransition {
                    from: t.from_status.and_then(status),
                    to: status(t.to_status).ok_or_else(|| AppError::internal(anyhow::anyhow!("bad status")))?,
                    actor: caller.shown_name(&t.actor),
                    role: t.role,
                    reason: t.reason,
                    at: t.created_at,
                })
            })
            .collect::<Result<_, AppError>>()?)
    }
}

/// Keys of the request loader: the requests of an order, and the history of a request.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestsOf(pub i64);
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistoryOf(pub i64);

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderOf(pub i64);

impl Loader<OrderOf> for RequestLoader {
    type Value = models::Order;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[OrderOf]) -> Result<HashMap<OrderOf, models::Order>, Arc<AppError>> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let conn = self.0.get().await.map_err(|e| Arc::new(AppError::from(e)))?;
        let rows = crate::db::queries::orders_by_ids(&conn, &ids).await.map_err(|e| Arc::new(AppError::from(e)))?;
        Ok(rows.into_iter().map(|o| (OrderOf(o.id), o)).collect())
    }
}

/// Batches `Order.refundRequests` and `RefundRequest.history` of one GraphQL request: one
/// query per kind, whatever the number of orders or requests.
pub struct RequestLoader(pub DbPool);

impl Loader<RequestsOf> for RequestLoader {
    type Value = Vec<Seen>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[RequestsOf]) -> Result<HashMap<RequestsOf, Vec<Seen>>, Arc<AppError>> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let rows = domain::of_orders(&self.0, &ids).await.map_err(Arc::new)?;
        let mut out: HashMap<RequestsOf, Vec<Seen>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for seen in rows {
            out.entry(RequestsOf(seen.request.order_id)).or_default().push(seen);
        }
        Ok(out)
    }
}

impl Loader<HistoryOf> for RequestLoader {
    type Value = Vec<models::RefundRequestTransition>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[HistoryOf],
    ) -> Result<HashMap<HistoryOf, Vec<models::RefundRequestTransition>>, Arc<AppError>> {
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let rows = domain::history(&self.0, &ids).await.map_err(Arc::new)?;
        let mut out: HashMap<HistoryOf, Vec<models::RefundRequestTransition>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(HistoryOf(row.request_id)).or_default().push(row);
        }
        Ok(out)
    }
}

/// Filters of `refundRequests`; they combine with AND.
#[derive(InputObject, Default)]
pub struct RefundRequestFilter {
    pub order_id: Option<ID>,
    pub status: Option<RefundRequestStatus>,
    pub valid: Option<bool>,
}

/// A page of refund requests, newest first.
#[derive(SimpleObject)]
pub struct RefundRequestPage {
    pub nodes: Vec<RefundRequest>,
    pub has_next_page: bool,
}

#[derive(Default)]
pub struct RefundRequestQuery;

#[Object]
impl RefundRequestQuery {
    /// One refund request; null when absent or its order is not yours.
    async fn refund_request(&self, ctx: &Context<'_>, id: ID) -> Result<Option<RefundRequest>> {
        let id = parse_id("id", &id)?;
        let caller = caller(ctx)?;
        let seen = domain::get(app(ctx)?.pool(), caller, id).await?;
        Ok(seen.map(|s| RefundRequest::new(s, caller)).transpose()?)
    }

    /// Refund requests of the orders you may see, newest first. `perPage` 1 to 100.
    async fn refund_requests(
        &self,
        ctx: &Context<'_>,
        filter: Option<RefundRequestFilter>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 20)] per_page: i32,
    ) -> Result<RefundRequestPage> {
        let request = page_request(ctx, Some(page), Some(per_page))?;
        let filter = filter.unwrap_or_default();
        let filter = RequestFilter {
            order_id: filter.order_id.as_ref().map(|v| parse_id("filter.orderId", v)).transpose()?,
            status: filter.status.map(Into::into),
            valid: filter.valid,
        };
        let caller = caller(ctx)?;
        let pool = app(ctx)?.pool();
        let (rows, has_next_page) = domain::list(pool, caller, filter, request).await?;
        // The page's history in one query, when it is selected.
        let mut history: HashMap<i64, Vec<models::RefundRequestTransition>> = HashMap::new();
        if ctx.look_ahead().field("nodes").field("history").exists() {
            let ids: Vec<i64> = rows.iter().map(|s| s.request.id).collect();
            for row in domain::history(pool, &ids).await? {
                history.entry(row.request_id).or_default().push(row);
            }
        }
        // And the page's orders in one query, when they are selected.
        let mut orders: HashMap<i64, models::Order> = HashMap::new();
        if ctx.look_ahead().field("nodes").field("order").exists() && !rows.is_empty() {
            let ids: Vec<i64> = rows.iter().map(|s| s.request.order_id).collect();
            let conn = pool.get().await.map_err(AppError::from)?;
            for order in crate::db::queries::orders_by_ids(&conn, &ids).await.map_err(AppError::from)? {
                orders.insert(order.id, order);
            }
        }
        let nodes = rows
            .into_iter()
            .map(|s| {
                let (id, order_id) = (s.request.id, s.request.order_id);
                RefundRequest::new(s, caller).map(|mut r| {
                    r.history = Some(history.remove(&id).unwrap_or_default());
                    r.order = orders.get(&order_id).cloned();
                    r
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(RefundRequestPage { nodes, has_next_page })
    }
}

/// Input of `requestRefund`.
#[derive(InputObject)]
pub struct RequestRefundInput {
    pub order_id: ID,
    /// Minor units, at most what the order can still refund.
    pub amount_cents: Money,
    /// Why (1 to 1000 characters).
    pub reason: String,
}

#[derive(Default)]
pub struct RefundRequestMutation;

#[Object]
impl RefundRequestMutation {
    /// Asks for money back on a paid order: customers for their own user's orders, sellers
    /// (merchant keys) for their stores' orders, admins for any. At most one open request
    /// per order (CONFLICT); the amount at most what can still be refunded.
    async fn request_refund(&self, ctx: &Context<'_>, input: RequestRefundInput) -> Result<RefundRequest> {
        let order_id = parse_id("input.orderId", &input.order_id)?;
        let caller = caller(ctx)?;
        let request =
            domain::request_refund(app(ctx)?.pool(), caller, order_id, input.amount_cents.0, &input.reason).await?;
        Ok(RefundRequest::new(Seen { request, valid: true }, caller)?)
    }

    /// Approves a PENDING request (PROCESSING) and issues its refund through the order's
    /// payment provider, or to the buyer's balance with `creditBalance`; ISSUED once the
    /// money went back. An unknown provider outcome is OUTCOME_PENDING and the request
    /// stays PROCESSING until the refund settles; approving again retries a refused one.
    /// Sellers and admins.
    async fn approve_refund_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
        response_reason: Option<String>,
        #[graphql(default = false)] credit_balance: bool,
    ) -> Result<RefundRequest> {
        let id = parse_id("id", &id)?;
        let (app, caller) = (app(ctx)?, caller(ctx)?);
        let request =
            domain::approve(app.pool(), app.providers(), caller, id, response_reason.as_deref(), credit_balance)
                .await?;
        let seen = domain::get(app.pool(), caller, request.id).await?.unwrap_or(Seen { request, valid: true });
        Ok(RefundRequest::new(seen, caller)?)
    }

    /// Denies a PENDING request with a response reason. Sellers and admins.
    async fn deny_refund_request(&self, ctx: &Context<'_>, id: ID, response_reason: String) -> Result<RefundRequest> {
        let id = parse_id("id", &id)?;
        let caller = caller(ctx)?;
        let request = domain::deny(app(ctx)?.pool(), caller, id, &response_reason).await?;
        Ok(RefundRequest::new(Seen { request, valid: false }, caller)?)
    }

    /// Cancels a PENDING request: its requester (customer or seller) or an admin.
    async fn cancel_refund_request(&self, ctx: &Context<'_>, id: ID, reason: Option<String>) -> Result<RefundRequest> {
        let id = parse_id("id", &id)?;
        let caller = caller(ctx)?;
        let request = domain::cancel(app(ctx)?.pool(), caller, id, reason.as_deref()).await?;
        Ok(RefundRequest::new(Seen { request, valid: false }, caller)?)
    }
}

/// `Order.refundRequests`, batched over every order of the response.
pub async fn of_order(ctx: &Context<'_>, order_id: i64) -> Result<Vec<RefundRequest>> {
    let loader = ctx.data::<DataLoader<RequestLoader>>()?;
    let rows = loader.load_one(RequestsOf(order_id)).await.map_err(|e| async_graphql::Error::new(e.to_string()))?;
    let caller = caller(ctx)?;
    Ok(rows.unwrap_or_default().into_iter().map(|s| RefundRequest::new(s, caller)).collect::<Result<_, _>>()?)
}
