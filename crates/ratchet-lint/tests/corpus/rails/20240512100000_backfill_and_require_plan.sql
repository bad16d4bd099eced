ALTER TABLE users ADD COLUMN plan character varying;
UPDATE users SET plan = 'free' WHERE plan IS NULL;
ALTER TABLE users ALTER COLUMN plan SET NOT NULL;
