CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email character varying NOT NULL,
    created_at timestamp(6) NOT NULL,
    updated_at timestamp(6) NOT NULL
);
CREATE UNIQUE INDEX index_users_on_email ON users USING btree (email);
