-- Sorts the list offers that no index served: `sort=status` orders by (status, id), and
-- `sort=paid_at&direction=desc` by (paid_at DESC NULLS LAST, id DESC), which a backward
-- scan of (paid_at, id) cannot give (it puts NULLs first).
CREATE INDEX orders_status_id_idx ON orders (status, id);
CREATE INDEX orders_paid_at_desc_idx ON orders (paid_at DESC NULLS LAST, id DESC);
