//! Payment groups: one provider charge (or balance debit) paying several orders, each
//! order holding its own attempt for its share (migration 13); and capture claims
//! (migration 14).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{payment_captures, payment_group_members, payment_groups, payments};

/// A group, as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payment_groups, check_for_backend(diesel::pg::Pg))]
pub struct PaymentGroup {
    pub id: i64,
    pub user_id: i64,
    pub provider: String,
    pub amount_cents: i64,
    pub currency: String,
    pub payment_intent_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// One member: an order's attempt in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = payment_group_members, check_for_backend(diesel::pg::Pg))]
pub struct Member {
    pub payment_id: i64,
    pub group_id: i64,
    pub order_id: i64,
}

pub async fn insert_group(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    provider: &str,
    amount_cents: i64,
    currency: &str,
    payment_intent_id: Option<&str>,
) -> QueryResult<PaymentGroup> {
    diesel::insert_into(payment_groups::table)
        .values((
            payment_groups::user_id.eq(user_id),
            payment_groups::provider.eq(provider),
            payment_groups::amount_cents.eq(amount_cents),
            payment_groups::currency.eq(currency),
            payment_groups::payment_intent_id.eq(payment_intent_id),
        ))
        .returning(PaymentGroup::as_returning())
        .get_result(conn)
        .await
}

pub async fn insert_member(conn: &mut AsyncPgConnection, member: Member) -> QueryResult<usize> {
    diesel::insert_into(payment_group_members::table)
        .values((
            payment_group_members::payment_id.eq(member.payment_id),
            payment_group_members::group_id.eq(member.group_id),
            payment_group_members::order_id.eq(member.order_id),
        ))
        .execute(conn)
        .await
}

/// The group `payment_id` belongs to, with all its members in order id order (the order
/// their orders are locked in); `None` for a payment of one order.
pub async fn group_of_payment(
    conn: &mut AsyncPgConnection,
    payment_id: i64,
) -> QueryResult<Option<(PaymentGroup, Vec<Member>)>> {
    let group = payment_group_members::table
        .inner_join(payment_groups::table)
        .filter(payment_group_members::payment_id.eq(payment_id))
        .select(PaymentGroup::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(group) = group else { return Ok(None) };
    let members = payment_group_members::table
        .filter(payment_group_members::group_id.eq(group.id))
        .order_by(payment_group_members::order_id.asc())
        .select(Member::as_select())
        .load(conn)
        .await?;
    Ok(Some((group, members)))
}

/// The amount of the capture under way for `payment_id`, if one is claimed (held).
pub async fn capture_claim(conn: &mut AsyncPgConnection, payment_id: i64) -> QueryResult<Option<i64>> {
    payment_captures::table
        .find(payment_id)
        .filter(payment_captures::holders.gt(0))
        .select(payment_captures::amount_cents)
        .first(conn)
        .await
        .optional()
}

/// Holds a claim on a capture of `amount_cents` for `payment_id`: a new claim, or one more
/// holder of the claim of the same amount (the caller checked the amount under the order's
/// lock). A claim nobody held any more starts again with this amount.
pub async fn claim_capture(
    conn: &mut AsyncPgConnection,
    payment_id: i64,
    amount_cents: i64,
    requested_by: &str,
) -> QueryResult<usize> {
    use diesel::dsl::case_when;
    use diesel::upsert::excluded;
    diesel::insert_into(payment_captures::table)
        .values((
            payment_captures::payment_id.eq(payment_id),
            payment_captures::amount_cents.eq(amount_cents),
            payment_captures::requested_by.eq(requested_by),
        ))
        .on_conflict(payment_captures::payment_id)
        .do_update()
        .set((
            payment_captures::holders.eq(payment_captures::holders + 1),
            payment_captures::amount_cents.eq(case_when(
                payment_captures::holders.eq(0),
                excluded(payment_captures::amount_cents),
            )
            .otherwise(payment_captures::amount_cents)),
            payment_captures::requested_by.eq(excluded(payment_captures::requested_by)),
            payment_captures::requested_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// The order's AUTHORIZED attempts with a capture under way.
pub async fn captures_under_way(conn: &mut AsyncPgConnection, order_id: i64) -> QueryResult<Vec<i64>> {
    payment_captures::table
        .inner_join(payments::table)
        .filter(payments::order_id.eq(order_id))
        .filter(payments::status.eq(5))
        .filter(payment_captures::holders.gt(0))
        .select(payment_captures::payment_id)
        .load(conn)
        .await
}

/// One request lets go of its hold on the claim for `payment_id`: it sent nothing, or the
/// provider refused it. The claim holds while another request still does.
pub async fn release_capture_claim(conn: &mut AsyncPgConnection, payment_id: i64) -> QueryResult<usize> {
    diesel::update(payment_captures::table.find(payment_id).filter(payment_captures::holders.gt(0)))
        .set(payment_captures::holders.eq(payment_captures::holders - 1))
        .execute(conn)
        .await
}

/// Clears the claim for `payment_id` if it was made before `before` (the janitor, when the
/// provider shows the reservation still open long after: the request that held it stopped).
pub async fn clear_stale_capture_claim(
    conn: &mut AsyncPgConnection,
    payment_id: i64,
    before: chrono::DateTime<chrono::Utc>,
) -> QueryResult<usize> {
    diesel::update(
        payment_captures::table
            .find(payment_id)
            .filter(payment_captures::holders.gt(0))
            .filter(payment_captures::requested_at.lt(before)),
    )
    .set(payment_captures::holders.eq(0))
    .execute(conn)
    .await
}

/// The orders to lock before changing payment `payment_id` of order `order_id`, in the
/// order to lock them: all of its group's orders by ascending id, or just its own.
pub async fn orders_to_lock(conn: &mut AsyncPgConnection, payment_id: i64, order_id: i64) -> QueryResult<Vec<i64>> {
    Ok(match group_of_payment(conn, payment_id).await? {
        Some((_, members)) => members.iter().map(|m| m.order_id).collect(),
        None => vec![order_id],
    })
}
