//! Users and their balances. A balance only changes together with a ledger row.

use diesel_async::AsyncConnection;

use super::access::Caller;
use crate::db::{DbPool, models, queries};
use crate::error::{AppError, AppResult};

/// Ledger kinds (the `kind` column of `balance_ledger`).
pub mod ledger_kind {
    pub const OPENING_BALANCE: &str = "opening_balance";
    pub const ORDER_CHARGE: &str = "order_charge";
    pub const REFUND_CREDIT: &str = "refund_credit";
}

/// Input of `createUser`.
#[derive(Debug, Clone)]
pub struct NewUserInput {
    pub email: String,
    pub name: String,
    pub balance_cents: i64,
}

/// Largest balance or amount accepted anywhere: 10^12 minor units.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;

fn validate_email(email: &str) -> AppResult<()> {
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid { Ok(()) } else { Err(AppError::bad_input(format!("email {email:?} is not a valid e-mail address"))) }
}

pub async fn create_user(pool: &DbPool, caller: &Caller, input: NewUserInput) -> AppResult<models::User> {
    caller.require_admin("createUser")?;
    let email = input.email.trim().to_owned();
    let name = input.name.trim().to_owned();
    validate_email(&email)?;
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::bad_input("name must be 1 to 200 characters"));
    }
    if !(0..=MAX_AMOUNT_CENTS).contains(&input.balance_cents) {
        return Err(AppError::bad_input(format!(
            "balanceCents must be between 0 and {MAX_AMOUNT_CENTS} (got {})",
            input.balance_cents
        )));
    }
    let mut conn = pool.get().await?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        if queries::user_email_taken(conn, &email).await? {
            return Err(AppError::Conflict(format!("a user with email {email} already exists")));
        }
        let new = models::NewUser { email: &email, name: &name, balance_cents: input.balance_cents };
        // Two requests with one email can both pass the check above; the unique index
        // decides, and the loser is told as if it had come second.
        let user = queries::insert_user(conn, &new).await.map_err(|error| match error {
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                AppError::Conflict(format!("a user with email {email} already exists"))
            }
            other => other.into(),
        })?;
        if user.balance_cents > 0 {
            queries::insert_ledger_entry(
                conn,
                &models::NewLedgerEntry {
                    user_id: user.id,
                    amount_cents: user.balance_cents,
                    balance_after_cents: user.balance_cents,
                    kind: ledger_kind::OPENING_BALANCE,
                    order_id: None,
                    refund_id: None,
                    note: Some("opening balance"),
                },
            )
            .await?;
        }
        Ok(user)
    })
    .await
}

/// A user the caller may see, or `None` (customers never learn other users exist).
pub async fn get_user(pool: &DbPool, caller: &Caller, id: i64) -> AppResult<Option<models::User>> {
    if !caller.can_read_user(id) {
        return Ok(None);
    }
    let mut conn = pool.get().await?;
    Ok(queries::find_user(&mut conn, id).await?)
}

/// How many users there are (to tell an empty database from one with data).
pub async fn count(pool: &DbPool) -> AppResult<i64> {
    let mut conn = pool.get().await?;
    Ok(queries::count_users(&mut conn).await?)
}
