DROP TABLE payment_group_members;
DROP TABLE payment_groups;
DROP FUNCTION payment_group_is_whole();
