//! Bulk data: `seed --users N --orders N` and the demo data of a first `cargo run`.
//!
//! Rows are generated inside PostgreSQL with `generate_series`, so 100,000 orders with items,
//! payments, refunds and events load in seconds. Every row satisfies the same constraints as
//! rows the API writes: totals are the sum of items, paid orders have a succeeded payment,
//! refunded amounts match refunds, opening balances have ledger rows.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rand::RngCore;

/// What one seeding run created.
#[derive(Debug, Clone, Copy)]
pub struct SeedCounts {
    pub users: u32,
    pub orders: u32,
}

/// Inserts `users` users and `orders` orders (spread over those users) in one transaction.
pub async fn seed(url: &str, users: u32, orders: u32) -> anyhow::Result<SeedCounts> {
    if users == 0 && orders > 0 {
        anyhow::bail!("--orders needs at least one user: pass --users 1 or more");
    }
    let mut tag_bytes = [0u8; 4];
    rand::rng().fill_bytes(&mut tag_bytes);
    let tag = hex::encode(tag_bytes);
    let mut conn = AsyncPgConnection::establish(url).await?;
    conn.batch_execute(&seed_sql(&tag, users, orders)).await?;
    Ok(SeedCounts { users, orders })
}

fn seed_sql(tag: &str, users: u32, orders: u32) -> String {
    format!(
        r#"
BEGIN;
INSERT INTO users (email, name, balance_cents, created_at, updated_at)
SELECT format('user%s.{tag}@example.com', g),
       (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','Ken','Margaret','Linus'])[1 + g % 10]
         || ' ' || (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Thompson','Hamilton','Torvalds'])[1 + (g / 10) % 10],
       CASE WHEN g % 3 = 0 THEN 0 ELSE (g * 1237) % 50000 END,
       now() - make_interval(days => 400 - g % 365), now()
FROM generate_series(1, {users}) AS g;

CREATE TEMP TABLE seed_users ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY id) - 1 AS rn, id
FROM users WHERE email LIKE '%.{tag}@example.com';
CREATE UNIQUE INDEX ON seed_users (rn);

INSERT INTO balance_ledger (user_id, amount_cents, balance_after_cents, kind, note, created_at)
SELECT u.id, u.balance_cents, u.balance_cents, 'opening_balance', 'opening balance', u.created_at
FROM users u JOIN seed_users s ON s.id = u.id
WHERE u.balance_cents > 0;

-- bucket (n % 20) decides the story of each order:
--  0-6 paid, 7-8 partially refunded (8 after a failed attempt), 9 fully refunded,
--  10-14 pending unpaid, 15 processing, 16 failed, 17-19 cancelled.
CREATE TEMP TABLE seed_orders ON COMMIT DROP AS
SELECT g AS n, nextval('orders_id_seq') AS id, g % 20 AS bucket,
       (SELECT s.id FROM seed_users s WHERE s.rn = g % {users}) AS user_id,
       (ARRAY['card','bank_transfer','card','cash','manual'])[1 + g % 5] AS payment_method,
       (ARRAY['USD','EUR','USD','GBP'])[1 + (g / 7) % 4] AS currency,
       now() - make_interval(mins => (g * 37) % 525600) AS created_at
FROM generate_series(1, {orders}) AS g;

CREATE TEMP TABLE seed_items ON COMMIT DROP AS
SELECT o.id AS order_id, j,
       (ARRAY['Pro plan','Team seat','Storage add-on','Support hours','API credits','Domain'])[1 + (o.n + j) % 6] AS name,
       format('SKU-%s', 100 + (o.n + j) % 40) AS sku,
       1 + (o.n + j) % 3 AS quantity,
       100 * (1 + (o.n * 7 + j) % 50) AS unit_price_cents,
       o.created_at
FROM seed_orders o, generate_series(1, 1 + o.n % 3) AS j;

INSERT INTO orders (id, number, user_id, status, payment_status, payment_intent_id, payment_reference,
                    payment_failure_code, payment_failure_message, total_cents, currency, payment_method,
                    plan_id, plan_snapshot, metadata, cancel_reason, paid_at, cancelled_at,
                    refunded_cents, refunded_at, created_at, updated_at)
SELECT o.id,
       'ORD-' || to_char(o.created_at AT TIME ZONE 'UTC', 'YYYYMMDD') || '-' || lpad(o.id::text, 6, '0'),
       o.user_id,
       CASE WHEN o.bucket <= 8 THEN 2 WHEN o.bucket = 9 THEN 4 WHEN o.bucket <= 16 THEN 1 ELSE 3 END,
       CASE WHEN o.bucket <= 6 THEN 3 WHEN o.bucket <= 8 THEN 5 WHEN o.bucket = 9 THEN 6
            WHEN o.bucket <= 14 THEN 1 WHEN o.bucket = 15 THEN 2 WHEN o.bucket = 16 THEN 4 ELSE 1 END,
       CASE WHEN o.bucket <= 9 OR o.bucket IN (15, 16) THEN 'pi_seed_' || o.id END,
       CASE WHEN o.bucket <= 9 THEN 'REF-' || o.id END,
       CASE WHEN o.bucket = 16 THEN 'card_declined' END,
       CASE WHEN o.bucket = 16 THEN 'The card was declined.' END,
       t.total, o.currency, o.payment_method,
       CASE WHEN o.n % 4 = 0 THEN 1 + o.n % 3 END,
       CASE WHEN o.n % 4 = 0 THEN jsonb_build_object('plan', (ARRAY['starter','pro','team'])[1 + o.n % 3], 'interval', 'month')
            ELSE '{{}}'::jsonb END,
       jsonb_build_object('source', 'seed', 'channel', (ARRAY['web','ios','android'])[1 + o.n % 3]),
       CASE WHEN o.bucket >= 17 THEN 'customer changed their mind' END,
       CASE WHEN o.bucket <= 9 THEN o.created_at + interval '5 minutes' END,
       CASE WHEN o.bucket >= 17 THEN o.created_at + interval '1 hour' END,
       CASE WHEN o.bucket IN (7, 8) THEN t.total / 2 WHEN o.bucket = 9 THEN t.total ELSE 0 END,
       CASE WHEN o.bucket BETWEEN 7 AND 9 THEN o.created_at + interval '2 days' END,
       o.created_at,
       o.created_at + CASE WHEN o.bucket BETWEEN 7 AND 9 THEN interval '2 days' ELSE interval '1 hour' END
FROM seed_orders o
JOIN (SELECT order_id, sum(quantity * unit_price_cents) AS total FROM seed_items GROUP BY order_id) t
  ON t.order_id = o.id;

INSERT INTO order_items (order_id, name, sku, quantity, unit_price_cents, total_cents, metadata, created_at)
SELECT order_id, name, sku, quantity, unit_price_cents, quantity * unit_price_cents, '{{}}'::jsonb, created_at
FROM seed_items ORDER BY order_id, j;

-- A failed first attempt for bucket 8 and 16, then the attempt that decided the order.
INSERT INTO payments (order_id, status, provider, payment_method, amount_cents, currency, reference,
                      payment_intent_id, failure_code, failure_message, paid_at, created_at, updated_at)
SELECT o.id, 3, 'manual', o.payment_method, o.total_cents, o.currency, NULL, 'pi_seed_' || o.id || '_1',
       'insufficient_funds', 'The card has insufficient funds.', NULL, o.created_at + interval '1 minute',
       o.created_at + interval '2 minutes'
FROM orders o JOIN seed_orders s ON s.id = o.id
WHERE s.bucket IN (8, 16);

-- Buckets 0-3 settled two days after payment, net of a 2.9% fee.
INSERT INTO payments (order_id, status, provider, payment_method, amount_cents, currency, reference,
                      payment_intent_id, paid_at, created_at, updated_at, settled_at, settled_cents)
SELECT o.id, CASE WHEN s.bucket <= 9 THEN 2 ELSE 1 END, 'manual', o.payment_method, o.total_cents, o.currency,
       o.payment_reference, o.payment_intent_id, o.paid_at, o.created_at + interval '3 minutes',
       o.created_at + interval '5 minutes',
       CASE WHEN s.bucket <= 3 THEN o.paid_at + interval '2 days' END,
       CASE WHEN s.bucket <= 3 THEN o.total_cents - o.total_cents * 29 / 1000 END
FROM orders o JOIN seed_orders s ON s.id = o.id
WHERE s.bucket <= 9 OR s.bucket = 15;

INSERT INTO refunds (order_id, payment_id, status, amount_cents, currency, reason, metadata, credit_balance,
                     refunded_at, created_at, updated_at)
SELECT o.id, p.id, 2, o.refunded_cents, o.currency,
       CASE WHEN s.bucket = 9 THEN 'service not delivered' ELSE 'partial goodwill refund' END,
       '{{}}'::jsonb, false, o.refunded_at, o.refunded_at, o.refunded_at
FROM orders o JOIN seed_orders s ON s.id = o.id JOIN payments p ON p.order_id = o.id AND p.status = 2
WHERE s.bucket BETWEEN 7 AND 9;

INSERT INTO order_events (order_id, kind, actor, data, created_at, seq)
SELECT order_id, kind, actor, data, created_at,
       row_number() OVER (PARTITION BY order_id ORDER BY created_at, kind)
FROM (
SELECT o.id AS order_id, 'created' AS kind, 'seed' AS actor, jsonb_build_object('total_cents', o.total_cents, 'currency', o.currency) AS data, o.created_at AS created_at
FROM orders o JOIN seed_orders s ON s.id = o.id
UNION ALL
SELECT o.id, 'paid', 'seed', jsonb_build_object('amount_cents', o.total_cents, 'reference', o.payment_reference), o.paid_at
FROM orders o JOIN seed_orders s ON s.id = o.id WHERE s.bucket <= 9
UNION ALL
SELECT o.id, 'payment_failed', 'seed', jsonb_build_object('failure_code', 'insufficient_funds'), o.created_at + interval '2 minutes'
FROM orders o JOIN seed_orders s ON s.id = o.id WHERE s.bucket IN (8, 16)
UNION ALL
SELECT o.id, 'refunded', 'seed', jsonb_build_object('amount_cents', o.refunded_cents), o.refunded_at
FROM orders o JOIN seed_orders s ON s.id = o.id WHERE s.bucket BETWEEN 7 AND 9
UNION ALL
SELECT o.id, 'cancelled', 'seed', jsonb_build_object('reason', o.cancel_reason), o.cancelled_at
FROM orders o JOIN seed_orders s ON s.id = o.id WHERE s.bucket >= 17
) seeded;
UPDATE orders o SET event_seq = n.seq
  FROM (SELECT order_id, max(seq) AS seq FROM order_events GROUP BY order_id) n
 WHERE n.order_id = o.id;
COMMIT;
ANALYZE;
"#
    )
}
