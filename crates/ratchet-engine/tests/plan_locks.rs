//! `ratchet plan` claims a lock for every statement; rehearsals and monitors will rely on
//! those claims. Here each claim is checked against `pg_locks` on a real server: every
//! statement of a plan runs in a transaction of its own, and the strongest lock it really
//! took on each table must be the one the plan names.

mod common;

use common::*;
use ratchet_engine::plan::{Action, Phase, Plan};
use ratchet_scratch::testing::TestDb;

const MODES: [&str; 8] = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

fn pg_name(mode: &str) -> String {
    mode.split(' ')
        .map(|w| {
            let w = w.to_lowercase();
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<String>()
        + "Lock"
}

#[tokio::test]
async fn every_claimed_lock_is_the_lock_postgres_takes() {
    let db = TestDb::new().await;
    let files = Files::new();
    let e = setup_users(&db, &files, 10).await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE public.people (id int PRIMARY KEY, name text CONSTRAINT name_length CHECK (length(name) > 1));
         CREATE TABLE public.old_stuff (id int)",
    )
    .await
    .unwrap();
    let m = files.migration(
        "02_many.yaml",
        r#"
operations:
  - add_column:
      table: users
      column:
        name: score
        type: int
        default: "0"
        check:
          name: score_positive
          constraint: score >= 0
  - add_column:
      table: users
      column:
        name: referrer
        type: bigint
        nullable: true
        references:
          name: users_referrer_fk
          table: users
          column: id
  - create_table:
      name: orders
      columns:
        - name: id
          type: int
          pk: true
        - name: user_id
          type: bigint
          references:
            name: orders_user_fk
            table: users
            column: id
  - set_replica_identity:
      table: people
      identity:
        type: full
  - rename_column:
      table: users
      from: name
      to: full_name
  - rename_constraint:
      table: people
      from: name_length
      to: name_length_check
  - rename_table:
      from: people
      to: persons
  - drop_table:
      name: old_stuff
"#,
    );
    let plan = e.plan(&m).await.unwrap();
    let checked = check_claims(&c, &plan).await;
    assert!(checked >= 8, "checked {checked} claims");
}

/// Run every statement of `plan`'s start and complete, each transactional one in a
/// transaction of its own, and compare each lock it claims with the strongest `pg_locks`
/// shows on that relation. Returns how many claims were checked.
async fn check_claims(c: &tokio_postgres::Client, plan: &Plan) -> usize {
    let mut checked = 0;
    for phase in [Phase::Start, Phase::Complete] {
        for (_, step) in plan.steps_of(phase) {
            let statements = match &step.action {
                Action::Transaction { statements, .. } => statements,
                Action::CreateIndexConcurrently { statement, .. }
                | Action::DropIndexConcurrently { statement }
                | Action::NoTransaction { statement } => {
                    c.batch_execute(&statement.sql).await.unwrap();
                    continue;
                }
                _ => continue,
            };
            // Each statement in a transaction of its own, committed: the plan's effects
            // build up as in a real run, and each statement's own locks are visible.
            for s in statements {
                if s.sql.starts_with("DROP SCHEMA") {
                    continue;
                }
                // Relations by OID: a dropped or renamed table no longer has its name.
                let mut oids = Vec::new();
                for lock in &s.locks {
                    let oid: Option<u32> = c
                        .query_one("SELECT to_regclass($1)::oid", &[&lock.on])
                        .await
                        .unwrap()
                        .get(0);
                    oids.push(oid.expect("claimed relation exists"));
                }
                c.batch_execute("BEGIN").await.unwrap();
                c.batch_execute(&s.sql)
                    .await
                    .unwrap_or_else(|err| panic!("{}: {err}", s.sql));
                for (lock, oid) in s.locks.iter().zip(&oids) {
                    let modes: Vec<String> = c
                        .query(
                            "SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = $1",
                            &[oid],
                        )
                        .await
                        .unwrap()
                        .iter()
                        .map(|r| r.get(0))
                        .collect();
                    let strongest = modes
                        .iter()
                        .max_by_key(|m| MODES.iter().position(|x| x == m))
                        .cloned();
                    assert_eq!(
                        strongest.as_deref(),
                        Some(pg_name(lock.mode.name()).as_str()),
                        "`{}` claims {} on {}; pg_locks: {modes:?}",
                        s.sql,
                        lock.mode,
                        lock.on,
                    );
                    checked += 1;
                }
                c.batch_execute("COMMIT").await.unwrap();
            }
        }
    }
    checked
}

/// The same on a partitioned table of 8 partitions: the parent's `ON ONLY` index, each
/// partition's concurrent build and attach, a foreign key by this server version's route
/// (through the partitions before PostgreSQL 18: each one's key, its validation, the
/// parent's adopting them), statements on the parent that take its lock on every partition
/// too, and the partitioned `DROP INDEX`.
#[tokio::test]
async fn every_claimed_lock_on_a_partitioned_table_is_the_lock_postgres_takes() {
    let db = TestDb::new().await;
    let files = Files::new();
    let c = db.client().await;
    let mut partitions = String::new();
    for i in 0..8 {
        partitions.push_str(&format!(
            "CREATE TABLE public.events_p{i} PARTITION OF public.events FOR VALUES WITH (MODULUS 8, REMAINDER {i});"
        ));
    }
    c.batch_execute(&format!(
        "CREATE TABLE public.accounts (id int PRIMARY KEY);
         INSERT INTO public.accounts VALUES (1);
         CREATE TABLE public.events (id bigint PRIMARY KEY, kind text NOT NULL, account_id int)
             PARTITION BY HASH (id);
         {partitions}
         CREATE INDEX events_old_idx ON public.events (kind);
         INSERT INTO public.events SELECT g, 'k', 1 FROM generate_series(1, 100) g;"
    ))
    .await
    .unwrap();
    let e = engine(&db).await;
    let m = files.migration(
        "02_partitioned.yaml",
        r#"
operations:
  - create_index:
      name: events_kind_idx
      table: events
      columns:
        - column: kind
  - alter_column:
      table: events
      column: account_id
      references:
        name: events_account_fk
        table: accounts
        column: id
  - add_column:
      table: events
      column:
        name: score
        type: int
        default: "0"
        check:
          name: events_score_positive
          constraint: score >= 0
  - alter_column:
      table: events
      column: kind
      default: "'none'"
  - drop_index:
      name: events_old_idx
"#,
    );
    let plan = e.plan(&m).await.unwrap();
    let checked = check_claims(&c, &plan).await;
    assert!(checked >= 60, "checked {checked} claims");
}
