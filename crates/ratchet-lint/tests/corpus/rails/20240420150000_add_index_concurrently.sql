-- disable_ddl_transaction! + algorithm: :concurrently
-- ratchet:no-transaction
SET lock_timeout = '5s';
CREATE INDEX CONCURRENTLY index_users_on_created_at ON users USING btree (created_at);
