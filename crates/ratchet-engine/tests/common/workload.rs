//! The application workload of `workload_matrix.rs`, shared with `partitions.rs` (the same
//! cases over a partitioned `payments`): each version writes the way applications do while
//! every phase of a migration runs, and every statement must succeed.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use ratchet_engine::backfill::{BatchStats, Decision, Throttle};
use ratchet_engine::{Config, Engine, Silent};
use ratchet_scratch::testing::{connect, TestDb};

/// What one version of the application writes. `{n}` in a template is a unique number.
pub struct Shape {
    /// Columns and values of a full INSERT.
    pub cols: &'static str,
    pub vals: &'static str,
    /// An INSERT that leaves out a column (the migrated one where the version may omit it).
    pub omit_cols: &'static str,
    pub omit_vals: &'static str,
    /// `SET` clause of an UPDATE of the migrated column.
    pub set_migrated: &'static str,
    /// The migrated column, for upserts.
    pub column: &'static str,
}

pub struct Case {
    pub name: &'static str,
    pub migration: &'static str,
    pub old: Shape,
    pub new: Shape,
    /// A condition over `o` (the base table) and `n` (the new version's view) that every
    /// row must meet once the backfill ran: what `up`/`down` say.
    pub consistent: &'static str,
}

pub const BASE_COLS: &str = "ref, status, amount_cents, note, customer_id, memo";

