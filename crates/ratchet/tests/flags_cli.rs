//! `ratchet flags`, `freeze`, `unfreeze`, `clients`, `url` and the gates of `complete`
//! from the command line, against real PostgreSQL, each from its own process.

mod common;

use common::{fails, ok, ratchet};
use ratchet_scratch::testing::TestDb;

const PAYMENTS: &str = "operations:\n  - create_table:\n      name: payments\n      columns:\n        - name: id\n          type: bigint\n          pk: true\n        - name: status\n          type: text\n";
const STATUS: &str = "operations:\n  - alter_column:\n      table: payments\n      column: status\n      type: smallint\n      up: \"CASE status WHEN 'paid' THEN 1 ELSE 0 END\"\n      down: \"CASE status WHEN 1 THEN 'paid' ELSE 'pending' END\"\n";

async fn payments(db: &TestDb, dir: &std::path::Path) -> String {
    let v1 = dir.join("01_payments.yaml");
    std::fs::write(&v1, PAYMENTS).unwrap();
    ok(ratchet(db, &["start", "--complete", v1.to_str().unwrap()]));
    db.client()
        .await
        .execute(
            "INSERT INTO payments SELECT g, CASE WHEN g % 2 = 0 THEN 'paid' ELSE 'pending' END FROM generate_series(1, 200) g",
            &[],
        )
        .await
        .unwrap();
    let v2 = dir.join("02_status.yaml");
    std::fs::write(&v2, STATUS).unwrap();
    v2.to_str().unwrap().to_string()
}

#[tokio::test]
async fn the_sequence_from_the_command_line_with_its_refusals() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = payments(&db, dir.path()).await;
    ok(ratchet(&db, &["start", &v2]));
    let list = ok(ratchet(&db, &["flags", "list"]));
    assert!(
        list.contains("02_status.read_new") && list.contains("off"),
        "{list}"
    );

    let err = fails(
        ratchet(&db, &["flags", "set", "02_status.read_new", "10%"]),
        1,
    );
    assert!(err.contains("next: ratchet validate"), "{err}");
    let err = fails(
        ratchet(&db, &["flags", "set", "02_status.read_new", "110"]),
        2,
    );
    assert!(err.contains("percentage from 0 to 100"), "{err}");
    let err = fails(ratchet(&db, &["complete"]), 1);
    assert!(err.contains("next: ratchet validate"), "{err}");

    ok(ratchet(&db, &["validate"]));
    let out = ok(ratchet(&db, &["flags", "set", "02_status.read_new", "10%"]));
    assert!(out.contains("off -> 10%"), "{out}");
    let err = fails(ratchet(&db, &["complete"]), 1);
    assert!(
        err.contains("ratchet flags set 02_status.read_new on"),
        "{err}"
    );
    let status = ok(ratchet(&db, &["status"]));
    assert!(
        status.contains("reads switched  02_status.read_new is 10%"),
        "{status}"
    );
    assert!(
        status.contains("next: ratchet flags set 02_status.read_new on"),
        "{status}"
    );
    ok(ratchet(&db, &["flags", "set", "02_status.read_new", "on"]));

    // Soak time per environment, from ratchet.toml.
    let toml = dir.path().join("ratchet.toml");
    std::fs::write(&toml, "[gates.min_soak]\nproduction = \"7d\"\n").unwrap();
    let cfg = toml.to_str().unwrap();
    let err = fails(
        ratchet(
            &db,
            &["complete", "--config", cfg, "--environment", "production"],
        ),
        1,
    );
    assert!(
        err.contains("soaked") && err.contains("min_soak 7d"),
        "{err}"
    );
    let shown = ok(ratchet(
        &db,
        &["config", "--config", cfg, "--environment", "production"],
    ));
    assert!(
        shown.contains("gates.min_soak") && shown.contains("7d"),
        "{shown}"
    );

    // An instance on the old version holds the contract back.
    db.client()
        .await
        .execute(
            "SELECT ratchet.heartbeat('billing', 'web-1', 'public_01_payments')",
            &[],
        )
        .await
        .unwrap();
    let clients = ok(ratchet(&db, &["clients", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&clients).unwrap();
    assert_eq!(v["instances"][0]["judged"], "old", "{clients}");
    let err = fails(ratchet(&db, &["complete"]), 1);
    assert!(err.contains("billing/web-1"), "{err}");
    let forced = ok(ratchet(&db, &["complete", "--force"]));
    assert!(forced.contains("02_status"), "{forced}");

    let history = ok(ratchet(
        &db,
        &["flags", "history", "02_status.read_new", "--format", "json"],
    ));
    let rows: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let news: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["detail"]["new"].as_str())
        .collect();
    assert_eq!(news, ["10%", "on"]);
    assert!(rows.iter().all(|r| r["who"] == "postgres"));
    let events = ok(ratchet(&db, &["events", "--format", "json"]));
    assert!(events.contains("\"gates_forced\""), "{events}");
}

#[tokio::test]
async fn a_freeze_from_another_process_blocks_every_change_until_unfreeze() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = payments(&db, dir.path()).await;
    let err = fails(ratchet(&db, &["freeze", "--reason", " "]), 2);
    assert!(err.contains("needs a reason"), "{err}");
    ok(ratchet(&db, &["freeze", "--reason", "INC-7: stabilising"]));
    let status = ok(ratchet(&db, &["status"]));
    assert!(
        status.contains("FROZEN") && status.contains("INC-7"),
        "{status}"
    );
    let err = fails(ratchet(&db, &["start", &v2]), 1);
    assert!(
        err.contains("INC-7") && err.contains("ratchet unfreeze"),
        "{err}"
    );
    let err = fails(ratchet(&db, &["migrate", dir.path().to_str().unwrap()]), 1);
    assert!(err.contains("frozen"), "{err}");
    ok(ratchet(&db, &["unfreeze"]));
    ok(ratchet(&db, &["start", &v2]));
    ok(ratchet(&db, &["freeze", "--reason", "again"]));
    let err = fails(ratchet(&db, &["complete", "--force"]), 1);
    assert!(err.contains("frozen"), "{err}");
    ok(ratchet(&db, &["unfreeze"]));
    let events = ok(ratchet(&db, &["events", "--format", "json"]));
    let kinds: Vec<String> = events
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .filter(|k| k.contains("freeze"))
        .collect();
    assert_eq!(kinds, ["freeze", "unfreeze", "freeze", "unfreeze"]);
}

#[tokio::test]
async fn url_selects_the_version_schema() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let v2 = payments(&db, dir.path()).await;
    ok(ratchet(&db, &["start", &v2]));
    for (version, expected) in [
        ("latest", "\"public_02_status\", \"public\""),
        ("01_payments", "\"public_01_payments\", \"public\""),
    ] {
        let url = ok(ratchet(&db, &["url", "--version", version]));
        let (c, conn) = tokio_postgres::connect(url.trim(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let path: String = c.query_one("SHOW search_path", &[]).await.unwrap().get(0);
        assert_eq!(path.replace(",\"", ", \""), expected);
    }
    let err = fails(ratchet(&db, &["url", "--version", "02_statsu"]), 2);
    assert!(err.contains("did you mean `02_status`"), "{err}");
}
