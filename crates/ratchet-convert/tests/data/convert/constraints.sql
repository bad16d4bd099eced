-- The NOT VALID + VALIDATE pattern is what create_constraint does by itself.
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0 AND total < 1000000) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;

ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE NOT VALID;
ALTER TABLE orders ADD CONSTRAINT orders_ref_key UNIQUE (tenant_id, reference) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE line_items ADD PRIMARY KEY (order_id, position);
ALTER TABLE orders ADD CONSTRAINT orders_uniq UNIQUE USING INDEX orders_uniq_idx;
ALTER TABLE legacy VALIDATE CONSTRAINT legacy_fk;

-- Known from above: the constrained columns become identity up/down.
ALTER TABLE orders DROP CONSTRAINT orders_total_positive;
-- Not known: drop_constraint without columns.
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_legacy_check;
ALTER TABLE orders DROP CONSTRAINT orders_other CASCADE;
