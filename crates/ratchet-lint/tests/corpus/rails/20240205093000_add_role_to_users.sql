ALTER TABLE users ADD COLUMN role character varying DEFAULT 'member' NOT NULL;
