-- fixture: assume_in_transaction
SET lock_timeout = '1s';
ALTER TABLE users ADD COLUMN email_verified boolean;
CREATE INDEX CONCURRENTLY users_email_idx ON users (email);
