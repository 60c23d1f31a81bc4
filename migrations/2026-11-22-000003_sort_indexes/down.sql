DROP INDEX orders_paid_at_desc_idx;
DROP INDEX orders_status_id_idx;
