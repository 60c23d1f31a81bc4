-- Authorise, then capture (seed 002's reserved payments).
--
-- An attempt created with manual capture is AUTHORIZED (5) once the provider reserved its
-- amount (Stripe `requires_capture`). It stays open like a PENDING attempt: the janitor
-- keeps asking about it (an authorisation expires at the provider), and cancelling the
-- order releases it.
ALTER TABLE payments DROP CONSTRAINT payments_status_code;
ALTER TABLE payments ADD CONSTRAINT payments_status_code CHECK (status BETWEEN 1 AND 5);
-- An AUTHORIZED attempt has an intent to capture and no money yet.
ALTER TABLE payments ADD CONSTRAINT payments_authorized_has_intent
    CHECK (status <> 5 OR (payment_intent_id IS NOT NULL AND paid_at IS NULL));

DROP INDEX payments_pending_next_check_idx;
CREATE INDEX payments_open_next_check_idx ON payments (next_check_at, id) WHERE status IN (1, 5);

-- A capture of part of the reserved amount releases the rest: the customer is never
-- charged it. The order stays "one SUCCEEDED payment of its total", and the part not
-- captured is recorded as a refund that moved no money (`released`): it counts in the
-- order's refunded_cents, so later refunds are capped at what was captured.
ALTER TABLE refunds ADD COLUMN released BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE refunds ADD CONSTRAINT refunds_released_moved_nothing
    CHECK (NOT released OR (status = 2 AND payment_id IS NOT NULL AND provider_refund_id IS NULL
                            AND NOT credit_balance AND NOT due_back));
-- At most one release per payment (one capture per authorisation).
CREATE UNIQUE INDEX refunds_one_release_per_payment ON refunds (payment_id) WHERE released;
