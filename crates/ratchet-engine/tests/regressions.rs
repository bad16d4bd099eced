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
    e.complete().await.unwrap();
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
    e.complete().await.unwrap();
}
