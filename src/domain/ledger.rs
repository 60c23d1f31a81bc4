//! Balance changes. A balance changes only under its row lock and only together with an
//! append-only ledger row carrying the balance after the change.

use chrono::Utc;
use diesel_async::AsyncPgConnection;

use crate::db::{models, queries};
use crate::error::{AppError, AppResult};

/// Where a balance change comes from.
pub struct Entry<'a> {
    pub kind: &'a str,
    pub order_id: Option<i64>,
    pub refund_id: Option<i64>,
    pub note: Option<&'a str>,
}

/// Adds `delta` (negative to charge) to a user's balance. A charge larger than the balance
/// is `INSUFFICIENT_BALANCE`; the caller's transaction then rolls back and nothing changes.
pub async fn change_balance(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    delta: i64,
    entry: Entry<'_>,
) -> AppResult<models::User> {
    let user = queries::lock_user(conn, user_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("user {user_id} vanished during a balance change")))?;
    let balance = user
        .balance_cents
        .checked_add(delta)
        .ok_or_else(|| AppError::bad_input("the balance change is out of range"))?;
    if balance < 0 {
        return Err(AppError::InsufficientBalance(format!(
            "user {user_id} has a balance of {} and cannot be charged {}",
            user.balance_cents, -delta
        )));
    }
    let user = queries::set_user_balance(conn, user_id, balance, Utc::now()).await?;
    queries::insert_ledger_entry(
        conn,
        &models::NewLedgerEntry {
            user_id,
            amount_cents: delta,
            balance_after_cents: balance,
            kind: entry.kind,
            order_id: entry.order_id,
            refund_id: entry.refund_id,
            note: entry.note,
        },
    )
    .await?;
    Ok(user)
}
