SET lock_timeout = '2s';
ALTER TABLE orders ADD COLUMN status text NOT NULL;
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);
