ALTER TABLE webhook_deliveries DROP COLUMN claims;
