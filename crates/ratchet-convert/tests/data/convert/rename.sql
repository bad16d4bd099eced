-- Renames are identity mappings: the versioned views show the old name to the old
-- application and the new name to the new one.
ALTER TABLE users RENAME COLUMN email TO email_address;
ALTER TABLE IF EXISTS users RENAME TO customers;
ALTER TABLE customers RENAME CONSTRAINT users_age_check TO customers_age_check;
ALTER VIEW active_users RENAME TO active_customers;
