-- Adds a token with a volatile default: rewrites the table.
ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();
