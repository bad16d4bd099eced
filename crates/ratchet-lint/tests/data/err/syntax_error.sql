SET lock_timeout = '1s';
ALTER TABLE users ADD COLUM email text;
CREATE INDEX users_name_idx ON users (name);
