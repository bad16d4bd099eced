//! Regression tests for what broke under real use (issue: keep the promise under real
//! workloads), each named after what broke.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use ratchet_engine::fragment::rewrite_columns;
use ratchet_engine::EngineError;
use ratchet_scratch::testing::TestDb;

/// Expressions over the integer columns `a`, `b` and the text column `s`, using the node
/// kinds whose column references once went unrewritten (a simple CASE's operand) and
/// their neighbours.
fn int_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        (0i32..50).prop_map(|n| n.to_string()),
        Just("length(s)".to_string()),
    ];
    leaf.prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("({x} + {y})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(x, y, z)| format!("CASE {x} WHEN {y} THEN {z} ELSE a END")),
            (inner.clone(), inner.clone())
                .prop_map(|(x, y)| format!("CASE WHEN {x} > {y} THEN {x} ELSE b END")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("COALESCE({x}, {y})")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("GREATEST({x}, {y}, a)")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("NULLIF({x}, {y})")),
            (inner.clone(), inner.clone())
                .prop_map(|(x, y)| format!("(CASE WHEN {x} IN ({y}, b, 3) THEN 1 ELSE 0 END)")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!(
                "(CASE WHEN {x} IS DISTINCT FROM {y} THEN 1 ELSE 0 END)"
            )),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!(
                "(CASE WHEN {x} = ANY (ARRAY[{y}, a]) THEN 1 ELSE 2 END)"
            )),
            (inner.clone(), inner.clone())
                .prop_map(|(x, y)| format!("(CASE WHEN {x} BETWEEN b AND {y} THEN 1 ELSE 0 END)")),
            inner
                .clone()
                .prop_map(|x| format!("CAST({x} AS bigint)::int")),
            inner
                .clone()
                .prop_map(|x| format!("(ARRAY[{x}, b, a])[1 + abs(a) % 3]")),
            inner
                .clone()
                .prop_map(|x| format!("(CASE WHEN ROW({x}, b) = ROW(a, b) THEN 1 ELSE 0 END)")),
            inner
                .clone()
                .prop_map(|x| format!("length(s || {x}::text || s)")),
            inner.clone().prop_map(|x| format!("abs({x}) % 7")),
            (inner.clone(), inner)
                .prop_map(|(x, y)| format!("(SELECT max(v) FROM (VALUES ({x}), ({y})) AS vs(v))")),
        ]
    })
}

// A simple `CASE` operand was not rewritten, so every write failed after start: every
// generated expression, rewritten onto other physical names, must compute the same
// values as the original on the same rows (an unrewritten reference fails outright).
#[tokio::test]
async fn column_references_are_rewritten_in_every_node_kind() {
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int, s text);
         INSERT INTO t SELECT g, g % 7, CASE WHEN g % 5 = 0 THEN NULL ELSE g % 3 END, 'x' || g
           FROM generate_series(1, 40) g;
         CREATE TABLE u AS SELECT id, a AS p_a, b AS p_b, s AS p_s FROM t;",
    )
    .await
    .unwrap();
    let mut runner = TestRunner::deterministic();
    let strategy = int_expr();
    for _ in 0..300 {
        let expr = strategy.new_tree(&mut runner).unwrap().current();
        let rewritten = rewrite_columns(&expr, |n| match n {
            "a" | "b" | "s" => Some(format!("r.\"p_{n}\"")),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("`{expr}`: {e}"));
        let want: Option<String> = c
            .query_one(
                &format!("SELECT string_agg(({expr})::text, ',' ORDER BY id) FROM t AS r"),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("`{expr}`: {e}"))
            .get(0);
        let got: Option<String> = c
            .query_one(
                &format!("SELECT string_agg({rewritten}::text, ',' ORDER BY id) FROM u AS r"),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("`{expr}` rewritten as `{rewritten}`: {e}"))
            .get(0);
        assert_eq!(got, want, "`{expr}` rewritten as `{rewritten}`");
    }
}

const PAYMENTS: &str = "
operations:
  - create_table:
      name: payments
      columns:
        - name: id
          type: bigint
          pk: true
          generated:
            identity:
              user_specified_values: BY DEFAULT
        - name: amount_cents
          type: int
        - name: status
          type: text
          default: \"'pending'\"
