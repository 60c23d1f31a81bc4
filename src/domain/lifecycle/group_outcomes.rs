//! Outcomes of one charge for several orders (`payOrders`): every member takes the
//! outcome, in one transaction, the orders locked in ascending id order first.

use super::outcomes::{PaymentOutcome, apply_one};
use super::*;
use crate::db::groups::{Member, PaymentGroup};

/// Applies `outcome` (of one member of `group`) to every member.
pub(super) async fn apply_to_group(
    conn: &mut AsyncPgConnection,
    outcome: &PaymentOutcome,
    (group, members): (PaymentGroup, Vec<Member>),
    actor: &str,
    superseded: &mut Vec<models::Payment>,
) -> AppResult<(models::Order, bool)> {
    // One charge for several orders: its outcome is every member's, in one transaction.
    // The orders are locked first, in id order, as payOrders locks them.
    if !members.iter().any(|m| m.payment_id == outcome.payment_id && m.order_id == outcome.order_id) {
        return Err(AppError::not_found(format!(
            "payment {} not found on order {}",
            outcome.payment_id, outcome.order_id
        )));
    }
    for member in &members {
        queries::lock_order(conn, member.order_id).await?;
    }
    let shares = settlement_shares(&group, &members, conn, outcome.settlement).await?;
    let mut mine = None;
    let mut changed = false;
    for (member, settlement) in members.iter().zip(shares) {
        if matches!(outcome.status, PaymentAttemptStatus::Pending | PaymentAttemptStatus::Cancelled)
            && member.payment_id != outcome.payment_id
        {
            // "Still processing" does not re-open a member its order already let go of, and
            // a cancel does not rewrite one that already ended (a decline keeps its reason).
            let open = queries::find_payment(conn, member.payment_id).await?.is_some_and(|p| is_open(&p));
            if !open {
                continue;
            }
        }
        // Each member takes its whole share: a group's charge is never captured in part.
        let each = PaymentOutcome {
            order_id: member.order_id,
            payment_id: member.payment_id,
            settlement,
            captured_cents: None,
            ..outcome.clone()
        };
        let (order, changed_one) = apply_one(conn, &each, actor, superseded).await?;
        changed |= changed_one;
        if member.payment_id == outcome.payment_id {
            mine = Some(order);
        }
    }
    let order =
        mine.ok_or_else(|| AppError::internal(anyhow::anyhow!("payment {} left its group", outcome.payment_id)))?;
    Ok((order, changed))
}

/// A group's settlement split over its members in proportion to their shares, each rounded
/// down and the cents left given to members with room, so each is at most its payment's
/// amount.
async fn settlement_shares(
    group: &PaymentGroup,
    members: &[Member],
    conn: &mut AsyncPgConnection,
    settlement: Option<(DateTime<Utc>, i64)>,
) -> AppResult<Vec<Option<(DateTime<Utc>, i64)>>> {
    let Some((at, net)) = settlement else { return Ok(vec![None; members.len()]) };
    if !(0..=group.amount_cents).contains(&net) {
        return Err(AppError::bad_input(format!(
            "settledAmountCents {net} is more than the charge for {} orders took ({})",
            members.len(),
            group.amount_cents
        )));
    }
    // Each member's share rounded down, then the cents rounding left one by one to members
    // with room: every share stays within its payment (the shares of G sum to G ≥ net).
    let mut amounts = Vec::with_capacity(members.len());
    for member in members {
        let payment = queries::find_payment(conn, member.payment_id)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("group member {} is gone", member.payment_id)))?;
        amounts.push(payment.amount_cents);
    }
    let mut cents: Vec<i64> = amounts
        .iter()
        .map(|amount| {
            i64::try_from(i128::from(net) * i128::from(*amount) / i128::from(group.amount_cents)).unwrap_or(0)
        })
        .collect();
    let mut left = net - cents.iter().sum::<i64>();
    for (share, amount) in cents.iter_mut().zip(&amounts) {
        let room = (amount - *share).min(left).max(0);
        *share += room;
        left -= room;
    }
    let shares = cents.into_iter().map(|c| Some((at, c))).collect();
    Ok(shares)
}