pub fn base_shape(column: &'static str, set_migrated: &'static str) -> Shape {
    Shape {
        cols: BASE_COLS,
        vals: "'r' || {n}, 'paid', ({n} % 500)::int, 'n' || {n}, ({n} % 5 + 1)::int, 'old'",
        omit_cols: "ref, amount_cents, note, customer_id, memo",
        omit_vals: "'o' || {n}, ({n} % 500)::int, 'n' || {n}, 1, 'old'",
        set_migrated,
        column,
    }
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "alter_column type",
            migration: "operations:\n  - alter_column:\n      table: payments\n      column: amount_cents\n      type: bigint\n      up: CAST(amount_cents AS bigint)\n      down: CAST(amount_cents AS integer)\n",
            old: base_shape("amount_cents", "amount_cents = amount_cents + 1"),
            new: base_shape("amount_cents", "amount_cents = amount_cents + 1"),
            consistent: "n.amount_cents = o.amount_cents",
        },
        Case {
            name: "alter_column nullable",
            migration: "operations:\n  - alter_column:\n      table: payments\n      column: note\n      nullable: false\n      up: COALESCE(note, 'none')\n      down: note\n",
            old: Shape {
                omit_cols: "ref, status, amount_cents, customer_id, memo",
                omit_vals: "'o' || {n}, 'paid', 1, 1, 'old'",
                ..base_shape("note", "note = 'x' || {n}")
            },
            new: Shape {
                omit_cols: "ref, status, amount_cents, note, customer_id",
                omit_vals: "'o' || {n}, 'paid', 1, 'n', 1",
                ..base_shape("note", "note = 'y' || {n}")
            },
            consistent: "n.note = COALESCE(o.note, 'none')",
        },
        Case {
            name: "alter_column check",
            migration: "operations:\n  - alter_column:\n      table: payments\n      column: amount_cents\n      check:\n        name: amount_positive\n        constraint: amount_cents >= 0\n      up: GREATEST(amount_cents, 0)\n      down: amount_cents\n",
            old: base_shape("amount_cents", "amount_cents = amount_cents + 1"),
            new: base_shape("amount_cents", "amount_cents = amount_cents + 2"),
            consistent: "n.amount_cents = GREATEST(o.amount_cents, 0)",
        },
        Case {
            name: "alter_column unique",
            migration: "operations:\n  - alter_column:\n      table: payments\n      column: ref\n      unique:\n        name: payments_ref_key\n      up: ref\n      down: ref\n",
            old: base_shape("ref", "ref = 'u' || id || '-' || {n}"),
            new: base_shape("ref", "ref = 'v' || id || '-' || {n}"),
            consistent: "n.ref = o.ref",
        },
        Case {
            name: "alter_column references",
            migration: "operations:\n  - alter_column:\n      table: payments\n      column: customer_id\n      references:\n        name: payments_customer_fk\n        table: customers\n        column: id\n      up: customer_id\n      down: customer_id\n",
            old: base_shape("customer_id", "customer_id = ({n} % 5 + 1)::int"),
            new: base_shape("customer_id", "customer_id = ({n} % 4 + 1)::int"),
            consistent: "n.customer_id IS NOT DISTINCT FROM o.customer_id",
        },
        Case {
            name: "rename and type change with a simple CASE",
            migration: "operations:\n  - alter_column:\n      table: payments\n      column: status\n      name: payment_status\n      type: varchar(20)\n      up: CASE status WHEN 'paid' THEN 'succeeded' ELSE status END\n      down: CASE payment_status WHEN 'succeeded' THEN 'paid' ELSE payment_status END\n",
            old: base_shape("status", "status = CASE WHEN {n} % 2 = 0 THEN 'paid' ELSE 'failed' END"),
            new: Shape {
                cols: "ref, payment_status, amount_cents, note, customer_id, memo",
                vals: "'r' || {n}, 'succeeded', ({n} % 500)::int, 'n' || {n}, 1, 'new'",
                omit_cols: "ref, amount_cents, note, customer_id, memo",
                omit_vals: "'o' || {n}, 1, 'n', 1, 'new'",
                set_migrated: "payment_status = CASE WHEN {n} % 2 = 0 THEN 'succeeded' ELSE 'refunded' END",
                column: "payment_status",
            },
            consistent: "n.payment_status = (CASE o.status WHEN 'paid' THEN 'succeeded' ELSE o.status END) \
                         OR o.status = (CASE n.payment_status WHEN 'succeeded' THEN 'paid' ELSE n.payment_status END)",
        },
        Case {
            name: "add_column with up, NOT NULL",
            migration: "operations:\n  - add_column:\n      table: payments\n      up: amount_cents / 100.0\n      column:\n        name: amount_eur\n        type: numeric\n        nullable: false\n",
            old: base_shape("amount_cents", "amount_cents = amount_cents + 1"),
            new: Shape {
                cols: "ref, status, amount_cents, note, customer_id, memo, amount_eur",
                vals: "'r' || {n}, 'paid', 100, 'n', 1, 'new', 1.0",
                omit_cols: "ref, status, amount_cents, note, customer_id, amount_eur",
                omit_vals: "'o' || {n}, 'paid', 200, 'n', 1, 2.0",
                set_migrated: "amount_cents = 300, amount_eur = 3.0",
                column: "amount_cents",
            },
            consistent: "n.amount_eur = o.amount_cents / 100.0",
        },
        Case {
            name: "drop_column with down, the column has a DEFAULT",
            migration: "operations:\n  - drop_column:\n      table: payments\n      column: status\n      down: CASE WHEN amount_cents > 100 THEN 'big' ELSE 'small' END\n",
            old: base_shape("status", "status = 'failed'"),
            new: Shape {
                cols: "ref, amount_cents, note, customer_id, memo",
                vals: "'r' || {n}, ({n} % 500)::int, 'n', 1, 'new-ins'",
                omit_cols: "ref, amount_cents, note, memo",
                omit_vals: "'o' || {n}, 7, 'n', 'new-ins'",
                set_migrated: "amount_cents = amount_cents + 1",
                column: "amount_cents",
            },
            // Rows the new version inserted get `down`, not the table's default 'pending'.
            consistent: "o.id <= 3000 OR o.id >= 100000000 OR o.memo NOT LIKE 'new-ins%' \
                         OR o.status = (CASE WHEN o.amount_cents > 100 THEN 'big' ELSE 'small' END)",
        },
        Case {
            name: "create_constraint check",
            migration: "operations:\n  - create_constraint:\n      table: payments\n      name: amount_small\n      type: check\n      columns: [amount_cents]\n      check: amount_cents < 1000000\n      up:\n        amount_cents: LEAST(amount_cents, 999999)\n      down:\n        amount_cents: amount_cents\n",
            old: base_shape("amount_cents", "amount_cents = amount_cents + 1"),
            new: base_shape("amount_cents", "amount_cents = amount_cents + 1"),
            consistent: "n.amount_cents = LEAST(o.amount_cents, 999999)",
        },
        Case {
            name: "two columns in one migration",
            migration: "operations:\n  - alter_column:\n      table: payments\n      column: note\n      nullable: false\n      up: COALESCE(note, 'none')\n      down: note\n  - alter_column:\n      table: payments\n      column: memo\n      nullable: false\n      up: COALESCE(memo, 'none')\n      down: memo\n",
            old: Shape {
                omit_cols: "ref, status, amount_cents, customer_id",
                omit_vals: "'o' || {n}, 'paid', 1, 1",
                ..base_shape("note", "note = 'x' || {n}")
            },
            new: Shape {
                omit_cols: "ref, amount_cents, note, customer_id, memo",
                omit_vals: "'o' || {n}, 1, 'n', 1, 'm'",
                ..base_shape("memo", "memo = 'y' || {n}")
            },
            consistent: "n.note = COALESCE(o.note, 'none') AND n.memo = COALESCE(o.memo, 'none')",
        },
    ]
}

