-- A "cleanup" migration as ORMs write them: every statement breaks the running
-- application version or loses data (rules B1, B5, B10, B13, B15, C5, D3).
SET lock_timeout = '2s';
ALTER TABLE users DROP COLUMN legacy_flag;
ALTER TABLE users RENAME COLUMN email TO email_address;
ALTER TABLE users ALTER COLUMN status DROP DEFAULT;
ALTER TABLE users ADD COLUMN preferences json;
ALTER TABLE users ADD COLUMN last_seen_at timestamp;
UPDATE users SET status = 'active' WHERE status IS NULL;
TRUNCATE sessions CASCADE;
