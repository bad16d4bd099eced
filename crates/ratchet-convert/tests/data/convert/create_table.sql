CREATE TABLE IF NOT EXISTS public.orders (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email varchar(255) NOT NULL UNIQUE,
    total numeric(10, 2) NOT NULL DEFAULT 0 CHECK (total >= 0),
    status text NOT NULL DEFAULT 'new',
    created_at timestamptz NOT NULL DEFAULT now(),
    total_cents bigint GENERATED ALWAYS AS ((total * 100)::bigint) STORED,
    CONSTRAINT orders_status_check CHECK (status IN ('new', 'paid', 'shipped')),
    UNIQUE (user_id, created_at)
);

CREATE TABLE order_tags (
    order_id bigint,
    tag text,
    PRIMARY KEY (order_id, tag)
);

CREATE UNLOGGED TABLE scratch (x int);