pub const SETUP: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 5) g;
CREATE TABLE payments (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    ref text NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    amount_cents int NOT NULL,
    note text,
    customer_id int,
    memo text,
    touched int NOT NULL DEFAULT 0
);
-- A trigger of the application's own.
CREATE FUNCTION payments_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $$;
CREATE TRIGGER payments_touch BEFORE UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION payments_touch();
INSERT INTO payments (ref, status, amount_cents, note, customer_id, memo)
SELECT 'r' || g, CASE WHEN g % 3 = 0 THEN 'paid' ELSE 'pending' END, g % 700,
       CASE WHEN g % 4 = 0 THEN NULL ELSE 'n' || g END, g % 5 + 1,
       CASE WHEN g % 6 = 0 THEN NULL ELSE 'm' END
  FROM generate_series(1, 3000) g;
ANALYZE payments;
";

/// Stops the backfill after `after` batches, as a kill half-way would leave it.
pub struct StopAfter {
    pub after: u64,
    pub seen: AtomicU64,
}

impl Throttle for StopAfter {
    fn after_batch(&self, _: &BatchStats) -> Decision {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 >= self.after {
            Decision::Stop("test stop".into())
        } else {
            Decision::Continue
        }
    }
}

pub struct Continue;
impl Throttle for Continue {
    fn after_batch(&self, _: &BatchStats) -> Decision {
        Decision::Continue
    }
}

/// `postgres://user@…` with another user and password.
pub fn url_as(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("{scheme}://{user}:{user}@{host}")
}

pub struct Load {
    pub stop: Arc<AtomicBool>,
    pub ok: Arc<AtomicU64>,
    pub errors: Arc<Mutex<Vec<String>>>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn new() -> Load {
        Load {
            stop: Arc::new(AtomicBool::new(false)),
            ok: Arc::new(AtomicU64::new(0)),
            errors: Arc::new(Mutex::new(Vec::new())),
            tasks: Vec::new(),
        }
    }

