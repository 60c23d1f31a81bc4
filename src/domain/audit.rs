//! `audit`: checks every money invariant over the whole database and reports each
//! violation with the rows involved. The database's constraints guard what one row can say;
//! these checks guard what rows must say together (sums, counts, chains), which no CHECK
//! constraint can. Read-only; one statement per check, in one snapshot.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use serde::Serialize;

use super::access::Caller;
use crate::db::DbPool;
use crate::error::{AppError, AppResult};

/// One broken invariant: which check, which rows, and what they say.
#[derive(Debug, Clone, Serialize, QueryableByName, PartialEq, Eq)]
pub struct Violation {
    #[diesel(sql_type = Text)]
    pub check: String,
    /// The rows involved, as `table:id` separated by spaces.
    #[diesel(sql_type = Text)]
    pub rows: String,
    #[diesel(sql_type = Text)]
    pub detail: String,
}

/// The checks: a name, what it promises, and a query that returns the rows breaking it
/// (columns `check`, `rows`, `detail`). At most 100 rows per check are reported.
pub const CHECKS: &[(&str, &str, &str)] = &[
    (
        "balance_equals_ledger",
        "each user's balance equals the sum of its ledger, and its last entry's balance_after",
        "SELECT 'balance_equals_ledger' AS check, 'users:' || u.id AS rows,
                format('balance %s, ledger sum %s, last balance_after %s', u.balance_cents, coalesce(l.total, 0), coalesce(l.last_after::text, 'none')) AS detail
         FROM users u
         LEFT JOIN LATERAL (
             SELECT sum(amount_cents) AS total,
                    (SELECT balance_after_cents FROM balance_ledger b2 WHERE b2.user_id = u.id ORDER BY id DESC LIMIT 1) AS last_after
             FROM balance_ledger b WHERE b.user_id = u.id
         ) l ON true
         WHERE u.balance_cents <> coalesce(l.total, 0)
            OR (l.last_after IS NOT NULL AND l.last_after <> u.balance_cents)",
    ),
    (
        "ledger_chain",
        "each ledger entry's balance_after is the previous entry's plus its amount",
        "SELECT 'ledger_chain' AS check, 'balance_ledger:' || id AS rows,
                format('user %s: previous balance_after %s + amount %s <> balance_after %s', user_id, coalesce(prev, 0), amount_cents, balance_after_cents) AS detail
         FROM (SELECT *, lag(balance_after_cents) OVER (PARTITION BY user_id ORDER BY id) AS prev FROM balance_ledger) b
         WHERE coalesce(prev, 0) + amount_cents <> balance_after_cents",
    ),
    (
        "refunded_equals_succeeded_refunds",
        "each order's refunded_cents equals the sum of its SUCCEEDED refunds",
        "SELECT 'refunded_equals_succeeded_refunds' AS check, 'orders:' || o.id AS rows,
                format('refunded_cents %s, succeeded refunds %s', o.refunded_cents, coalesce(r.total, 0)) AS detail
         FROM orders o
         LEFT JOIN (SELECT order_id, sum(amount_cents) AS total FROM refunds WHERE status = 2 AND NOT due_back GROUP BY order_id) r ON r.order_id = o.id
         WHERE o.refunded_cents <> coalesce(r.total, 0)",
    ),
    (
        "reservation_equals_pending_refunds",
        "each order's refund_pending_cents equals the sum of its PENDING refunds",
        "SELECT 'reservation_equals_pending_refunds' AS check, 'orders:' || o.id AS rows,
                format('refund_pending_cents %s, pending refunds %s', o.refund_pending_cents, coalesce(r.total, 0)) AS detail
         FROM orders o
         LEFT JOIN (SELECT order_id, sum(amount_cents) AS total FROM refunds WHERE status = 1 AND NOT due_back GROUP BY order_id) r ON r.order_id = o.id
         WHERE o.refund_pending_cents <> coalesce(r.total, 0)",
    ),
    (
        "paid_once",
        "a paid (or refunded) order has exactly one SUCCEEDED payment, of its total and currency; an unpaid one has none",
        "SELECT 'paid_once' AS check, 'orders:' || o.id || coalesce(' ' || p.ids, '') AS rows,
                format('payment_status %s with %s succeeded payments (amounts %s)', o.payment_status, coalesce(p.n, 0), coalesce(p.amounts, 'none')) AS detail
         FROM orders o
         LEFT JOIN (SELECT order_id, count(*) AS n, string_agg('payments:' || id, ' ') AS ids,
                           string_agg(amount_cents || ' ' || currency, ', ') AS amounts,
                           bool_and(true) AS any, min(amount_cents) AS amount, min(currency) AS currency
                    FROM payments WHERE status = 2 GROUP BY order_id) p ON p.order_id = o.id
         WHERE (o.payment_status IN (3, 5, 6) AND (coalesce(p.n, 0) <> 1 OR p.amount <> o.total_cents OR p.currency <> o.currency))
            OR (o.payment_status IN (1, 2, 4) AND coalesce(p.n, 0) <> 0)",
    ),
    (
        "refunds_within_payment",
        "refunds (SUCCEEDED and PENDING) of an order never exceed what it was paid",
        "SELECT 'refunds_within_payment' AS check, 'orders:' || o.id AS rows,
                format('total %s, refunds %s', o.total_cents, r.total) AS detail
         FROM orders o
         JOIN (SELECT order_id, sum(amount_cents) AS total FROM refunds WHERE status IN (1, 2) AND NOT due_back GROUP BY order_id) r ON r.order_id = o.id
         WHERE r.total > o.total_cents OR (r.total > 0 AND o.payment_status NOT IN (3, 5, 6))",
    ),
    (
        "balance_credits_match_refunds",
        "each SUCCEEDED refund to the balance has exactly one refund_credit of its amount; no other refund has one",
        "SELECT 'balance_credits_match_refunds' AS check, 'refunds:' || r.id AS rows,
                format('refund status %s credit_balance %s amount %s; ledger credits %s', r.status, r.credit_balance, r.amount_cents, coalesce(l.amounts, 'none')) AS detail
         FROM refunds r
         LEFT JOIN (SELECT refund_id, count(*) AS n, sum(amount_cents) AS total, string_agg(amount_cents::text, ', ') AS amounts
                    FROM balance_ledger WHERE kind = 'refund_credit' GROUP BY refund_id) l ON l.refund_id = r.id
         WHERE (r.status = 2 AND r.credit_balance AND (coalesce(l.n, 0) <> 1 OR l.total <> r.amount_cents))
            OR ((r.status <> 2 OR NOT r.credit_balance) AND coalesce(l.n, 0) <> 0)",
    ),
    (
        "balance_charges_match_payments",
        "each SUCCEEDED balance payment has exactly one order_charge of minus its amount",
        "SELECT 'balance_charges_match_payments' AS check, 'payments:' || p.id AS rows,
                format('balance payment of %s; ledger charges %s', p.amount_cents, coalesce(l.amounts, 'none')) AS detail
         FROM payments p
         LEFT JOIN (SELECT order_id, count(*) AS n, sum(amount_cents) AS total, string_agg(amount_cents::text, ', ') AS amounts
                    FROM balance_ledger WHERE kind = 'order_charge' GROUP BY order_id) l ON l.order_id = p.order_id
         WHERE p.provider = 'balance' AND p.status = 2 AND (coalesce(l.n, 0) <> 1 OR l.total <> -p.amount_cents)",
    ),
    (
        "due_back_refunds_return_duplicates",
        "a due-back refund returns the whole amount of a duplicate payment of its order",
        "SELECT 'due_back_refunds_return_duplicates' AS check, 'refunds:' || r.id || ' payments:' || coalesce(p.id::text, 'none') AS rows,
                format('due-back refund of %s for payment status %s failure %s amount %s', r.amount_cents, p.status, coalesce(p.failure_code, 'none'), p.amount_cents) AS detail
         FROM refunds r LEFT JOIN payments p ON p.id = r.payment_id
         WHERE r.due_back AND (p.id IS NULL OR p.order_id <> r.order_id OR p.status <> 4
               OR p.failure_code IS DISTINCT FROM 'duplicate_payment' OR p.amount_cents <> r.amount_cents)",
    ),
    (
        "balance_charges_have_payments",
        "each order_charge belongs to an order with a SUCCEEDED balance payment",
        "SELECT 'balance_charges_have_payments' AS check, 'balance_ledger:' || l.id AS rows,
                format('charge of %s for order %s without a succeeded balance payment', l.amount_cents, coalesce(l.order_id::text, 'none')) AS detail
         FROM balance_ledger l
         WHERE l.kind = 'order_charge'
           AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = l.order_id AND p.provider = 'balance' AND p.status = 2)",
    ),
    (
        "releases_follow_partial_captures",
        "a released refund (the uncaptured part of an authorisation) belongs to a SUCCEEDED payment of its order, for less than its amount",
        "SELECT 'releases_follow_partial_captures' AS check, 'refunds:' || r.id || ' payments:' || coalesce(p.id::text, 'none') AS rows,
                format('release of %s for payment status %s amount %s', r.amount_cents, coalesce(p.status::text, 'none'), coalesce(p.amount_cents::text, 'none')) AS detail
         FROM refunds r LEFT JOIN payments p ON p.id = r.payment_id
         WHERE r.released AND (p.id IS NULL OR p.status <> 2 OR p.order_id <> r.order_id OR r.amount_cents >= p.amount_cents)",
    ),
    (
        "unresolved_work_is_scheduled",
        "every PENDING refund, and every open (PENDING or AUTHORIZED) Stripe attempt with an intent, has a next check (the janitor will look at it)",
        "SELECT 'unresolved_work_is_scheduled' AS check, 'refunds:' || id AS rows, 'PENDING refund with no next check' AS detail
         FROM refunds WHERE status = 1 AND next_check_at IS NULL
         UNION ALL
         SELECT 'unresolved_work_is_scheduled', 'payments:' || id, 'PENDING stripe attempt with no next check'
         FROM payments WHERE status IN (1, 5) AND provider = 'stripe' AND payment_intent_id IS NOT NULL AND next_check_at IS NULL",
    ),
    (
        "events_agree_with_refunds",
        "each order has one `refunded` event per SUCCEEDED refund",
        "SELECT 'events_agree_with_refunds' AS check, 'orders:' || o.id AS rows,
                format('%s succeeded refunds, %s refunded events', coalesce(r.n, 0), coalesce(e.n, 0)) AS detail
         FROM orders o
         LEFT JOIN (SELECT order_id, count(*) AS n FROM refunds WHERE status = 2 AND NOT due_back AND NOT released GROUP BY order_id) r ON r.order_id = o.id
         LEFT JOIN (SELECT order_id, count(*) AS n FROM order_events WHERE kind = 'refunded' GROUP BY order_id) e ON e.order_id = o.id
         WHERE coalesce(r.n, 0) <> coalesce(e.n, 0)",
    ),
    (
        "events_agree_with_payment",
        "each paid order has exactly one `paid` event; an unpaid one has none",
        "SELECT 'events_agree_with_payment' AS check, 'orders:' || o.id AS rows,
                format('payment_status %s, %s paid events', o.payment_status, coalesce(e.n, 0)) AS detail
         FROM orders o
         LEFT JOIN (SELECT order_id, count(*) AS n FROM order_events WHERE kind = 'paid' GROUP BY order_id) e ON e.order_id = o.id
         WHERE (o.payment_status IN (3, 5, 6)) <> (coalesce(e.n, 0) = 1) OR coalesce(e.n, 0) > 1",
    ),
];

/// Runs every check in one read-only snapshot. Admins only (the CLI runs as the system).
pub async fn audit(pool: &DbPool, caller: &Caller) -> AppResult<Vec<Violation>> {
    caller.require_admin("audit")?;
    let mut conn = pool.get().await?;
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run::<_, AppError, _>(async |conn| {
            let mut found = Vec::new();
            for (_, _, sql) in CHECKS {
                let rows: Vec<Violation> =
                    diesel::sql_query(format!("SELECT * FROM ({sql}) v LIMIT 100")).load(conn).await?;
                found.extend(rows);
            }
            Ok(found)
        })
        .await
}
