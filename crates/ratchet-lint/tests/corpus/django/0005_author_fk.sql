BEGIN;
--
-- Add field author to book
--
ALTER TABLE "library_book" ADD COLUMN "author_id" bigint NULL CONSTRAINT "library_book_author_id_6e1ef7a2_fk_library_author_id" REFERENCES "library_author"("id") DEFERRABLE INITIALLY DEFERRED;
SET CONSTRAINTS "library_book_author_id_6e1ef7a2_fk_library_author_id" IMMEDIATE;
CREATE INDEX "library_book_author_id_6e1ef7a2" ON "library_book" ("author_id");
COMMIT;
