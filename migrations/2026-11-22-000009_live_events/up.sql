-- Live order updates (GraphQL subscriptions) read the event trail in commit-safe order.
--
-- Each event records the transaction that wrote it. A reader that only takes events whose
-- transaction is older than every transaction still running (pg_snapshot_xmin) and walks
-- them by (xid, id) sees a fixed, gap-free order: nothing can later commit behind its
-- position. Ids alone cannot do that: a sequence hands out ids before commit, so a lower
-- id can commit after a higher one was read.
ALTER TABLE order_events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX order_events_xid_id ON order_events (xid, id);

-- "Look": one notification per statement that wrote events, sent on commit. It carries
-- nothing; readers read the trail, so a missed notification loses nothing.
CREATE FUNCTION notify_order_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('billing_order_events', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER order_events_notify AFTER INSERT ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_order_events();
