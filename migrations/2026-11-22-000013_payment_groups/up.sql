-- One payment for several orders (payOrders).
--
-- A group is one provider charge (or one balance debit) for the sum of several orders of
-- one user in one currency. Each order keeps its own payment attempt for its share (its
-- total), so every per-order rule holds unchanged: one SUCCEEDED payment of the order's
-- total, refunds capped at it (and sent against the shared charge). The members of a group
-- move together: an outcome of any of them is applied to all in one transaction.
CREATE TABLE payment_groups (
    id                BIGSERIAL PRIMARY KEY,
    user_id           BIGINT      NOT NULL REFERENCES users (id),
    provider          TEXT        NOT NULL,
    amount_cents      BIGINT      NOT NULL,
    currency          CHAR(3)     NOT NULL,
    payment_intent_id TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payment_groups_amount_positive CHECK (amount_cents > 0),
    CONSTRAINT payment_groups_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT payment_groups_provider_known CHECK (provider IN ('manual', 'stripe', 'balance'))
);
CREATE INDEX payment_groups_user_id_idx ON payment_groups (user_id);
CREATE INDEX payment_groups_payment_intent_id_idx ON payment_groups (payment_intent_id) WHERE payment_intent_id IS NOT NULL;

CREATE TABLE payment_group_members (
    payment_id BIGINT PRIMARY KEY REFERENCES payments (id),
    group_id   BIGINT NOT NULL REFERENCES payment_groups (id),
    order_id   BIGINT NOT NULL REFERENCES orders (id),
    CONSTRAINT payment_group_members_one_per_order UNIQUE (group_id, order_id)
);
CREATE INDEX payment_group_members_order_id_idx ON payment_group_members (order_id);

-- At commit: a group's members are payments of their own orders, in the group's
-- currency, with its provider and intent, and their amounts sum to the group's.
CREATE FUNCTION payment_group_is_whole() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gid BIGINT;
    bad TEXT;
BEGIN
    IF TG_TABLE_NAME = 'payment_groups' THEN
        gid := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        gid := OLD.group_id;
    ELSE
        gid := NEW.group_id;
    END IF;
    SELECT CASE
             WHEN count(m.payment_id) < 1 THEN 'no members'
             WHEN coalesce(sum(p.amount_cents), 0) <> g.amount_cents THEN 'shares do not sum to the amount'
             WHEN bool_or(p.order_id <> m.order_id) THEN 'a member pays another order'
             WHEN bool_or(p.currency <> g.currency OR p.provider <> g.provider
                          OR p.payment_intent_id IS DISTINCT FROM g.payment_intent_id) THEN 'a member differs from its group'
           END
      INTO bad
      FROM payment_groups g
      LEFT JOIN payment_group_members m ON m.group_id = g.id
      LEFT JOIN payments p ON p.id = m.payment_id
     WHERE g.id = gid
     GROUP BY g.id, g.amount_cents;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'payment group % is not whole: %', gid, bad USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER payment_groups_whole AFTER INSERT OR UPDATE ON payment_groups
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION payment_group_is_whole();
CREATE CONSTRAINT TRIGGER payment_group_members_whole AFTER INSERT OR UPDATE OR DELETE ON payment_group_members
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION payment_group_is_whole();
