BEGIN;
--
-- Alter field title on book
--
ALTER TABLE "library_book" ALTER COLUMN "title" TYPE varchar(500);
COMMIT;
