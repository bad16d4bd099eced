SET lock_timeout = '1s';
ALTER TABLE orders ADD COLUMN IF NOT EXISTS archived boolean NOT NULL DEFAULT false;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS imported_at timestamptz DEFAULT now();
