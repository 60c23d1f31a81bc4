-- Seed 002's payment object (issue 13): a human-readable id, what was reserved, captured
-- and settled, the client's description, billing address, metadata, `active` flag and
-- payment date, and the card's brand, last four digits and expiry (never its number).

-- Six characters from an alphabet without look-alikes (no 0/O, 1/I/L): 31^6 = 887,503,681
-- ids. The id is a permutation of the payment's database id (multiplication by a number
-- prime to 31^6), so it is unique without a retry loop for the first 887,503,681 payments;
-- beyond that the unique index refuses the insert (and the id must grow a seventh character).
CREATE FUNCTION payment_human_id(id bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    alphabet CONSTANT text := '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
    n bigint := ((id % 887503681) * 387420489 + 104729) % 887503681;
    out text := '';
BEGIN
    FOR i IN 1..6 LOOP
        out := substr(alphabet, (n % 31)::int + 1, 1) || out;
        n := n / 31;
    END LOOP;
    RETURN out;
END
$$;

ALTER TABLE payments
    ADD COLUMN human_id text GENERATED ALWAYS AS (payment_human_id(id)) STORED,
    ADD COLUMN description text,
    ADD COLUMN billing_address jsonb,
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN active boolean NOT NULL DEFAULT true,
    ADD COLUMN payment_date timestamptz,
    ADD COLUMN card_brand text,
    ADD COLUMN card_last4 text,
    ADD COLUMN card_exp_month smallint,
    ADD COLUMN card_exp_year smallint,
    ADD COLUMN settled_at timestamptz,
    ADD COLUMN settled_cents bigint,
    ADD CONSTRAINT payments_description_length CHECK (char_length(description) <= 500),
    ADD CONSTRAINT payments_billing_address_object CHECK (jsonb_typeof(billing_address) = 'object'),
    ADD CONSTRAINT payments_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    ADD CONSTRAINT payments_card_brand_length CHECK (char_length(card_brand) <= 20),
    -- Only the last four digits of a card are ever kept.
    ADD CONSTRAINT payments_card_last4_digits CHECK (card_last4 ~ '^[0-9]{4}$'),
    ADD CONSTRAINT payments_card_exp_month CHECK (card_exp_month BETWEEN 1 AND 12),
    ADD CONSTRAINT payments_card_exp_year CHECK (card_exp_year BETWEEN 2000 AND 2200),
    ADD CONSTRAINT payments_settled_together CHECK ((settled_at IS NULL) = (settled_cents IS NULL)),
    -- Settled money is money that arrived, at most what the payment took.
    ADD CONSTRAINT payments_settled_amount CHECK (settled_cents BETWEEN 0 AND amount_cents),
    ADD CONSTRAINT payments_settled_when_paid CHECK (settled_at IS NULL OR paid_at IS NOT NULL),
    ADD CONSTRAINT payments_human_id_format CHECK (human_id ~ '^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$');

CREATE UNIQUE INDEX payments_human_id_key ON payments (human_id);
-- SETTLED_AT sorts, unsettled payments last in both directions, and the settled range filter.
CREATE INDEX payments_settled_at_idx ON payments (settled_at, id);
CREATE INDEX payments_settled_at_desc_idx ON payments (settled_at DESC NULLS LAST, id DESC);
