use crate::common::TestApp;
use crate::graphql_reads::count;

#[tokio::test]
async fn seeded_data_keeps_every_invariant() {
    let t = TestApp::new().await;
    t.seed(20, 400).await;
    assert_eq!(count(&t, "SELECT count(*) AS n FROM orders").await, 400);
    let violations = [
        // A balance is the sum of its ledger.
        "SELECT count(*) AS n FROM users u WHERE balance_cents <> (SELECT coalesce(sum(amount_cents), 0) FROM balance_ledger l WHERE l.user_id = u.id)",
        // A total is the sum of its items.
        "SELECT count(*) AS n FROM orders o WHERE total_cents <> (SELECT sum(total_cents) FROM order_items i WHERE i.order_id = o.id)",
        // Paid money has exactly one succeeded payment of the total.
        "SELECT count(*) AS n FROM orders o WHERE payment_status IN (3, 5, 6) AND 1 <> (SELECT count(*) FROM payments p WHERE p.order_id = o.id AND p.status = 2 AND p.amount_cents = o.total_cents)",
        // Unpaid orders have no succeeded payment.
        "SELECT count(*) AS n FROM orders o WHERE payment_status IN (1, 2, 4) AND EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.status = 2)",
        // Refunded cents are the sum of succeeded refunds.
        "SELECT count(*) AS n FROM orders o WHERE refunded_cents <> (SELECT coalesce(sum(amount_cents), 0) FROM refunds r WHERE r.order_id = o.id AND r.status = 2)",
        // Every order has its creation event.
        "SELECT count(*) AS n FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.kind = 'created')",
    ];
    for sql in violations {
        assert_eq!(count(&t, sql).await, 0, "{sql}");
    }
    // Every status and payment status shows up, so every filter has something to show.
    assert_eq!(count(&t, "SELECT count(DISTINCT status) AS n FROM orders").await, 4);
    assert_eq!(count(&t, "SELECT count(DISTINCT payment_status) AS n FROM orders").await, 6);
}
