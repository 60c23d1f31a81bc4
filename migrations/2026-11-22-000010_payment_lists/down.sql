DROP INDEX payments_created_at_idx;
DROP INDEX payments_amount_idx;
DROP INDEX payments_paid_at_idx;
DROP INDEX payments_status_idx;
DROP INDEX payments_method_idx;
DROP INDEX payments_provider_idx;
DROP INDEX payments_paid_at_desc_idx;
