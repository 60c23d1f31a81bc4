DROP TRIGGER orders_total_fixed ON orders;
DROP FUNCTION orders_total_fixed_after_attempts();
