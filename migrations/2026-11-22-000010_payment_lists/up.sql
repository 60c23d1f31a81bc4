-- Payments listed on their own (issue 13): an index for every sort the list offers, and
-- for each equality filter with the default sort, all ending in id (the tie-breaker and
-- the keyset cursor's second key).
CREATE INDEX payments_created_at_idx ON payments (created_at, id);
CREATE INDEX payments_amount_idx ON payments (amount_cents, id);
CREATE INDEX payments_paid_at_idx ON payments (paid_at, id);
-- PAID_AT lists undated payments last in both directions: descending needs its own order.
CREATE INDEX payments_paid_at_desc_idx ON payments (paid_at DESC NULLS LAST, id DESC);
CREATE INDEX payments_status_idx ON payments (status, created_at, id);
CREATE INDEX payments_method_idx ON payments (payment_method, created_at, id);
CREATE INDEX payments_provider_idx ON payments (provider, created_at, id);
