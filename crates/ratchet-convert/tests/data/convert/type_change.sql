CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload json,
    amount integer NOT NULL DEFAULT 0
);

-- The old type is known from the CREATE TABLE above: `down` casts back to it.
ALTER TABLE events ALTER COLUMN amount TYPE bigint;
ALTER TABLE events ALTER COLUMN payload SET DATA TYPE jsonb USING payload::jsonb;

-- A table this file did not create: `down` cannot be derived.
ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(12, 2), ALTER COLUMN balance SET NOT NULL;
ALTER TABLE accounts ALTER COLUMN "Label" TYPE varchar(80);
