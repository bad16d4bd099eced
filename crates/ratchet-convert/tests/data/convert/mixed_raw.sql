BEGIN;
SET lock_timeout = '2s';
SET search_path = app, public;

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
ALTER TABLE people ADD COLUMN mood mood;
UPDATE people SET mood = 'ok' WHERE mood IS NULL;

CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;
CREATE TRIGGER people_touch BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE billing.invoices ADD COLUMN paid boolean;
ALTER TABLE people SET LOGGED, ADD COLUMN x int;
COMMIT;