";

async fn payments(db: &TestDb, files: &Files) -> ratchet_engine::Engine {
    let mut e = engine(db).await;
    e.start(&files.migration("01_payments.yaml", PAYMENTS))
        .await
        .unwrap();
    common::complete(&mut e).await.unwrap();
    db.client()
        .await
        .batch_execute(
            "INSERT INTO payments (amount_cents, status)
             SELECT g, CASE WHEN g % 2 = 0 THEN 'paid' ELSE 'pending' END FROM generate_series(1, 50) g",
        )
        .await
        .unwrap();
    e
}

// `up: amount * 2` (no such column) was a warning, then every insert failed until abort.
#[tokio::test]
async fn an_unknown_column_in_up_is_an_error_with_a_did_you_mean_and_nothing_changes() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = payments(&db, &files).await;
    let m = files.migration(
        "02_double.yaml",
        "operations:\n  - add_column:\n      table: payments\n      up: amount * 2\n      column:\n        name: doubled\n        type: int\n",
    );
    let err = e.start(&m).await.unwrap_err();
    let EngineError::Invalid {
        location,
        message,
        hint,
    } = &err
    else {
        panic!("expected an invalid-file error, got {err}");
    };
    assert!(location.contains("02_double.yaml"), "{location}");
    assert!(message.contains("`amount`"), "{message}");
    assert!(hint.contains("did you mean `amount_cents`?"), "{hint}");
    let c = db.client().await;
    assert_eq!(
        columns(&c, "public", "payments").await,
        ["id", "amount_cents", "status"]
    );
    c.batch_execute("INSERT INTO payments (amount_cents) VALUES (1)")
        .await
        .unwrap();
}

// An `up` the parser accepts but PostgreSQL cannot run (here: no operator int + text)
// installed triggers that made every insert fail.
#[tokio::test]
async fn an_up_that_cannot_run_fails_start_before_any_trigger_exists() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = payments(&db, &files).await;
    let m = files.migration(
        "02_bad.yaml",
        "operations:\n  - add_column:\n      table: payments\n      up: amount_cents + 'x'::text\n      column:\n        name: bad\n        type: int\n",
    );
    let err = e.start(&m).await.unwrap_err().to_string();
    assert!(err.contains("operator does not exist"), "{err}");
    let c = db.client().await;
    let triggers: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.payments'::regclass AND NOT tgisinternal",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(triggers, 0);
    c.batch_execute("INSERT INTO payments (amount_cents) VALUES (1)")
        .await
        .unwrap();
    e.abort().await.unwrap();
}

// With `SET search_path TO <version schema>` and `up: (…)::payment_state` (an enum the
// migration creates in `public`), new- and old-version writes failed with `type
// "payment_state" does not exist`: the trigger functions ran with the caller's path.
#[tokio::test]
async fn triggers_resolve_names_in_the_managed_schema_whatever_the_search_path() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = payments(&db, &files).await;
    let m = files.migration(
        "02_state.yaml",
        "operations:
  - sql:
      up: CREATE TYPE payment_state AS ENUM ('pending', 'paid', 'refunded')
      down: DROP TYPE IF EXISTS payment_state
  - alter_column:
      table: payments
      column: status
      name: state
      type: payment_state
      up: (status)::payment_state
      down: (state)::text
",
    );
    let out = e.start(&m).await.unwrap();
    let c = db.client().await;
    c.batch_execute(&format!(
        "SET search_path TO {}; INSERT INTO payments (amount_cents, state) VALUES (7, 'refunded');
         UPDATE payments SET state = 'paid' WHERE id = 1",
        out.version_schema
    ))
    .await
    .unwrap();
    c.batch_execute(
        "SET search_path TO public_01_payments; INSERT INTO payments (amount_cents, status) VALUES (8, 'paid');
         UPDATE payments SET status = 'refunded' WHERE id = 2; UPDATE payments SET amount_cents = 0 WHERE id = 3",
    )
    .await
    .unwrap();
    c.batch_execute("SET search_path TO pg_catalog")
        .await
        .unwrap();
    let rows: Vec<(String, String)> = c
        .query(
            &format!(
                "SELECT o.status, n.state::text FROM public_01_payments.payments o
                   JOIN {}.payments n USING (id) WHERE id IN (1, 2, 51, 52) ORDER BY id",
                out.version_schema
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        rows,
        pairs(&[
            ("paid", "paid"),
            ("refunded", "refunded"),
            ("refunded", "refunded"),
            ("paid", "paid")
        ])
    );
    e.backfill().await.unwrap();
    assert!(e.validate(false).await.unwrap().unwrap().passed);
    common::complete(&mut e).await.unwrap();
}

