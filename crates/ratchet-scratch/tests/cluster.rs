//! The harness itself: a test database is real, private and usable.

use ratchet_scratch::testing::TestDb;

#[tokio::test]
async fn each_test_gets_its_own_database() {
    let a = TestDb::new().await;
    let b = TestDb::new().await;
    assert_ne!(a.name, b.name);
    let ca = a.client().await;
    ca.batch_execute("CREATE TABLE t (id int)").await.unwrap();
    let cb = b.client().await;
    let n: i64 = cb
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 't' AND relkind = 'r'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "databases of two tests must not share tables");
}
