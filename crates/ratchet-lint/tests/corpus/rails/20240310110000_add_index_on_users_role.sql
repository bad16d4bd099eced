CREATE INDEX index_users_on_role ON users USING btree (role);