/// Definitions of the table's indexes (not backing a constraint), by name.
async fn index_defs(c: &tokio_postgres::Client, table: &str) -> Vec<(String, String)> {
    c.query(
        "SELECT i.relname::text, pg_get_indexdef(x.indexrelid)
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
          WHERE x.indrelid = $1::text::regclass
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
          ORDER BY 1",
        &[&table],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

// A plain DESC index on the migrated column was refused as "partial, expression or
// operator-class index"; expression and partial indexes on it were silently lost at
// complete (dropping the old column drops them).
#[tokio::test]
async fn indexes_on_a_changed_column_keep_ordering_nulls_collation_opclass_expressions_and_predicates(
) {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = payments(&db, &files).await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE INDEX pay_status_desc ON payments (status DESC NULLS FIRST);
         CREATE INDEX pay_status_c ON payments (status COLLATE \"C\" text_pattern_ops);
         CREATE INDEX pay_lower ON payments (lower(status), amount_cents) WHERE status <> 'void';
         CREATE UNIQUE INDEX pay_amount_incl ON payments (amount_cents) INCLUDE (status);
         CREATE INDEX pay_other ON payments (amount_cents DESC);",
    )
    .await
    .unwrap();
    let before = index_defs(&c, "payments").await;
    let m = files.migration(
        "02_status.yaml",
        "operations:
  - alter_column:
      table: payments
      column: status
      check:
        name: status_short
        constraint: length(status) < 50
      up: status
      down: status
",
    );
    let plan = e.plan(&m).await.unwrap();
    let creates: Vec<_> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            ratchet_engine::plan::Action::CreateIndexConcurrently { statement, .. } => {
                Some(statement.sql.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        creates.len(),
        4,
        "the four indexes naming status: {creates:#?}"
    );
    e.start(&m).await.unwrap();
    // While expanded, the new version's queries use the carried indexes.
    c.batch_execute("INSERT INTO payments (amount_cents, status) VALUES (1000, 'x')")
        .await
        .unwrap();
    e.validate_and_complete().await.unwrap();
    assert_eq!(
        index_defs(&c, "payments").await,
        before,
        "every index is back under its name with its exact definition"
    );
}

// A foreign key on an existing column duplicated the column and backfilled the table; it
// needs neither: NOT VALID, then VALIDATE, both in start.
#[tokio::test]
async fn a_foreign_key_on_an_existing_column_is_added_not_valid_and_validated_in_place() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = payments(&db, &files).await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE accounts (id int PRIMARY KEY);
         INSERT INTO accounts SELECT g FROM generate_series(1, 60) g;
         CREATE TABLE refunds (id int PRIMARY KEY, payment_id bigint);
         INSERT INTO refunds SELECT g, g FROM generate_series(1, 40) g;
         ALTER TABLE payments ADD COLUMN account_id int;
         UPDATE payments SET account_id = id;",
    )
    .await
    .unwrap();
    let m = files.migration(
        "02_fks.yaml",
        "operations:
  - alter_column:
      table: payments
      column: account_id
      references:
        name: payments_account_fk
        table: accounts
        column: id
  - create_constraint:
      table: refunds
      name: refunds_payment_fk
      type: foreign_key
      columns: [payment_id]
      references:
        table: payments
        columns: [id]
",
    );
    let plan = e.plan(&m).await.unwrap();
    let sql: Vec<String> = plan
        .steps
        .iter()
        .flat_map(|s| s.statements().into_iter().map(|st| st.sql))
        .collect();
    assert!(
        !sql.iter()
            .any(|s| s.contains("_ratchet_new") || s.contains("TRIGGER")),
        "no duplicate column, no trigger: {sql:#?}"
    );
    assert!(
        plan.steps
            .iter()
            .all(|s| !matches!(s.action, ratchet_engine::plan::Action::Backfill(_))),
        "no backfill"
    );
    let out = e.start(&m).await.unwrap();
    let valid: Vec<(String, bool)> = c
        .query(
            "SELECT conname::text, convalidated FROM pg_constraint
              WHERE conname IN ('payments_account_fk', 'refunds_payment_fk') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        valid,
        vec![
            ("payments_account_fk".to_string(), true),
            ("refunds_payment_fk".to_string(), true)
        ]
    );
    // Enforced for both versions from start on.
    let err = c
        .batch_execute(&format!(
            "INSERT INTO {}.payments (amount_cents, account_id) VALUES (1, 999)",
            out.version_schema
        ))
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("payments_account_fk"),
        "{err:?}"
    );
    common::complete(&mut e).await.unwrap();

    // Existing rows that break the key: start stops at the validation, names the
    // constraint, and abort leaves nothing behind.
    c.batch_execute(
        "ALTER TABLE refunds ADD COLUMN account_id int; UPDATE refunds SET account_id = 1000 + id;",
    )
    .await
    .unwrap();
    let bad = files.migration(
        "03_bad_fk.yaml",
        "operations:
  - create_constraint:
      table: refunds
      name: refunds_account_fk
      type: foreign_key
      columns: [account_id]
      references:
        table: accounts
        columns: [id]
",
    );
    let err = e.start(&bad).await.unwrap_err().to_string();
    assert!(err.contains("refunds_account_fk"), "{err}");
    e.abort().await.unwrap();
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'refunds_account_fk'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

// After `start --no-backfill` the new version schema already existed: its columns read NULL
// on rows not backfilled yet, and `SET amount_cents = amount_cents + 1` there was silently
// lost (NULL + 1 is NULL, and the trigger refilled the column from the old one).
#[tokio::test]
async fn no_backfill_publishes_the_new_version_only_once_filled_so_no_update_is_lost() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = payments(&db, &files).await;
    e.config.run_backfill = false;
    let m = files.migration(
        "02_cents.yaml",
        "operations:
  - alter_column:
      table: payments
      column: amount_cents
      type: bigint
      up: amount_cents * 100
      down: (amount_cents / 100)::int
",
    );
    let out = e.start(&m).await.unwrap();
    assert!(out.backfill_left);
    let c = db.client().await;
    assert!(
        !schema_exists(&c, &out.version_schema).await,
        "not published before the backfill"
    );
    // The old version keeps working, and its writes are mirrored.
    c.batch_execute("UPDATE public_01_payments.payments SET amount_cents = 7 WHERE id = 1")
        .await
        .unwrap();
    let err = common::complete(&mut e).await.unwrap_err().to_string();
    assert!(err.contains("ratchet backfill"), "{err}");
    e.config.run_backfill = true;
    e.backfill().await.unwrap();
    assert!(schema_exists(&c, &out.version_schema).await);
    let got: Vec<i64> = c
        .query(
            &format!(
                "UPDATE {vs}.payments SET amount_cents = amount_cents + 1 WHERE id IN (1, 2)
                 RETURNING amount_cents",
                vs = out.version_schema
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect::<Vec<i64>>();
    let mut got = got;
    got.sort();
    assert_eq!(got, vec![201, 701]);
}

// pgroll's example 35 has a `down` naming no column of the new version: refused when the
// new version will take writes (plain start), left out with a warning when the migration
// completes at once (`start --complete`, `migrate --complete`), where it could never run.
#[tokio::test]
async fn a_down_naming_no_column_is_refused_unless_the_migration_completes_at_once() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = payments(&db, &files).await;
    let m = files.migration(
        "02_len.yaml",
        "operations:
  - alter_column:
      table: payments
      column: status
      check:
        name: status_len
        constraint: length(status) > 1
      up: status
      down: payment_status
",
    );
    let err = e.start(&m).await.unwrap_err();
    assert!(
        err.to_string().contains("`payment_status`"),
        "refused: {err}"
    );
    e.config.completes_at_once = true;
    let plan = e.plan(&m).await.unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("payment_status") && w.contains("completes at once")),
        "{:?}",
        plan.warnings
    );
    e.start(&m).await.unwrap();
    e.validate_and_complete().await.unwrap();
}

