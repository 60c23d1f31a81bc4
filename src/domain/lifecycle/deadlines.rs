//! Authentication deadlines: attempts whose customer did not authenticate in time fail.

use super::outcomes::{PaymentOutcome, apply_outcome};
use super::*;

/// Most attempts one sweep fails for an authentication that ran out.
const EXPIRY_BATCH: i64 = 100;

/// Fails the attempts whose customer did not authenticate before the deadline
/// (`authentication_timeout`), each like a provider's failure callback: the order's payment
/// becomes FAILED (seed 001: TIMEOUT_3DS or OTP_TIMEOUT) unless another attempt is pending.
/// Returns how many it failed. The janitor runs it on every tick.
pub async fn expire_authentications(pool: &DbPool) -> AppResult<usize> {
    let mut conn = pool.get().await?;
    let due = queries::authentications_due(&mut conn, Utc::now(), EXPIRY_BATCH).await?;
    let mut failed = 0;
    for payment in due {
        let outcome = PaymentOutcome {
            failure_code: Some(crate::domain::merchants::status::AUTHENTICATION_TIMEOUT.to_owned()),
            failure_message: Some("the customer did not authenticate in time".to_owned()),
            ..PaymentOutcome::bare(&payment, PaymentAttemptStatus::Failed)
        };
        let changed = conn
            .transaction::<_, AppError, _>(async |conn| {
                // Under the row locks, order first (as every other path takes them): only an
                // attempt still waiting is failed.
                lock_orders_of(conn, payment.id, payment.order_id).await?;
                let current = queries::lock_payment_of_order(conn, payment.order_id, payment.id).await?;
                if current.is_none_or(|p| {
                    p.status != PaymentAttemptStatus::Pending.code()
                        || p.authentication_expires_at.is_none_or(|d| d > Utc::now())
                }) {
                    return Ok(false);
                }
                // A failure supersedes nothing.
                let mut none = Vec::new();
                apply_outcome(conn, &outcome, super::events::JANITOR_ACTOR, &mut none).await.map(|(_, changed)| changed)
            })
            .await;
        match changed {
            Ok(changed) => failed += usize::from(changed),
            // One attempt's trouble (a lock timeout, say) does not stop the others; it is
            // due again on the next tick.
            Err(error) => error.log(),
        }
    }
    Ok(failed)
}
