//! Live order updates (GraphQL subscriptions over WebSocket; see `http::ws` for the
//! transport and `domain::live` for the tail of the event trail).

use async_graphql::{ComplexObject, Context, ID, Result, SimpleObject, Subscription};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::inputs::OrderFilter;
use super::loaders::Wanted;
use super::scalars::JsonValue;
use super::types::{Order, parse_id};
use super::{app, caller, loaders};
use crate::domain::live::{self, Hub, KeySlot, LiveEvent, MAX_REPLAY, Position};
use crate::domain::{Caller, events, orders};
use crate::error::AppError;

/// Subscriptions.
#[derive(Default)]
pub struct SubscriptionRoot;

/// One change of an order, as it was recorded in the order's event trail.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct OrderUpdate {
    pub order_id: ID,
    /// The order's event sequence number: 1, 2, 3, … with no gaps. Pass the last one you
    /// saw as `afterSeq` to `orderUpdated` to resume without losing or repeating a change.
    pub seq: i64,
    /// What happened (as `Order.events[].kind`).
    pub kind: String,
    /// Who did it (customer keys see `staff` for every key).
    pub actor: String,
    /// Details (customer keys see amounts, ids and outcomes only).
    pub data: JsonValue,
    /// When it happened.
    pub at: chrono::DateTime<chrono::Utc>,
    /// This update's place in the trail of all orders; pass the last one you saw as
    /// `after` to `ordersUpdated` to resume it.
    pub cursor: String,
    #[graphql(skip)]
    raw_order_id: i64,
}

#[ComplexObject]
impl OrderUpdate {
    /// The order as it is now (read when this update is sent); null if no longer visible.
    async fn order(&self, ctx: &Context<'_>) -> Result<Option<Order>> {
        let (caller, loaders) = (caller(ctx)?, loaders(ctx)?);
        // A subscription lives long: what an earlier update loaded is stale now.
        loaders.clear();
        let wanted = Wanted::selected_in(&ctx.look_ahead());
        let order = orders::visible_to(caller, loaders.order_with(wanted, self.raw_order_id).await?);
        Ok(order.map(Order::try_from).transpose()?)
    }
}

fn encode_position(at: Position) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", at.xid, at.id))
}