    pub fn spawn(&mut self, url: String, path: String, shape: &Shape, base: i64, copy: bool) {
        let (stop, ok, errors) = (self.stop.clone(), self.ok.clone(), self.errors.clone());
        let t = |s: &str, n: &str| s.replace("{n}", n);
        let ins = |cols: &str, vals: &str| format!("INSERT INTO payments ({cols}) VALUES ({vals})");
        let statements: Vec<String> = vec![
            ins(shape.cols, &t(shape.vals, "($1::bigint)")),
            ins(shape.omit_cols, &t(shape.omit_vals, "($1::bigint)")),
            format!(
                "INSERT INTO payments ({}) VALUES ({}), ({})",
                shape.cols,
                t(shape.vals, "($1::bigint * 10 + 1)"),
                t(shape.vals, "($1::bigint * 10 + 2)")
            ),
            format!(
                "INSERT INTO payments (id, {}) VALUES ($1::bigint % 3000 + 1, {}) \
                 ON CONFLICT (id) DO UPDATE SET {c} = EXCLUDED.{c}",
                shape.cols,
                t(shape.vals, "($1::bigint * 10 + 3)"),
                c = shape.column
            ),
            format!(
                "UPDATE payments SET {} WHERE id = $1::bigint % 3000 + 1",
                t(shape.set_migrated, "($1::bigint)")
            ),
            "UPDATE payments SET touched = touched WHERE id = ($1::bigint * 7) % 3000 + 1".into(),
            "UPDATE payments SET amount_cents = amount_cents + 1 WHERE id = ($1::bigint * 11) % 3000 + 1"
                .into(),
            "UPDATE payments SET id = 100000000 + $1::bigint WHERE id = ($1::bigint * 13) % 3000 + 1 AND id < 100000000"
                .into(),
            "DELETE FROM payments WHERE id = ($1::bigint * 17) % 3000 + 1".into(),
        ];
        let copy_sql = copy.then(|| format!("COPY payments ({}) FROM STDIN", shape.cols));
        self.tasks.push(tokio::spawn(async move {
            let c = connect(&url).await.unwrap();
            c.batch_execute(&format!("SET search_path TO {path}"))
                .await
                .unwrap();
            // Prepared once and reused through every phase. On the base tables a `SELECT *`
            // changes result type with any ADD COLUMN (PostgreSQL refuses the cached plan),
            // so applications there name their columns; a version's views never change.
            let select = if copy {
                "SELECT id, ref, amount_cents, touched FROM payments WHERE id = $1"
            } else {
                "SELECT * FROM payments WHERE id = $1"
            };
            let select = c.prepare(select).await.unwrap();
            let mut i = base;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let mut res = Ok(());
                for s in &statements {
                    match c.execute(s.as_str(), &[&i]).await {
                        Err(e) if moved_by_another_session(&e) => {}
                        Err(e) => {
                            res = Err(format!("{path}: `{s}`: {e:?}"));
                            break;
                        }
                        Ok(_) => {}
                    }
                }
                if res.is_ok() {
                    if let Err(e) = c.query(&select, &[&(i % 3000 + 1)]).await {
                        res = Err(format!("{path}: prepared select: {e:?}"));
                    }
                }
                if let (Ok(()), Some(sql)) = (&res, &copy_sql) {
                    if let Err(e) = copy_in(&c, sql, i).await {
                        res = Err(format!("{path}: COPY: {e:?}"));
                    }
                }
                match res {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => errors.lock().unwrap().push(e),
                }
            }
        }));
    }

    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let errors = self.errors.lock().unwrap();
        assert!(
            errors.is_empty(),
            "{} failed writes, first: {:?}",
            errors.len(),
            &errors[..errors.len().min(3)]
        );
        self.ok.load(Ordering::Relaxed)
    }
}

/// PostgreSQL's answer (40001, under READ COMMITTED too) to an UPDATE or DELETE of a row
/// that a concurrent UPDATE of its partition key moved to another partition. Only the
/// workload's own sessions move rows (the key-changing UPDATE): ratchet's backfill and
/// triggers never write a partition key, and a column of one cannot be migrated. So this
/// is one application session racing another, which happens without any migration too,
/// not an error the migration causes.
fn moved_by_another_session(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        d.code().code() == "40001" && d.message().contains("moved to another partition")
    })
}

async fn copy_in(
    c: &tokio_postgres::Client,
    sql: &str,
    i: i64,
) -> Result<(), tokio_postgres::Error> {
    use futures_util::SinkExt;
    let sink = c.copy_in(sql).await?;
    futures_util::pin_mut!(sink);
    let row = format!("c{i}\tpaid\t{}\tn\t1\tcopy\n", i % 500);
    sink.send(bytes::Bytes::from(row)).await?;
    sink.finish().await?;
    Ok(())
}

/// Owner and application roles for one test database.
pub async fn roles(db: &TestDb, setup_sql: &str) -> (String, String) {
    let admin = db.client().await;
    let owner = format!("{}_owner", db.name);
    let app = format!("{}_app", db.name);
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{owner}\" LOGIN PASSWORD '{owner}';
             CREATE ROLE \"{app}\" LOGIN PASSWORD '{app}';
             GRANT CREATE ON DATABASE \"{db}\" TO \"{owner}\";
             GRANT CREATE, USAGE ON SCHEMA public TO \"{owner}\";",
            db = db.name
        ))
        .await
        .unwrap();
    let owner_url = url_as(&db.url, &owner);
    let grants = format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON payments, customers TO \"{app}\";
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO \"{app}\";"
    );
    let setup =
        serde_json::json!({"operations": [{"sql": {"up": format!("{setup_sql}{grants}")}}]});
    let files = Files::new();
    let m = files.migration("01_setup.json", &setup.to_string());
    let mut e = Engine::connect(&owner_url, crate::common::config(), Arc::new(Silent))
        .await
        .unwrap();
    e.start(&m).await.unwrap();
    crate::common::complete(&mut e).await.unwrap();
    (owner_url, url_as(&db.url, &app))
}

