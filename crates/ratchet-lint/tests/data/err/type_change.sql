SET lock_timeout = '1s';
ALTER TABLE events ALTER COLUMN id TYPE bigint;
