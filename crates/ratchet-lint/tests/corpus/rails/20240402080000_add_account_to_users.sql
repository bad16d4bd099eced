ALTER TABLE users ADD account_id bigint;
CREATE INDEX index_users_on_account_id ON users USING btree (account_id);
ALTER TABLE users ADD CONSTRAINT fk_rails_8f9a8e3b1c FOREIGN KEY (account_id) REFERENCES accounts (id);
