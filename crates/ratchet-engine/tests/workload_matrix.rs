//! The promise under a real application workload, systematically: for every operation that
//! changes existing data, the old version (the base tables, as an application before its
//! first versioned migration uses them) and the new version (its version schema alone, and
//! with `public` after it, from the moment it is published: once its columns are filled)
//! write the way applications do while each phase runs: nothing backfilled yet
//! (`--no-backfill`), a backfill stopped half-way (as after a kill), the backfill running,
//! the validation, and `complete`. Writes: INSERT with and without the migrated column,
//! multi-row INSERT, upserts, UPDATE of the migrated column, of an unrelated column, of a
//! column `up`/`down` read, of the key, DELETE, `COPY` (base tables), a prepared statement
//! reused across the phases, a user trigger of the table's own. ratchet runs as a role that
//! owns the tables without superuser; the workload runs as a DML-only role that was granted
//! privileges on the tables only. Every statement must succeed, and at the end both
//! versions must read the same logical data (each row checked against `up`/`down`).

mod common;

#[path = "common/workload.rs"]
mod workload;

use std::sync::Arc;

use common::*;
use ratchet_engine::{Engine, Silent};
use ratchet_scratch::testing::{connect, TestDb};
use workload::*;

macro_rules! matrix {
    ($($test:ident => $i:expr),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $test() {
            run_case(&cases()[$i], SETUP).await;
        }
    )*};
}

matrix! {
    alter_column_type_under_every_kind_of_write => 0,
    alter_column_not_null_under_every_kind_of_write => 1,
    alter_column_check_under_every_kind_of_write => 2,
    alter_column_unique_under_every_kind_of_write => 3,
    alter_column_references_under_every_kind_of_write => 4,
    rename_with_a_simple_case_under_every_kind_of_write => 5,
    add_column_with_up_under_every_kind_of_write => 6,
    drop_column_with_down_over_a_default_under_every_kind_of_write => 7,
    create_constraint_under_every_kind_of_write => 8,
    two_columns_in_one_migration_under_every_kind_of_write => 9,
}

#[test]
fn the_matrix_covers_every_case() {
    assert_eq!(cases().len(), 10);
}

/// Privileges granted after `start` reach the live version's views only through
/// `ratchet grants` (Engine::sync_grants): before it the application role is refused on
/// the view, after it the table-level and the column-level grant both work there, and a
/// second run changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_given_after_start_reach_the_version_views_with_ratchet_grants() {
    let db = TestDb::new().await;
    let files = Files::new();
    let (owner_url, app_url) = roles(&db, SETUP).await;
    let owner = connect(&owner_url).await.unwrap();
    owner
        .batch_execute(
            "CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                 body text NOT NULL, tag text);
             INSERT INTO notes (body, tag) VALUES ('a', 'x'), ('b', 'y');",
        )
        .await
        .unwrap();
    let m = files.migration(
        "02_notes.yaml",
        "operations:\n  - add_column:\n      table: notes\n      column: {name: score, type: integer, nullable: true}\n",
    );
    let mut e = Engine::connect(&owner_url, common::config(), Arc::new(Silent))
        .await
        .unwrap();
    let vs = e.start(&m).await.unwrap().version_schema;
    let app = connect(&app_url).await.unwrap();
    let select = format!("SELECT count(*) FROM \"{vs}\".notes");
    let err = app.query_one(&select, &[]).await.unwrap_err();
    assert!(
        format!("{err:?}").contains("permission denied"),
        "not granted yet: {err:?}"
    );

    owner
        .batch_execute(&format!(
            "GRANT SELECT, INSERT ON notes TO \"{app}\";
             GRANT UPDATE (tag) ON notes TO \"{app}\";",
            app = format!("{}_app", db.name)
        ))
        .await
        .unwrap();
    // The table itself is granted now; its view in the version schema is not yet.
    assert!(app.query_one(&select, &[]).await.is_err());

    let synced = e.sync_grants().await.unwrap();
    assert!(synced.contains(&vs), "{synced:?}");
    let n: i64 = app.query_one(&select, &[]).await.unwrap().get(0);
    assert_eq!(n, 2);
    app.batch_execute(&format!(
        "INSERT INTO \"{vs}\".notes (body, score) VALUES ('c', 3);
         UPDATE \"{vs}\".notes SET tag = 'z' WHERE body = 'a';"
    ))
    .await
    .unwrap();
    // The column-level grant stays column-level: body was not granted for UPDATE.
    let err = app
        .batch_execute(&format!("UPDATE \"{vs}\".notes SET body = 'q'"))
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("permission denied"), "{err:?}");
    // Idempotent.
    assert_eq!(e.sync_grants().await.unwrap(), synced);
    common::complete(&mut e).await.unwrap();
    let n: i64 = app.query_one(&select, &[]).await.unwrap().get(0);
    assert_eq!(n, 3, "the grants survive complete");
}