// The backfill worker retried a lock timeout forever, every 200 ms, with no event row
// (issue: restructure the engine, the unbounded backfill retry).
#[tokio::test]
async fn a_backfill_blocked_past_its_retry_budget_stops_with_an_event_row_and_resumes() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = payments(&db, &files).await;
    e.config.run_backfill = false;
    e.config.lock_timeout = std::time::Duration::from_millis(100);
    e.config.max_attempts = 3;
    e.config.backoff = std::time::Duration::from_millis(10);
    let m = files.migration(
        "02_cents.yaml",
        "operations:
  - alter_column:
      table: payments
      column: amount_cents
      type: bigint
      up: amount_cents * 100
      down: (amount_cents / 100)::int
",
    );
    e.start(&m).await.unwrap();
    let holder = db.client().await;
    holder
        .batch_execute(
            "SET application_name = 'nightly-report'; BEGIN; LOCK TABLE payments IN SHARE MODE",
        )
        .await
        .unwrap();
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    e.config.run_backfill = true;
    let err = e.backfill().await.unwrap_err().to_string();
    assert!(
        err.contains("gave up after 3 attempts") && err.contains("backfill batch of payments"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "blocked by pid {pid} (application nightly-report, idle in transaction"
        )),
        "the blocker is named: {err}"
    );
    let c = db.client().await;
    let retries: i64 = c
        .query_one(
            "SELECT count(*) FROM ratchet.events WHERE kind = 'retry' AND detail ? 'backfill'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(retries, 2, "one event row per retry");
    holder.batch_execute("ROLLBACK").await.unwrap();
    e.backfill().await.unwrap();
    e.validate_and_complete().await.unwrap();
    let n: i64 = c
        .query_one("SELECT sum(amount_cents)::bigint FROM payments", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, (1..=50).sum::<i64>() * 100);
}

