//! Across backends: a backup of one backend restored into the other.

use olo_reconciler::store::backup::format::Line;
use olo_reconciler::store::backup::Backend;
use serde_json::json;

use super::fixtures::*;
use super::harness::*;
use super::support::*;

/// SQLite → PostgreSQL → SQLite: the values survive both conversions (JSON text and JSONB,
/// 0/1 and booleans, timestamps as text and TIMESTAMPTZ), and each store gives fresh ids.
#[tokio::test]
async fn a_sqlite_backup_restores_into_postgres_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::new(Backend::Sqlite).await;
    let postgres = Db::new(Backend::Postgres).await;
    let back = Db::new(Backend::Sqlite).await;
    fill(&sqlite).await;
    let expected = view(&sqlite).await;

    let from_sqlite = dir.path().join("sqlite.jsonl");
    backup_of(&sqlite, &from_sqlite).await;
    restore(&postgres, &from_sqlite, false).await.unwrap();
    assert_eq!(view(&postgres).await, expected);

    let from_postgres = dir.path().join("postgres.jsonl");
    let taken = backup_of(&postgres, &from_postgres).await;
    assert_eq!(taken.header.backend, Backend::Postgres);
    assert_eq!(taken.header.sequences["runs"], 3);
    // TIMESTAMPTZ values are written in SQLite's one text form, so that SQLite's text order
    // stays time order.
    let mut timestamps = 0;
    for line in decoded(&from_postgres) {
        let Line::Row { table, row } = line else {
            continue;
        };
        for column in &taken.header.table(&table).unwrap().columns {
            if column.sql_type != "timestamp with time zone" || row[&column.name].is_null() {
                continue;
            }
            let text = row[&column.name].as_str().unwrap();
            let form = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.6fZ");
            assert!(
                form.is_ok() && text.len() == 27,
                "{table}.{}: {text}",
                column.name
            );
            timestamps += 1;
        }
    }
    assert!(timestamps > 20, "{timestamps} timestamps");
    restore(&back, &from_postgres, false).await.unwrap();
    assert_eq!(view(&back).await, expected);

    for db in [&postgres, &back] {
        let store = db.open().await;
        assert_eq!(
            store
                .insert_run(&run("manual__4", json!({})))
                .await
                .unwrap()
                .id,
            4
        );
        assert_eq!(
            store
                .append_audit(&audit("apply", None, json!({})))
                .await
                .unwrap(),
            4
        );
    }
    sqlite.finish().await;
    postgres.finish().await;
    back.finish().await;
}
