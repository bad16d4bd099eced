//! How the catalog fixtures are made: each `fixtures/catalogs/<name>.sql` runs in a fresh
//! scratch database and `ratchet_engine::catalog::load` of `public` is written next to
//! it as `<name>.json`. Ignored by default (it needs PostgreSQL); see the README in that
//! folder.

use ratchet_scratch::testing::TestDb;

use super::support::fixtures;

#[tokio::test]
#[ignore = "needs PostgreSQL; rewrites tests/fixtures/catalogs/*.json"]
async fn regenerate_catalog_fixtures() {
    let dir = fixtures().join("catalogs");
    let mut sources: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    sources.sort();
    for sql in sources {
        let db = TestDb::new().await;
        let client = db.client().await;
        let ddl = std::fs::read_to_string(&sql).unwrap();
        client
            .batch_execute(&ddl)
            .await
            .unwrap_or_else(|e| panic!("{sql:?}: {e}"));
        let mut cat = ratchet_engine::catalog::load(&client, "public")
            .await
            .unwrap();
        // OIDs differ on every run and the planner does not read them.
        for t in cat.tables.values_mut() {
            t.oid = 0;
        }
        let json = serde_json::to_string_pretty(&cat).unwrap() + "\n";
        std::fs::write(sql.with_extension("json"), json).unwrap();
    }
}
