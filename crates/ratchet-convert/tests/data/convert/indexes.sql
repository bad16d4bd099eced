CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_idx ON orders (user_id);
CREATE UNIQUE INDEX ON orders (tenant_id, external_id DESC NULLS LAST) WHERE deleted_at IS NULL;
CREATE INDEX orders_tags_idx ON orders USING gin (tags jsonb_path_ops) WITH (fastupdate = off);
CREATE INDEX orders_lower_email_idx ON orders (lower(email));
CREATE INDEX orders_covering_idx ON orders (user_id) INCLUDE (total);
DROP INDEX CONCURRENTLY IF EXISTS orders_old_idx;
DROP INDEX orders_a_idx, orders_b_idx;
