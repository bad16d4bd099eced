DROP INDEX subscriptions_renews_at_idx;
ALTER TABLE subscriptions DROP COLUMN renews_at;
