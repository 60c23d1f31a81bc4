-- Billing schema: users with balances and an append-only ledger, orders with items,
-- payment attempts, refunds and an append-only event trail, hashed API keys and
-- idempotency records. Money is integer minor units (bigint) plus an ISO-4217 code.
-- Status columns hold the integer codes of SPEC §3 (smallint).

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT        NOT NULL,
    name          TEXT        NOT NULL,
    balance_cents BIGINT      NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_balance_non_negative CHECK (balance_cents >= 0),
    CONSTRAINT users_email_present CHECK (length(btrim(email)) > 0)
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE orders (
    id                      BIGSERIAL PRIMARY KEY,
    number                  TEXT        NOT NULL,
    user_id                 BIGINT      NOT NULL REFERENCES users (id),
    status                  SMALLINT    NOT NULL DEFAULT 1,
    payment_status          SMALLINT    NOT NULL DEFAULT 1,
    payment_intent_id       TEXT,
    payment_reference       TEXT,
    payment_failure_code    TEXT,
    payment_failure_message TEXT,
    total_cents             BIGINT      NOT NULL,
    currency                CHAR(3)     NOT NULL,
    payment_method          TEXT        NOT NULL,
    plan_id                 BIGINT,
    plan_snapshot           JSONB       NOT NULL DEFAULT '{}'::jsonb,
    metadata                JSONB       NOT NULL DEFAULT '{}'::jsonb,
    cancel_reason           TEXT,
    paid_at                 TIMESTAMPTZ,
    cancelled_at            TIMESTAMPTZ,
    refunded_cents          BIGINT      NOT NULL DEFAULT 0,
    -- Refunds sent to a provider and not yet confirmed: reserved so that concurrent
    -- refunds can never together exceed what was paid.
    refund_pending_cents    BIGINT      NOT NULL DEFAULT 0,
    refunded_at             TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT orders_number_key UNIQUE (number),
    CONSTRAINT orders_status_code CHECK (status BETWEEN 1 AND 4),
    CONSTRAINT orders_payment_status_code CHECK (payment_status BETWEEN 1 AND 6),
    CONSTRAINT orders_total_positive CHECK (total_cents > 0),
    CONSTRAINT orders_refunded_within_total CHECK (
        refunded_cents >= 0 AND refund_pending_cents >= 0
        AND refunded_cents + refund_pending_cents <= total_cents
    ),
    CONSTRAINT orders_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT orders_payment_method_lower CHECK (payment_method ~ '^[a-z][a-z0-9_]*$'),
    CONSTRAINT orders_plan_snapshot_object CHECK (jsonb_typeof(plan_snapshot) = 'object'),
    CONSTRAINT orders_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    -- Legal (status, payment_status) pairs:
    --   PENDING    -> UNPAID | PROCESSING | FAILED
    --   COMPLETED  -> PAID | PARTIALLY_REFUNDED
    --   CANCELLED  -> anything (money may arrive after a cancel and then be refunded)
    --   REFUNDED   -> REFUNDED
    CONSTRAINT orders_status_pair CHECK (
        (status = 1 AND payment_status IN (1, 2, 4))
        OR (status = 2 AND payment_status IN (3, 5))
        OR (status = 3)
        OR (status = 4 AND payment_status = 6)
    ),
    -- Money that was paid carries a paid_at; refunded money matches the payment status.
    CONSTRAINT orders_paid_at_when_paid CHECK (payment_status NOT IN (3, 5, 6) OR paid_at IS NOT NULL),
    CONSTRAINT orders_refund_matches_status CHECK (
        (payment_status IN (5, 6)) = (refunded_cents > 0)
        AND (payment_status <> 6 OR refunded_cents = total_cents)
        AND (payment_status <> 5 OR refunded_cents < total_cents)
    ),
    CONSTRAINT orders_cancelled_at_when_cancelled CHECK (status <> 3 OR cancelled_at IS NOT NULL)
);
CREATE INDEX orders_user_id_idx ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_created_at_idx ON orders (created_at, id);
CREATE INDEX orders_updated_at_idx ON orders (updated_at, id);
CREATE INDEX orders_paid_at_idx ON orders (paid_at, id);
CREATE INDEX orders_total_cents_idx ON orders (total_cents, id);
CREATE INDEX orders_status_idx ON orders (status, created_at, id);
CREATE INDEX orders_payment_status_idx ON orders (payment_status, created_at, id);
CREATE INDEX orders_payment_method_idx ON orders (payment_method, created_at, id);
CREATE INDEX orders_number_prefix_idx ON orders (lower(number) text_pattern_ops);

CREATE TABLE order_items (
    id               BIGSERIAL PRIMARY KEY,
    order_id         BIGINT      NOT NULL REFERENCES orders (id),
    name             TEXT        NOT NULL,
    sku              TEXT,
    quantity         INTEGER     NOT NULL,
    unit_price_cents BIGINT      NOT NULL,
    total_cents      BIGINT      NOT NULL,
    metadata         JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT order_items_name_present CHECK (length(btrim(name)) > 0),
    CONSTRAINT order_items_quantity_positive CHECK (quantity > 0),
    CONSTRAINT order_items_unit_price_positive CHECK (unit_price_cents > 0),
    CONSTRAINT order_items_total_is_product CHECK (total_cents = quantity::bigint * unit_price_cents),
    CONSTRAINT order_items_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);
