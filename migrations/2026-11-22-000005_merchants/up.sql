-- Merchants (seed 001): merchants own stores; a store's orders are payment requests the
-- merchant created; merchant keys see their own stores' orders only; every change of a
-- store order's status is delivered to the merchant by a signed webhook through a
-- transactional outbox.

CREATE TABLE merchants (
    id           UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT merchants_display_name_present CHECK (length(btrim(display_name)) BETWEEN 1 AND 200)
);

CREATE TABLE stores (
    id          UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id UUID        NOT NULL REFERENCES merchants (id),
    store_name  TEXT        NOT NULL,
    office_name TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT stores_store_name_present CHECK (length(btrim(store_name)) BETWEEN 1 AND 200),
    CONSTRAINT stores_office_name_present CHECK (length(btrim(office_name)) BETWEEN 1 AND 200),
    -- Lets orders reference (store, merchant) together, so an order's merchant is its store's.
    CONSTRAINT stores_id_merchant_key UNIQUE (id, merchant_id)
);
CREATE INDEX stores_merchant_id_idx ON stores (merchant_id, created_at, id);

-- Where a merchant's webhooks go when an order has no callback_url of its own.
CREATE TABLE merchant_endpoints (
    id              BIGSERIAL   PRIMARY KEY,
    merchant_id     UUID        NOT NULL REFERENCES merchants (id),
    url             TEXT        NOT NULL,
    enabled         BOOLEAN     NOT NULL DEFAULT true,
    disabled_reason TEXT,
    disabled_at     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT merchant_endpoints_url_length CHECK (length(url) BETWEEN 1 AND 2000),
    CONSTRAINT merchant_endpoints_disabled CHECK (enabled = (disabled_at IS NULL))
);
CREATE INDEX merchant_endpoints_merchant_id_idx ON merchant_endpoints (merchant_id, id);

-- Signing secrets (Standard Webhooks `whsec_…`). While a rotation is under way two are
-- active: deliveries carry a signature by each, so the merchant can switch without a gap.
CREATE TABLE merchant_secrets (
    id          BIGSERIAL   PRIMARY KEY,
    merchant_id UUID        NOT NULL REFERENCES merchants (id),
    secret      TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ,
    CONSTRAINT merchant_secrets_shape CHECK (secret ~ '^whsec_[A-Za-z0-9+/]+={0,2}$')
);
CREATE INDEX merchant_secrets_merchant_id_idx ON merchant_secrets (merchant_id, id);

ALTER TABLE api_keys
    ADD COLUMN merchant_id UUID REFERENCES merchants (id),
    DROP CONSTRAINT api_keys_role_known,
    ADD CONSTRAINT api_keys_role_known CHECK (role IN ('admin', 'support', 'customer', 'merchant')),
    ADD CONSTRAINT api_keys_merchant_has_merchant CHECK ((role = 'merchant') = (merchant_id IS NOT NULL));
CREATE INDEX api_keys_merchant_id_idx ON api_keys (merchant_id) WHERE merchant_id IS NOT NULL;

-- Orders: a public UUID for every order; a store (and its merchant) for payment requests.
-- A payment request may have no buyer yet: user_id is required only for orders without a
-- store. A new status DRAFT (5) is an order saved but not yet open for payment (the seed's
-- TEMPORARY_SAVE); it has no money. `event_seq` numbers the order's events one by one.
ALTER TABLE orders
    ADD COLUMN public_id   UUID   NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN store_id    UUID,
    ADD COLUMN merchant_id UUID,
    ADD COLUMN event_seq   BIGINT NOT NULL DEFAULT 0,
    ALTER COLUMN user_id DROP NOT NULL,
    ADD CONSTRAINT orders_public_id_key UNIQUE (public_id),
    ADD CONSTRAINT orders_store_fk FOREIGN KEY (store_id, merchant_id) REFERENCES stores (id, merchant_id),
    ADD CONSTRAINT orders_store_has_merchant CHECK ((store_id IS NULL) = (merchant_id IS NULL)),
    ADD CONSTRAINT orders_owner_present CHECK (user_id IS NOT NULL OR store_id IS NOT NULL),
    ADD CONSTRAINT orders_event_seq_non_negative CHECK (event_seq >= 0),
    DROP CONSTRAINT orders_status_code,
    ADD CONSTRAINT orders_status_code CHECK (status BETWEEN 1 AND 5),
    DROP CONSTRAINT orders_status_pair,
    ADD CONSTRAINT orders_status_pair CHECK (
        (status = 1 AND payment_status IN (1, 2, 4))
        OR (status = 2 AND payment_status IN (3, 5))
        OR (status = 3)
        OR (status = 4 AND payment_status = 6)
        OR (status = 5 AND payment_status = 1)
    );
CREATE INDEX orders_store_id_idx ON orders (store_id, created_at DESC, id DESC) WHERE store_id IS NOT NULL;
CREATE INDEX orders_store_merchant_idx ON orders (store_id, merchant_id) WHERE store_id IS NOT NULL;
CREATE INDEX orders_merchant_id_idx ON orders (merchant_id, created_at DESC, id DESC) WHERE merchant_id IS NOT NULL;

