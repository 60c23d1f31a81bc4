-- Each claim of a delivery takes the next number; a worker records its attempt's outcome
-- only while the row still carries its claim. Unlike `attempts` (the retry schedule's
-- count, reset by a redelivery) it never goes back, so an old claim can never match again.
ALTER TABLE webhook_deliveries
    ADD COLUMN claims BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT webhook_deliveries_claims_non_negative CHECK (claims >= 0);
UPDATE webhook_deliveries SET claims = attempts;
