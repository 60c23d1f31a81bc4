use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::common::fresh_database;

#[derive(QueryableByName, Debug)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

async fn tables(url: &str) -> Vec<String> {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let rows: Vec<Name> = diesel::sql_query(
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations' ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.name).collect()
}

#[tokio::test]
async fn migrations_revert_and_reapply() {
    let url = fresh_database().await;
    let before = tables(&url).await;
    assert!(before.contains(&"orders".to_owned()) && before.contains(&"balance_ledger".to_owned()));
    billing_api::db::revert_all_migrations(&url).await.unwrap();
    assert_eq!(tables(&url).await, Vec::<String>::new());
    billing_api::db::run_migrations(&url).await.unwrap();
    assert_eq!(tables(&url).await, before);
}

#[tokio::test]
async fn every_foreign_key_has_an_index() {
    let url = fresh_database().await;
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    let missing: Vec<Name> = diesel::sql_query(
        "SELECT c.conrelid::regclass::text || '.' || c.conname AS name
         FROM pg_constraint c
         WHERE c.contype = 'f'
           AND NOT EXISTS (
             SELECT 1 FROM pg_index i
             WHERE i.indrelid = c.conrelid
               AND (string_to_array(i.indkey::text, ' ')::int2[])[1:array_length(c.conkey, 1)] = c.conkey)",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert!(missing.is_empty(), "foreign keys without an index: {missing:?}");
}

#[tokio::test]
async fn the_database_refuses_broken_money() {
    use diesel_async::SimpleAsyncConnection;
    let url = fresh_database().await;
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    conn.batch_execute(
        "INSERT INTO users (id, email, name, balance_cents) VALUES (1, 'c@example.com', 'C', 10);
         INSERT INTO orders (id, number, user_id, total_cents, currency, payment_method, status, payment_status, paid_at)
         VALUES (1, 'ORD-1', 1, 100, 'USD', 'card', 2, 3, now());
         INSERT INTO balance_ledger (user_id, amount_cents, balance_after_cents, kind) VALUES (1, 10, 10, 'opening_balance');",
    )
    .await
    .unwrap();
    for broken in [
        "UPDATE users SET balance_cents = -1 WHERE id = 1",
        "UPDATE orders SET refunded_cents = 101, payment_status = 5 WHERE id = 1",
        "UPDATE orders SET refunded_cents = -1 WHERE id = 1",
        "UPDATE orders SET status = 1 WHERE id = 1",
        "UPDATE orders SET status = 4 WHERE id = 1",
        "UPDATE orders SET payment_status = 6 WHERE id = 1",
        "UPDATE orders SET currency = 'usd' WHERE id = 1",
        "UPDATE balance_ledger SET amount_cents = 20",
        "DELETE FROM balance_ledger",
        "INSERT INTO payments (order_id, status, provider, payment_method, amount_cents, currency, paid_at) VALUES (1, 2, 'manual', 'card', 100, 'USD', now()), (1, 2, 'manual', 'card', 100, 'USD', now())",
        "INSERT INTO order_items (order_id, name, quantity, unit_price_cents, total_cents) VALUES (1, 'x', 2, 50, 99)",
        "INSERT INTO refunds (order_id, amount_cents, currency) VALUES (1, 0, 'USD')",
    ] {
        assert!(conn.batch_execute(broken).await.is_err(), "the database accepted: {broken}");
    }
}
