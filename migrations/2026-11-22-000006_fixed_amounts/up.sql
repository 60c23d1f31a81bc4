-- An order's amount is fixed once a payment was attempted for it: a provider may still take
-- the attempt's amount, so a later change would let an order complete for money never
-- charged. The code refuses such a change under the order's row lock; this refuses it too.
CREATE FUNCTION orders_total_fixed_after_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.total_cents <> OLD.total_cents AND EXISTS (SELECT 1 FROM payments WHERE order_id = NEW.id) THEN
        RAISE EXCEPTION 'order % already had a payment attempt: its total is fixed', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER orders_total_fixed BEFORE UPDATE OF total_cents ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_total_fixed_after_attempts();
