-- fixture: assume_in_transaction
-- The runner already wraps this file in a transaction: the inner COMMIT ends it early
-- (C1), and the second BEGIN is never committed (C2).
BEGIN;
CREATE TABLE IF NOT EXISTS audit_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
COMMIT;
BEGIN;
INSERT INTO audit_log (note, note) VALUES ('a', 'b');
