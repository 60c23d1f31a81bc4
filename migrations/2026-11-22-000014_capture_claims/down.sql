DROP TABLE payment_captures;