-- What a merchant said about a payment request (seed 001), one row per store order.
CREATE TABLE payment_requests (
    order_id           BIGINT      PRIMARY KEY REFERENCES orders (id),
    customer_ref       TEXT,
    customer_order_ref TEXT,
    description        TEXT,
    success_url        TEXT,
    cancel_url         TEXT,
    callback_url       TEXT,
    consumer_email     TEXT,
    consumer_phone     TEXT,
    payment_type       TEXT        NOT NULL DEFAULT 'ONE_TIME',
    installment_term   SMALLINT,
    payment_date       TIMESTAMPTZ,
    -- The seed status last announced to the merchant; a change enqueues a delivery.
    announced_status   TEXT,
    created_by         TEXT        NOT NULL,
    updated_by         TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ,
    CONSTRAINT payment_requests_payment_type_known CHECK (payment_type IN ('ONE_TIME', 'INSTALLMENT', 'REVOLVING')),
    CONSTRAINT payment_requests_installment_term CHECK (
        (payment_type = 'INSTALLMENT') = (installment_term IS NOT NULL)
        AND (installment_term IS NULL OR installment_term IN (3, 5, 6, 10, 12, 15, 18, 20, 24))
    ),
    CONSTRAINT payment_requests_text_lengths CHECK (
        coalesce(length(customer_ref), 0) <= 200 AND coalesce(length(customer_order_ref), 0) <= 200
        AND coalesce(length(description), 0) <= 1000
        AND coalesce(length(success_url), 0) <= 2000 AND coalesce(length(cancel_url), 0) <= 2000
        AND coalesce(length(callback_url), 0) <= 2000
        AND coalesce(length(consumer_email), 0) <= 320 AND coalesce(length(consumer_phone), 0) <= 40
    )
);

-- A payment attempt may wait for the customer to authenticate (3-D Secure or a one-time
-- password) until a deadline; past it the attempt fails with `authentication_timeout`.
-- The kind stays on a failed attempt, so the timeout can say which check ran out.
ALTER TABLE payments
    ADD COLUMN authentication            TEXT,
    ADD COLUMN authentication_expires_at TIMESTAMPTZ,
    ADD CONSTRAINT payments_authentication_known CHECK (authentication IS NULL OR authentication IN ('THREE_DS', 'OTP')),
    ADD CONSTRAINT payments_authentication_deadline CHECK ((authentication IS NULL) = (authentication_expires_at IS NULL));
CREATE INDEX payments_authentication_due_idx ON payments (authentication_expires_at) WHERE status = 1 AND authentication IS NOT NULL;

-- Events are numbered per order (1, 2, 3, …) so readers can tell what they missed.
ALTER TABLE order_events ADD COLUMN seq BIGINT;
ALTER TABLE order_events DISABLE TRIGGER order_events_append_only;
UPDATE order_events e SET seq = n.seq
  FROM (SELECT id, row_number() OVER (PARTITION BY order_id ORDER BY id) AS seq FROM order_events) n
 WHERE n.id = e.id;
ALTER TABLE order_events ENABLE TRIGGER order_events_append_only;
UPDATE orders o SET event_seq = coalesce((SELECT max(seq) FROM order_events e WHERE e.order_id = o.id), 0);
ALTER TABLE order_events ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX order_events_order_seq_key ON order_events (order_id, seq);

-- The outbox: one row per webhook to send, written in the transaction of the change it
-- announces. `webhook_id` is the Standard Webhooks message id, the same on every retry.
-- state: 1 pending, 2 delivered, 3 given up. A pending row is leased to a worker by
-- moving `next_attempt_at` past the attempt's timeout.
CREATE TABLE webhook_deliveries (
    id              BIGSERIAL   PRIMARY KEY,
    webhook_id      TEXT        NOT NULL,
    merchant_id     UUID        NOT NULL REFERENCES merchants (id),
    order_id        BIGINT      NOT NULL REFERENCES orders (id),
    order_seq       BIGINT      NOT NULL,
    event_type      TEXT        NOT NULL,
    endpoint_id     BIGINT      REFERENCES merchant_endpoints (id),
    url             TEXT        NOT NULL,
    body            TEXT        NOT NULL,
    state           SMALLINT    NOT NULL DEFAULT 1,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at    TIMESTAMPTZ,
    given_up_at     TIMESTAMPTZ,
    CONSTRAINT webhook_deliveries_webhook_id_key UNIQUE (webhook_id),
    CONSTRAINT webhook_deliveries_state_code CHECK (state BETWEEN 1 AND 3),
    CONSTRAINT webhook_deliveries_attempts_non_negative CHECK (attempts >= 0),
    CONSTRAINT webhook_deliveries_delivered CHECK ((state = 2) = (delivered_at IS NOT NULL)),
    CONSTRAINT webhook_deliveries_given_up CHECK ((state = 3) = (given_up_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, id) WHERE state = 1;
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (order_id, url, id);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id) WHERE endpoint_id IS NOT NULL;
CREATE INDEX webhook_deliveries_merchant_idx ON webhook_deliveries (merchant_id, created_at, id);

-- Every attempt, successes included: what a merchant reads to debug its endpoint.
CREATE TABLE webhook_attempts (
    id               BIGSERIAL   PRIMARY KEY,
    delivery_id      BIGINT      NOT NULL REFERENCES webhook_deliveries (id),
    attempt          INTEGER     NOT NULL,
    url              TEXT        NOT NULL,
    response_status  INTEGER,
    response_excerpt TEXT,
    error            TEXT,
    latency_ms       INTEGER     NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT webhook_attempts_excerpt_bounded CHECK (coalesce(length(response_excerpt), 0) <= 1024),
    CONSTRAINT webhook_attempts_attempt_positive CHECK (attempt > 0)
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
CREATE INDEX webhook_attempts_created_at_idx ON webhook_attempts (created_at, id);
