//! Precision corpus (issue #10): migrations that follow the recommended safe patterns —
//! every safe idiom of `docs/lint.md` and of the rules' "What to do instead" sections —
//! must get no warning and no error with the default configuration (`info` notes are
//! allowed: they never fail CI). The unsafe counterparts keep being caught.

use ratchet_lint::{Linter, PgVersion, Settings, Severity};

/// `(name, target major version, SQL)`.
type Case = (&'static str, u32, &'static str);

const SAFE: &[Case] = &[
    ("cic_guarded", 15, "SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);"),
    ("cic_bare", 15, "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);"),
    ("cic_unique", 15, "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);"),
    ("cic_partial", 15, "CREATE INDEX CONCURRENTLY orders_open_idx ON orders (created_at) WHERE status = 'open';"),
    ("cic_include", 15, "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id) INCLUDE (total);"),
    ("cic_expression", 15, "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_lower_email_idx ON users (lower(email));"),
    ("cic_several", 15, "CREATE INDEX CONCURRENTLY a_idx ON orders (a);\nCREATE INDEX CONCURRENTLY b_idx ON orders (b);"),
    ("cic_no_transaction_directive", 15, "-- ratchet:no-transaction\nCREATE INDEX CONCURRENTLY users_role_idx ON users (role);"),
    ("cic_with_statement_timeout", 15, "SET statement_timeout = '30min';\nCREATE INDEX CONCURRENTLY users_created_idx ON users (created_at);"),
    ("cic_wrapped_commit_idiom", 15, "-- ratchet:transaction\nCOMMIT;\nCREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);\nBEGIN;"),
    ("unique_using_index", 15, "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);\nSET lock_timeout = '1s';\nALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;"),
    ("drop_index_concurrently", 15, "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;"),
    ("reindex_concurrently", 15, "REINDEX INDEX CONCURRENTLY users_email_idx;"),
    ("reindex_concurrently_option", 15, "REINDEX (CONCURRENTLY true) INDEX users_email_idx;"),
    ("reindex_table_concurrently", 15, "REINDEX TABLE CONCURRENTLY users;"),
    ("check_not_valid", 15, "SET lock_timeout = '1s';\nALTER TABLE orders ADD CONSTRAINT orders_positive CHECK (amount > 0) NOT VALID;"),
    ("validate_alone", 15, "ALTER TABLE orders VALIDATE CONSTRAINT orders_positive;"),
    ("check_not_valid_then_validate_later_tx", 15, "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE orders ADD CONSTRAINT orders_positive CHECK (amount > 0) NOT VALID;\nCOMMIT;\nALTER TABLE orders VALIDATE CONSTRAINT orders_positive;"),
    ("fk_not_valid", 15, "SET lock_timeout = '1s';\nALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;"),
    ("fk_not_valid_then_validate", 15, "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\nCOMMIT;\nALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;"),
    ("fk_with_index_first", 15, "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\nSET lock_timeout = '1s';\nALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;"),
    ("add_nullable_column", 15, "SET lock_timeout = '1s';\nALTER TABLE users ADD COLUMN IF NOT EXISTS nickname text;"),
    ("add_column_constant_default", 15, "SET lock_timeout = '1s';\nALTER TABLE users ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true;"),
    ("add_column_jsonb_default", 15, "SET lock_timeout = '1s';\nALTER TABLE users ADD COLUMN IF NOT EXISTS settings jsonb NOT NULL DEFAULT '{}'::jsonb;"),
    ("add_column_null_default", 15, "SET lock_timeout = '1s';\nALTER TABLE users ADD COLUMN IF NOT EXISTS archived_at timestamptz DEFAULT NULL;"),
    ("add_column_bigint", 15, "SET lock_timeout = '1s';\nALTER TABLE orders ADD COLUMN IF NOT EXISTS total_cents bigint;"),
    ("add_column_in_transaction", 15, "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE users ADD COLUMN locale text;\nCOMMIT;"),
    ("add_column_then_check_not_valid", 15, "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE orders ADD COLUMN discount bigint, ADD CONSTRAINT orders_discount_positive CHECK (discount >= 0) NOT VALID;\nCOMMIT;"),
    ("set_not_null_via_check", 15, "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;\nCOMMIT;\nALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\nBEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;\nCOMMIT;"),
    ("set_not_null_via_check_drop_helper", 15, "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;\nCOMMIT;\nALTER TABLE users VALIDATE CONSTRAINT users_email_nn;\nBEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;\nALTER TABLE users DROP CONSTRAINT users_email_nn;\nCOMMIT;"),
    ("pg18_not_null_not_valid", 18, "SET lock_timeout = '1s';\nALTER TABLE users ADD CONSTRAINT users_email_nn NOT NULL email NOT VALID;"),
    ("pg18_virtual_column", 18, "SET lock_timeout = '1s';\nALTER TABLE people ADD COLUMN IF NOT EXISTS full_name text GENERATED ALWAYS AS (first_name || ' ' || last_name) VIRTUAL;"),
    ("pk_using_index_after_not_null", 15, "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE events ADD CONSTRAINT events_id_nn CHECK (id IS NOT NULL) NOT VALID;\nCOMMIT;\nALTER TABLE events VALIDATE CONSTRAINT events_id_nn;\nBEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE events ALTER COLUMN id SET NOT NULL;\nCOMMIT;\nCREATE UNIQUE INDEX CONCURRENTLY events_pkey ON events (id);\nBEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;\nCOMMIT;"),
    ("create_table_identity", 15, "CREATE TABLE IF NOT EXISTS accounts (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  name text NOT NULL,\n  created_at timestamptz NOT NULL DEFAULT now()\n);"),
    ("create_table_references", 15, "CREATE TABLE IF NOT EXISTS invoices (\n  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n  account_id bigint NOT NULL REFERENCES accounts (id),\n  total_cents bigint NOT NULL\n);"),
    ("create_table_and_index", 15, "CREATE TABLE IF NOT EXISTS tags (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, label text NOT NULL);\nCREATE INDEX IF NOT EXISTS tags_label_idx ON tags (label);"),
    ("create_table_in_transaction", 15, "BEGIN;\nCREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);\nCREATE INDEX notes_body_idx ON notes (body);\nCOMMIT;"),
    ("create_table_unique_and_check", 15, "CREATE TABLE IF NOT EXISTS coupons (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  code text NOT NULL UNIQUE,\n  pct integer NOT NULL CHECK (pct BETWEEN 1 AND 100)\n);"),
    ("create_table_stored_generated", 15, "CREATE TABLE IF NOT EXISTS people (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  first_name text, last_name text,\n  full_name text GENERATED ALWAYS AS (first_name || ' ' || last_name) STORED\n);"),
    ("create_partitioned_table", 15, "CREATE TABLE IF NOT EXISTS measurements (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);\nCREATE TABLE IF NOT EXISTS measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"),
    ("create_table_then_seed", 15, "CREATE TABLE IF NOT EXISTS countries (code text PRIMARY KEY, name text NOT NULL);\nINSERT INTO countries (code, name) VALUES ('FR', 'France'), ('JP', 'Japan');"),
    ("create_table_fk_and_index", 15, "CREATE TABLE IF NOT EXISTS line_items (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  invoice_id bigint NOT NULL REFERENCES invoices (id)\n);\nCREATE INDEX IF NOT EXISTS line_items_invoice_idx ON line_items (invoice_id);"),
    ("create_unlogged_scratch", 15, "CREATE UNLOGGED TABLE IF NOT EXISTS import_scratch (line text);"),
    ("batched_update", 15, "UPDATE users SET locale = 'en' WHERE id BETWEEN 1 AND 10000 AND locale IS NULL;"),
    ("batched_delete", 15, "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < now() - interval '90 days' LIMIT 10000);"),
    ("create_function", 15, "CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.updated_at := now();\n  RETURN NEW;\nEND;\n$$;"),
    ("create_view", 15, "CREATE OR REPLACE VIEW active_users AS SELECT id, email FROM users WHERE active;"),
    ("detach_partition_concurrently", 15, "ALTER TABLE measurements DETACH PARTITION measurements_2020 CONCURRENTLY;"),
    ("refresh_matview_concurrently", 15, "REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals;"),
    ("vacuum_analyze", 15, "VACUUM (ANALYZE) users;"),
    ("vacuum_full_off", 15, "VACUUM (FULL false, ANALYZE) users;"),
    ("analyze", 15, "ANALYZE users;"),
    ("set_statistics", 15, "ALTER TABLE users ALTER COLUMN email SET STATISTICS 500;"),
    ("comment_on", 15, "COMMENT ON TABLE users IS 'application accounts';"),
    ("create_schema", 15, "CREATE SCHEMA IF NOT EXISTS reporting;"),
    ("create_extension", 15, "CREATE EXTENSION IF NOT EXISTS pg_trgm;"),
    ("create_sequence", 15, "CREATE SEQUENCE IF NOT EXISTS invoice_numbers AS bigint;"),
    ("create_statistics", 15, "CREATE STATISTICS IF NOT EXISTS orders_stats (dependencies) ON customer_id, status FROM orders;"),
    ("grant_select", 15, "GRANT SELECT ON users TO reporting;"),
    ("drop_column_contract_suppressed", 15, "SET lock_timeout = '1s';\n-- ratchet:ignore drop-column contract phase: no release reads `legacy` since v42\nALTER TABLE users DROP COLUMN IF EXISTS legacy;"),
    ("enum_add_value_after", 15, "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh' AFTER 'ok';"),
    ("lock_timeout_session_for_many", 15, "SET lock_timeout = '1s';\nALTER TABLE users ADD COLUMN IF NOT EXISTS a text;\nSET lock_timeout = '1s';\nALTER TABLE orders ADD COLUMN IF NOT EXISTS b text;"),
    ("validate_with_statement_timeout", 15, "SET statement_timeout = '1h';\nALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;"),
    ("select_only", 15, "SELECT count(*) FROM users;"),
    ("create_trigger_on_new_table", 15, "CREATE TABLE IF NOT EXISTS audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, updated_at timestamptz);\nCREATE TRIGGER audit_touch BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION touch_updated_at();"),
    ("detach_partition_concurrently_pg14", 14, "ALTER TABLE measurements DETACH PARTITION measurements_2020 CONCURRENTLY;"),
    ("virtual_default_kind_pg18", 18, "SET lock_timeout = '1s';\nALTER TABLE people ADD COLUMN IF NOT EXISTS initials text GENERATED ALWAYS AS (left(first_name, 1) || left(last_name, 1));"),
];

