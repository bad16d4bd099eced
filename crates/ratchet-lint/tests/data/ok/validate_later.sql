SET lock_timeout = '1s';
SET statement_timeout = '10min';
ALTER TABLE users ADD CONSTRAINT users_plan_nn CHECK (plan IS NOT NULL) NOT VALID;
-- separate transaction: reads and writes continue during the scan
ALTER TABLE users VALIDATE CONSTRAINT users_plan_nn;
ALTER TABLE users ALTER COLUMN plan SET NOT NULL, DROP CONSTRAINT IF EXISTS users_plan_nn;
