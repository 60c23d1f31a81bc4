-- Refund requests (seed 004): a customer or a seller asks for money back, a seller or an
-- admin decides, and an approved request is issued once through the refund path.
-- status: 1 PENDING (asked), 2 PROCESSING (approved, being refunded), 3 ISSUED,
-- 4 DENIED, 5 CANCELLED.
CREATE TABLE refund_requests (
    id              BIGSERIAL   PRIMARY KEY,
    order_id        BIGINT      NOT NULL REFERENCES orders (id),
    amount_cents    BIGINT      NOT NULL,
    currency        CHAR(3)     NOT NULL,
    status          SMALLINT    NOT NULL DEFAULT 1,
    requester       TEXT        NOT NULL,
    requester_role  TEXT        NOT NULL,
    request_reason  TEXT        NOT NULL,
    response_reason TEXT,
    -- The request key the issuing refund carries (`refund-request/<id>`), linking the two.
    refund_key      TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at    TIMESTAMPTZ,
    issued_at       TIMESTAMPTZ,
    CONSTRAINT refund_requests_status_code CHECK (status BETWEEN 1 AND 5),
    CONSTRAINT refund_requests_amount_positive CHECK (amount_cents > 0),
    CONSTRAINT refund_requests_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT refund_requests_role_known CHECK (requester_role IN ('admin', 'customer', 'merchant')),
    CONSTRAINT refund_requests_reason_present CHECK (length(btrim(request_reason)) BETWEEN 1 AND 1000),
    CONSTRAINT refund_requests_response_length CHECK (coalesce(length(response_reason), 0) <= 1000),
    CONSTRAINT refund_requests_confirmed CHECK ((status IN (2, 3)) = (confirmed_at IS NOT NULL)),
    CONSTRAINT refund_requests_issued CHECK ((status = 3) = (issued_at IS NOT NULL)),
    CONSTRAINT refund_requests_denied_has_reason CHECK (status <> 4 OR response_reason IS NOT NULL),
    CONSTRAINT refund_requests_refund_key_key UNIQUE (refund_key)
);
-- At most one open (PENDING or PROCESSING) request per order.
CREATE UNIQUE INDEX refund_requests_one_open ON refund_requests (order_id) WHERE status IN (1, 2);
CREATE INDEX refund_requests_order_idx ON refund_requests (order_id, id);
CREATE INDEX refund_requests_status_idx ON refund_requests (status, created_at, id);
CREATE INDEX refund_requests_created_idx ON refund_requests (created_at, id);

-- Every transition, append-only.
CREATE TABLE refund_request_transitions (
    id          BIGSERIAL   PRIMARY KEY,
    request_id  BIGINT      NOT NULL REFERENCES refund_requests (id),
    from_status SMALLINT,
    to_status   SMALLINT    NOT NULL,
    actor       TEXT        NOT NULL,
    role        TEXT        NOT NULL,
    reason      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refund_request_transitions_request_idx ON refund_request_transitions (request_id, id);
CREATE TRIGGER refund_request_transitions_append_only BEFORE UPDATE OR DELETE ON refund_request_transitions
    FOR EACH ROW EXECUTE FUNCTION forbid_history_rewrite();
