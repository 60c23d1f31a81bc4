-- Work whose outcome is not known yet, and what resolves it.
--
-- A refund whose provider call ended ambiguously (timeout, reset, 429, 5xx) stays PENDING
-- with its amount reserved; the janitor asks the provider again (with the refund's own
-- provider idempotency key, `refund-<id>`) at `next_check_at`, backing off per `checks`.
-- `request_key` ties a refund to the client's Idempotency-Key (scoped to the API key), so a
-- client retry reaches the same refund instead of creating another.
ALTER TABLE refunds
    ADD COLUMN request_key   TEXT,
    ADD COLUMN checks        INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN next_check_at TIMESTAMPTZ,
    ADD COLUMN last_error    TEXT,
    ADD CONSTRAINT refunds_checks_non_negative CHECK (checks >= 0),
    ADD CONSTRAINT refunds_request_key_length CHECK (request_key IS NULL OR length(request_key) <= 400);
-- Money that arrived on an attempt after its order was paid by another (a duplicate
-- payment) is due back: a `due_back` refund returns it without touching the order's own
-- refunded amounts. At most one live such refund per attempt.
ALTER TABLE refunds ADD COLUMN due_back BOOLEAN NOT NULL DEFAULT false;
CREATE UNIQUE INDEX refunds_one_live_due_back ON refunds (payment_id) WHERE due_back AND status <> 3;
-- One live refund per client request: a FAILED refund (definitely refused, its reservation
-- released) no longer holds the key, so a retry may try afresh.
CREATE UNIQUE INDEX refunds_request_key_live ON refunds (request_key) WHERE request_key IS NOT NULL AND status <> 3;
CREATE INDEX refunds_pending_next_check_idx ON refunds (next_check_at, id) WHERE status = 1;
-- Refunds left PENDING before the janitor existed (a crash mid-refund) are checked now.
UPDATE refunds SET next_check_at = now() WHERE status = 1;

-- A payment attempt still PENDING at a provider that can be asked is checked on the same
-- schedule.
ALTER TABLE payments
    ADD COLUMN checks        INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN next_check_at TIMESTAMPTZ,
    ADD COLUMN last_error    TEXT,
    ADD CONSTRAINT payments_checks_non_negative CHECK (checks >= 0);
CREATE INDEX payments_pending_next_check_idx ON payments (next_check_at, id) WHERE status = 1;
UPDATE payments SET next_check_at = now() WHERE status = 1 AND provider = 'stripe' AND payment_intent_id IS NOT NULL;

-- An idempotency claim is a lease: a claim whose holder died (or whose completion was never
-- written) is taken over once `locked_until` has passed.
ALTER TABLE idempotency_keys ADD COLUMN locked_until TIMESTAMPTZ;