/// Unsafe counterparts: each must still get a warning or error from `rule`.
const UNSAFE: &[(&str, &str)] = &[
    ("create-index-non-concurrently", "CREATE INDEX users_email_idx ON users (email);"),
    ("add-check-constraint", "ALTER TABLE orders ADD CONSTRAINT orders_positive CHECK (amount > 0);"),
    ("add-check-constraint", "ALTER TABLE foo ADD COLUMN bar bigint CONSTRAINT c CHECK (bar > 0);"),
    ("add-foreign-key", "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);"),
    ("set-not-null", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"),
    ("reindex-non-concurrently", "REINDEX (CONCURRENTLY false) INDEX idx;"),
    ("vacuum-full-or-cluster", "VACUUM (FULL) users;"),
    ("concurrently-in-transaction", "BEGIN;\nCREATE INDEX CONCURRENTLY i ON users (email);\nCOMMIT;"),
    ("pk-using-index-on-nullable", "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;"),
    ("missing-lock-timeout", "ALTER TABLE users ADD COLUMN nickname text;"),
    ("add-column-volatile-default", "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();"),
    ("alter-column-type-rewrite", "ALTER TABLE users ALTER COLUMN id TYPE bigint;"),
    ("drop-column", "ALTER TABLE users DROP COLUMN legacy;"),
    ("rename-column", "ALTER TABLE users RENAME COLUMN email TO mail;"),
    ("transaction-nesting", "-- ratchet:transaction\nALTER TABLE users ADD COLUMN a text;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON users (a);\nBEGIN;"),
    ("missing-lock-timeout", "REFRESH MATERIALIZED VIEW daily_totals;"),
    ("unbatched-backfill", "UPDATE users SET locale = 'en';"),
];

fn lint(major: u32, sql: &str) -> ratchet_lint::FileReport {
    let settings = Settings {
        pg_version: PgVersion::new(major),
        ..Settings::default()
    };
    Linter::new(&settings, None).lint_sql("m.sql", sql)
}

#[test]
fn safe_patterns_get_no_warning_or_error() {
    assert!(SAFE.len() >= 60, "{} cases", SAFE.len());
    let mut alarms = Vec::new();
    for (name, major, sql) in SAFE {
        let report = lint(*major, sql);
        assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
        for f in report
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
        {
            alarms.push(format!(
                "{name}: {} {}: {}",
                f.severity, f.rule.name, f.message
            ));
        }
    }
    assert!(
        alarms.is_empty(),
        "{} false alarms:\n{}",
        alarms.len(),
        alarms.join("\n")
    );
}

#[test]
fn unsafe_counterparts_are_still_caught() {
    let mut missed = Vec::new();
    for (rule, sql) in UNSAFE {
        let report = lint(15, sql);
        let caught = report
            .findings
            .iter()
            .any(|f| f.rule.name == *rule && f.severity >= Severity::Warning);
        if !caught {
            missed.push(format!("{rule}: {sql}"));
        }
    }
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
}
