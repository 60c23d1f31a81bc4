ALTER TABLE idempotency_keys DROP COLUMN locked_until;
DROP INDEX payments_pending_next_check_idx;
ALTER TABLE payments DROP COLUMN checks, DROP COLUMN next_check_at, DROP COLUMN last_error;
DROP INDEX refunds_pending_next_check_idx;
DROP INDEX refunds_request_key_live;
DROP INDEX refunds_one_live_due_back;
ALTER TABLE refunds DROP COLUMN due_back, DROP COLUMN request_key, DROP COLUMN checks, DROP COLUMN next_check_at, DROP COLUMN last_error;
