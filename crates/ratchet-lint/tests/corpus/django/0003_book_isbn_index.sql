BEGIN;
--
-- Alter field isbn on book
--
CREATE INDEX "library_book_isbn_5e4c0a0f" ON "library_book" ("isbn");
CREATE INDEX "library_book_isbn_5e4c0a0f_like" ON "library_book" ("isbn" varchar_pattern_ops);
COMMIT;
