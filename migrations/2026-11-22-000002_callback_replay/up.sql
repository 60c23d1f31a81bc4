-- Signed provider callbacks accepted so far: a captured callback cannot be replayed inside
-- its five-minute window. Rows older than the window are purged.
CREATE TABLE accepted_callback_signatures (
    signature BYTEA PRIMARY KEY CHECK (octet_length(signature) = 32),
    accepted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX accepted_callback_signatures_accepted_at ON accepted_callback_signatures (accepted_at);