pub async fn run_case(case: &Case, setup_sql: &str) {
    let db = TestDb::new().await;
    let files = Files::new();
    let (owner_url, app_url) = roles(&db, setup_sql).await;
    let m = files.migration("02_change.yaml", case.migration);
    let config = Config {
        run_backfill: false,
        backfill: ratchet_engine::backfill::BackfillConfig {
            initial: 50,
            min: 20,
            max: 50,
            target: Duration::from_millis(20),
            ..Default::default()
        },
        ..crate::common::config()
    };
    let mut e = Engine::connect(&owner_url, config, Arc::new(Silent))
        .await
        .unwrap();
    // The old version: through its version schema (the views of the setup migration),
    // and on the base tables as an application that never selected a version.
    let old_load = |load: &mut Load, base: i64| {
        load.spawn(app_url.clone(), "public".into(), &case.old, base, true);
        load.spawn(
            app_url.clone(),
            "public_01_setup".into(),
            &case.old,
            base + 500_000,
            false,
        );
    };
    let vs = ratchet_engine::planner::version_schema_name(&m, "public").unwrap();
    let new_load = |load: &mut Load, base: i64| {
        load.spawn(
            app_url.clone(),
            vs.clone(),
            &case.new,
            base + 1_000_000,
            false,
        );
        load.spawn(
            app_url.clone(),
            format!("{vs}, public"),
            &case.new,
            base + 2_000_000,
            false,
        );
    };

    // Expand with nothing backfilled: the old version writes while start runs.
    let mut load = Load::new();
    old_load(&mut load, 10_000);
    let out = e
        .start(&m)
        .await
        .unwrap_or_else(|err| panic!("{}: start: {err}", case.name));
    // The new version is published only once its columns are filled.
    let owner = connect(&owner_url).await.unwrap();
    assert_eq!(
        schema_exists(&owner, &vs).await,
        !out.backfill_left,
        "{}: the version schema exists only without a backfill left",
        case.name
    );
    if !out.backfill_left {
        new_load(&mut load, 20_000);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let n = load.finish().await;
    assert!(n > 10, "{}: the workload ran ({n})", case.name);

    // A backfill stopped half-way, then writes.
    e.config.run_backfill = true;
    e.set_throttle(Arc::new(StopAfter {
        after: 3,
        seen: AtomicU64::new(0),
    }));
    let stopped = e.backfill().await;
    let has_backfill = !e.backfill_progress().await.unwrap().is_empty();
    assert_eq!(
        stopped.is_err(),
        has_backfill,
        "{}: the backfill was stopped half-way",
        case.name
    );
    let mut load = Load::new();
    old_load(&mut load, 30_000);
    if !out.backfill_left {
        new_load(&mut load, 40_000);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;

    // The rest of the backfill while both versions write.
    e.set_throttle(Arc::new(Continue));
    e.backfill()
        .await
        .unwrap_or_else(|err| panic!("{}: backfill: {err}", case.name));
    assert!(schema_exists(&owner, &vs).await, "{}: published", case.name);

    // Both versions write while the validation runs.
    if out.backfill_left {
        new_load(&mut load, 45_000);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(v) = e.validate(false).await.unwrap() {
        assert!(v.passed, "{}: validation: {v:?}", case.name);
    }
    load.finish().await;

    // Both versions read the same logical data.
    let c = connect(&app_url).await.unwrap();
    let bad: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) FROM public.payments o FULL JOIN {vs}.payments n ON n.id = o.id
                  WHERE o.id IS NULL OR n.id IS NULL OR NOT ({})",
                case.consistent
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(bad, 0, "{}: rows differing between the versions", case.name);

    // Contract while the new version writes (the old one is gone by then).
    let mut load = Load::new();
    new_load(&mut load, 50_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    crate::common::complete(&mut e)
        .await
        .unwrap_or_else(|err| panic!("{}: complete: {err}", case.name));
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.finish().await;
}
