DROP TRIGGER order_events_notify ON order_events;
DROP FUNCTION notify_order_events();
DROP INDEX order_events_xid_id;
ALTER TABLE order_events DROP COLUMN xid;