// rename_column, then alter_column of the renamed column in the same file: complete
// dropped the replaced column and then still ran the rename of it, failing half-way
// through the contract. Now the duplicate takes the new name, and the data survives.
#[tokio::test]
async fn a_rename_then_a_type_change_of_one_column_completes_with_the_data() {
    let db = TestDb::new().await;
    let files = Files::new();
    let mut e = payments(&db, &files).await;
    let m = files.migration(
        "02_total.yaml",
        "operations:
  - rename_column:
      table: payments
      from: amount_cents
      to: total_cents
  - alter_column:
      table: payments
      column: total_cents
      type: bigint
      up: total_cents::bigint
      down: total_cents::integer
",
    );
    let started = e.start(&m).await.unwrap();
    let c = db.client().await;
    // Writes through the new version during the expand reach the old column too.
    c.batch_execute(&format!(
        "INSERT INTO {}.payments (total_cents, status) VALUES (5000000000, 'paid')",
        started.version_schema
    ))
    .await
    .unwrap_err();
    c.batch_execute(&format!(
        "INSERT INTO {}.payments (total_cents, status) VALUES (70, 'paid')",
        started.version_schema
    ))
    .await
    .unwrap();
    e.validate(false).await.unwrap();
    common::complete(&mut e).await.unwrap();
    assert_eq!(
        columns(&c, "public", "payments").await,
        ["id", "status", "total_cents"]
    );
    let row = c
        .query_one(
            "SELECT count(*), sum(total_cents)::bigint, pg_typeof(min(total_cents))::text FROM payments",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 51);
    assert_eq!(row.get::<_, i64>(1), (1..=50).sum::<i64>() + 70);
    assert_eq!(row.get::<_, String>(2), "bigint");
}