fn decode_position(text: &str) -> Result<Position, AppError> {
    let bad = || AppError::bad_input("after is not a cursor of ordersUpdated");
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (xid, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(Position { xid: xid.parse().map_err(|_| bad())?, id: id.parse().map_err(|_| bad())? })
}

fn update(caller: &Caller, e: &LiveEvent) -> OrderUpdate {
    let seen = events::as_seen_by(
        caller,
        crate::db::models::OrderEvent {
            id: e.id,
            order_id: e.order_id,
            kind: e.kind.clone(),
            actor: e.actor.clone(),
            data: e.data.clone(),
            created_at: e.created_at,
            seq: e.seq,
        },
    );
    OrderUpdate {
        order_id: ID(e.order_id.to_string()),
        seq: e.seq,
        kind: seen.kind,
        actor: seen.actor,
        data: JsonValue(seen.data),
        at: seen.created_at,
        cursor: encode_position(e.position()),
        raw_order_id: e.order_id,
    }
}

/// Whether `caller` may see an event's order (the order's owner columns as the trail read them).
fn visible(caller: &Caller, e: &LiveEvent) -> bool {
    if let Some(user) = caller.confined_to() {
        return e.user_id == Some(user);
    }
    if let Some(merchant) = caller.confined_to_merchant() {
        return e.merchant_id == Some(merchant);
    }
    true
}

/// The filter of `ordersUpdated`, evaluated on the order's columns as the trail read them.
struct Matcher {
    filter: orders::OrderFilter,
}

impl Matcher {
    fn matches(&self, e: &LiveEvent) -> bool {
        let f = &self.filter;
        f.status.is_none_or(|s| s.code() == e.status)
            && f.payment_status.is_none_or(|s| s.code() == e.payment_status)
            && f.payment_method
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .is_none_or(|m| m == e.payment_method)
            && f.number
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .is_none_or(|n| e.number.to_lowercase().starts_with(&n.to_lowercase()))
            && f.user_id.is_none_or(|u| e.user_id == Some(u))
            && f.merchant_id.is_none_or(|m| e.merchant_id == Some(m))
            && f.store_id.is_none_or(|s| e.store_id == Some(s))
            && f.has_store.is_none_or(|h| e.store_id.is_some() == h)
    }
}

/// What every live stream holds: its key's slot and its connection's, released when the
/// client ends it or the connection closes.
struct Held {
    _key: KeySlot,
    _connection: Option<crate::http::ws::ConnectionSlot>,
}

/// Admits a new subscription before it costs anything: the key is not revoked, has rate
/// left, and has a free slot (and so has its connection).
fn hold(ctx: &Context<'_>, app: &crate::app::App, hub: &Hub, caller: &Caller) -> Result<Held> {
    if hub.is_revoked(caller.key_id) {
        return Err(AppError::Unauthenticated("the API key was revoked".into()).into());
    }
    app.rates().check(caller.key_id)?;
    let connection = match ctx.data_opt::<crate::http::ws::Connection>() {
        Some(connection) => Some(connection.take_slot()?),
        None => None,
    };
    Ok(Held { _key: hub.take_slot(caller.key_id)?, _connection: connection })
}

#[Subscription]
impl SubscriptionRoot {
    /// Every change of one order from now on, each with its sequence number, in sequence
    /// order. With `afterSeq`, first the changes after that number (from the order's
    /// trail), so a reconnecting client loses nothing and sees nothing twice. `NOT_FOUND`
    /// when the order is absent or not yours. The stream ends when your key is revoked.
    async fn order_updated(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        after_seq: Option<i64>,
    ) -> Result<impl Stream<Item = Result<OrderUpdate>> + use<>> {
        let id = parse_id("orderId", &order_id)?;
        if after_seq.is_some_and(|s| s < 0) {
            return Err(AppError::bad_input("afterSeq must be 0 or more").into());
        }
        let app = app(ctx)?.clone();
        let caller = caller(ctx)?.clone();
        let hub = app.live().await?;
        let held = hold(ctx, &app, &hub, &caller)?;
        // Subscribe before reading where the order stands, so nothing falls between the two.
        let mut rx = hub.subscribe();
        let mut keys = hub.key_checks();
        let order = orders::visible_to(&caller, loaders(ctx)?.order_with(Wanted::default(), id).await?)
            .ok_or_else(|| AppError::not_found(format!("no order with id {id}")))?;
        let mut last = after_seq.unwrap_or(order.event_seq);
        let pool = app.pool().clone();
        Ok(async_stream::try_stream! {
            let _held = held;
            let mut revoked = false;
            let mut missed = true;
            loop {
                // Catch up from the trail: at first, after a gap, or after falling behind.
                while missed {
                    let replay = live::read_order_after(&pool, id, last, MAX_REPLAY).await?;
                    missed = replay.len() as i64 == MAX_REPLAY;
                    for e in replay {
                        last = e.seq;
                        yield update(&caller, &e);
                    }
                }
                tokio::select! {
                    received = rx.recv() => match received {
                        Ok(e) if e.order_id == id && e.seq > last => {
                            if e.seq == last + 1 {
                                last = e.seq;
                                yield update(&caller, &e);
                            } else {
                                missed = true;
                            }
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => missed = true,
                        Err(RecvError::Closed) => break,
                    },
                    checked = keys.recv() => {
                        revoked = matches!(checked, Err(RecvError::Closed)) || hub.is_revoked(caller.key_id);
                    }
                }
                if revoked {
                    Err(AppError::Unauthenticated("the API key was revoked".into()))?;
                }
            }
        })
    }

    /// Every change of every order you may see (a customer's own, a merchant's stores',
    /// all for admins and support), filtered like `orders`, each once, in the order of the
    /// event trail (by writing transaction; within one order that is sequence order except
    /// in rare races, so order by `seq` where it matters). With `after` (an update's
    /// `cursor`), first what was missed since that update (at most 10,000 of your changes;
    /// more is `BAD_USER_INPUT`). The filter is matched against the order as it is when the
    /// change is read.
    async fn orders_updated(
        &self,
        ctx: &Context<'_>,
        filter: Option<OrderFilter>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<OrderUpdate>> + use<>> {
        let app = app(ctx)?.clone();
        let caller = caller(ctx)?.clone();
        let matcher = Matcher { filter: filter.unwrap_or_default().into_domain()? };
        let after = after.as_deref().map(decode_position).transpose()?;
        let hub = app.live().await?;
        let held = hold(ctx, &app, &hub, &caller)?;
        let mut rx = hub.subscribe();
        let mut keys = hub.key_checks();
        let pool = app.pool().clone();
        // Without `after`: changes from now on.
        let start = match after {
            Some(at) => at,
            None => live::current_position(&pool).await?,
        };
        let scope = live::Scope { user_id: caller.confined_to(), merchant_id: caller.confined_to_merchant() };
        let viewer = caller.clone();
        let wanted = move |e: &LiveEvent| visible(&viewer, e) && matcher.matches(e);
        Ok(async_stream::try_stream! {
            let _held = held;
            let mut revoked = false;
            let mut last = start;
            let mut missed = after.is_some();
            loop {
                if missed {
                    // Bounded by the rows a catch-up examines (everyone's), not by the matches.
                    if live::count_after(&pool, last, MAX_REPLAY).await? > MAX_REPLAY {
                        Err(AppError::bad_input(if after.is_some() {
                            "after is too far behind (more than 10,000 changes): reload and subscribe again"
                        } else {
                            "this subscription fell more than 10,000 changes behind: reload and subscribe again"
                        }))?;
                    }
                    loop {
                        let replay = live::read_after(&pool, last, 500, scope).await?;
                        let done = replay.len() < 500;
                        for e in replay {
                            last = e.position();
                            if wanted(&e) {
                                yield update(&caller, &e);
                            }
                        }
                        if done {
                            break;
                        }
                        if hub.is_revoked(caller.key_id) {
                            Err(AppError::Unauthenticated("the API key was revoked".into()))?;
                        }
                    }
                    missed = false;
                }
                tokio::select! {
                    received = rx.recv() => match received {
                        Ok(e) => {
                            let at = e.position();
                            if at > last {
                                last = at;
                                if wanted(&e) {
                                    yield update(&caller, &e);
                                }
                            }
                        }
                        Err(RecvError::Lagged(_)) => missed = true,
                        Err(RecvError::Closed) => break,
                    },
                    checked = keys.recv() => {
                        revoked = matches!(checked, Err(RecvError::Closed)) || hub.is_revoked(caller.key_id);
                    }
                }
                if revoked {
                    Err(AppError::Unauthenticated("the API key was revoked".into()))?;
                }
            }
        })
    }
}
