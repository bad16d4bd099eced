-- ratchet:no-transaction
SET lock_timeout = '1s';
SET statement_timeout = '10min';
ALTER TABLE users ADD COLUMN plan text;
ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'free';
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_plan_idx ON users (plan);
ALTER TABLE users ADD CONSTRAINT users_plan_nn CHECK (plan IS NOT NULL) NOT VALID;
