-- ratchet:no-transaction
SET lock_timeout = '1s';
ALTER TABLE subscriptions VALIDATE CONSTRAINT subscriptions_renews_at_nn;
ALTER TABLE subscriptions ALTER COLUMN renews_at SET NOT NULL;