CREATE INDEX order_items_order_id_idx ON order_items (order_id, id);

CREATE TABLE payments (
    id                BIGSERIAL PRIMARY KEY,
    order_id          BIGINT      NOT NULL REFERENCES orders (id),
    status            SMALLINT    NOT NULL DEFAULT 1,
    provider          TEXT        NOT NULL,
    payment_method    TEXT        NOT NULL,
    amount_cents      BIGINT      NOT NULL,
    currency          CHAR(3)     NOT NULL,
    reference         TEXT,
    payment_intent_id TEXT,
    failure_code      TEXT,
    failure_message   TEXT,
    note              TEXT,
    paid_at           TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payments_status_code CHECK (status BETWEEN 1 AND 4),
    CONSTRAINT payments_amount_positive CHECK (amount_cents > 0),
    CONSTRAINT payments_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT payments_provider_known CHECK (provider IN ('manual', 'stripe', 'balance')),
    CONSTRAINT payments_paid_at_when_succeeded CHECK (status <> 2 OR paid_at IS NOT NULL)
);
CREATE INDEX payments_order_id_idx ON payments (order_id, id);
CREATE INDEX payments_payment_intent_id_idx ON payments (payment_intent_id) WHERE payment_intent_id IS NOT NULL;
-- An order is paid at most once: a second succeeded attempt is a double charge.
CREATE UNIQUE INDEX payments_one_success_per_order ON payments (order_id) WHERE status = 2;

CREATE TABLE refunds (
    id                 BIGSERIAL PRIMARY KEY,
    order_id           BIGINT      NOT NULL REFERENCES orders (id),
    payment_id         BIGINT      REFERENCES payments (id),
    status             SMALLINT    NOT NULL DEFAULT 1,
    amount_cents       BIGINT      NOT NULL,
    currency           CHAR(3)     NOT NULL,
    reason             TEXT,
    metadata           JSONB       NOT NULL DEFAULT '{}'::jsonb,
    credit_balance     BOOLEAN     NOT NULL DEFAULT false,
    provider_refund_id TEXT,
    refunded_at        TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT refunds_status_code CHECK (status BETWEEN 1 AND 3),
    CONSTRAINT refunds_amount_positive CHECK (amount_cents > 0),
    CONSTRAINT refunds_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT refunds_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT refunds_refunded_at_when_succeeded CHECK (status <> 2 OR refunded_at IS NOT NULL)
);
CREATE INDEX refunds_order_id_idx ON refunds (order_id, id);
CREATE INDEX refunds_payment_id_idx ON refunds (payment_id);

CREATE TABLE balance_ledger (
    id                  BIGSERIAL PRIMARY KEY,
    user_id             BIGINT      NOT NULL REFERENCES users (id),
    amount_cents        BIGINT      NOT NULL,
    balance_after_cents BIGINT      NOT NULL,
    kind                TEXT        NOT NULL,
    order_id            BIGINT      REFERENCES orders (id),
    refund_id           BIGINT      REFERENCES refunds (id),
    note                TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT balance_ledger_amount_non_zero CHECK (amount_cents <> 0),
    CONSTRAINT balance_ledger_balance_after_non_negative CHECK (balance_after_cents >= 0),
    CONSTRAINT balance_ledger_kind_known CHECK (kind IN ('opening_balance', 'order_charge', 'refund_credit', 'adjustment'))
);
CREATE INDEX balance_ledger_user_id_idx ON balance_ledger (user_id, id);
CREATE INDEX balance_ledger_order_id_idx ON balance_ledger (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX balance_ledger_refund_id_idx ON balance_ledger (refund_id) WHERE refund_id IS NOT NULL;

CREATE TABLE order_events (
    id         BIGSERIAL PRIMARY KEY,
    order_id   BIGINT      NOT NULL REFERENCES orders (id),
    kind       TEXT        NOT NULL,
    actor      TEXT        NOT NULL,
    data       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT order_events_kind_present CHECK (kind ~ '^[a-z][a-z_]*$')
);
CREATE INDEX order_events_order_id_idx ON order_events (order_id, id);

CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT        NOT NULL,
    role         TEXT        NOT NULL,
    user_id      BIGINT      REFERENCES users (id),
    key_prefix   TEXT        NOT NULL,
    key_hash     TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_role_known CHECK (role IN ('admin', 'support', 'customer')),
    CONSTRAINT api_keys_customer_has_user CHECK ((role = 'customer') = (user_id IS NOT NULL))
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE idempotency_keys (
    id              BIGSERIAL PRIMARY KEY,
    scope           TEXT        NOT NULL,
    key             TEXT        NOT NULL,
    request_hash    TEXT        NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at    TIMESTAMPTZ,
    CONSTRAINT idempotency_keys_scope_key UNIQUE (scope, key),
    CONSTRAINT idempotency_keys_completed CHECK ((completed_at IS NULL) = (response_status IS NULL))
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- The ledger and the event trail are append-only: history is never rewritten.
CREATE FUNCTION forbid_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER balance_ledger_append_only BEFORE UPDATE OR DELETE ON balance_ledger
    FOR EACH ROW EXECUTE FUNCTION forbid_history_rewrite();
CREATE TRIGGER order_events_append_only BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION forbid_history_rewrite();
