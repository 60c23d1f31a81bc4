DROP INDEX refunds_one_release_per_payment;
ALTER TABLE refunds DROP CONSTRAINT refunds_released_moved_nothing;
ALTER TABLE refunds DROP COLUMN released;
DROP INDEX payments_open_next_check_idx;
CREATE INDEX payments_pending_next_check_idx ON payments (next_check_at, id) WHERE status = 1;
ALTER TABLE payments DROP CONSTRAINT payments_authorized_has_intent;
ALTER TABLE payments DROP CONSTRAINT payments_status_code;
ALTER TABLE payments ADD CONSTRAINT payments_status_code CHECK (status BETWEEN 1 AND 4);
