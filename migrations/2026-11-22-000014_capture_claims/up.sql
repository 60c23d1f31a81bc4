-- A capture under way. `capturePayment` records its claim (and amount) under the order's
-- lock before it calls the provider; while the attempt is still AUTHORIZED, the claim
-- keeps cancelOrder, markOrderPaid, cancelPayment and a capture of another amount from
-- racing it (they are CONFLICT), so the provider never takes money for an attempt this
-- service already let go of. The claim ends with the attempt's outcome (it is then no
-- longer AUTHORIZED); a capture whose answer never came is resolved by the janitor.
-- `holders` counts the requests sending that capture (a repeat joins the claim): one that
-- sent nothing, or was refused, lets go of its share, and the claim holds while any
-- request still may be taking the money. A claim with no holders is no claim; the janitor
-- clears one left behind by a stopped process once the provider shows the reservation
-- still open well after it was made.
CREATE TABLE payment_captures (
    payment_id   BIGINT      PRIMARY KEY REFERENCES payments (id),
    amount_cents BIGINT      NOT NULL,
    holders      INTEGER     NOT NULL DEFAULT 1,
    requested_by TEXT        NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payment_captures_amount_positive CHECK (amount_cents > 0),
    CONSTRAINT payment_captures_holders_not_negative CHECK (holders >= 0)
);
