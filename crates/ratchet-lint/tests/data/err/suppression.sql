SET lock_timeout = '1s';
-- ratchet:ignore create-index-non-concurrently lookup table with 12 rows
CREATE INDEX countries_code_idx ON countries (code);
CREATE INDEX cities_code_idx ON cities (code); -- ratchet:ignore A18 tiny table
-- ratchet:ignore add-check-constraint stale: nothing to suppress here
ALTER TABLE cities ADD COLUMN note text;
