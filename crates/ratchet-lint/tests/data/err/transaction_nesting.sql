-- fixture: assume_in_transaction
-- The runner already wraps this file in a transaction: the first BEGIN nests in it and
-- its COMMIT ends the runner's transaction early (C1). The second BEGIN reopens a
-- transaction that the runner's own COMMIT ends, so it is not reported.
BEGIN;
CREATE TABLE IF NOT EXISTS audit_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
COMMIT;
BEGIN;
INSERT INTO audit_log (note, note) VALUES ('a', 'b');
