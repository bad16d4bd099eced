-- ratchet:no-transaction
SET lock_timeout = '1s';
SET statement_timeout = '15min';
ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS renews_at timestamptz;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_renews_at_nn CHECK (renews_at IS NOT NULL) NOT VALID;
CREATE INDEX CONCURRENTLY IF NOT EXISTS subscriptions_renews_at_idx ON subscriptions (renews_at);
