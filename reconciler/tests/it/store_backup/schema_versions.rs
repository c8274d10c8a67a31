//! Schema versions: a backup of a newer schema is refused, one of an older schema is restored then upgraded, and a store at another schema version is refused.

use olo_reconciler::store::backup;
use olo_reconciler::store::backup::format::Line;
use olo_reconciler::store::backup::Backend;
use olo_reconciler::store::backup::BackupError;
use olo_reconciler::store::RunFilter;
use serde_json::json;

use super::harness::*;
use super::support::*;

pub(crate) async fn restore_refuses_a_backup_of_a_newer_schema(backend: Backend) {
    let (dir, original, copy, file) = backed_up(backend).await;
    let taken = backup::check(&file).await.unwrap();
    let known = taken.header.migrations;
    let mut lines = decoded(&file);
    if let Line::Header(header) = &mut lines[0] {
        header.migrations = known + 1;
        header.olo = "9.9.9".to_string();
    }
    let newer = dir.path().join("newer.jsonl");
    write_backup(&newer, &lines);

    let err = restore(&copy, &newer, false).await.unwrap_err();
    match &err {
        BackupError::NewerSchema {
            backup, known: k, ..
        } => {
            assert_eq!((*backup, *k), (known + 1, known));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "the backup is at schema version {}, and this olo knows versions up to {known}: \
             restore it with olo 9.9.9 (which wrote it) or newer",
            known + 1
        )
    );
    assert!(matches!(
        backup::check(&newer).await,
        Err(BackupError::NewerSchema { .. })
    ));
    assert!(!copy.has_tables().await);
    original.finish().await;
    copy.finish().await;
}

/// A store an olo of schema version 1 left: a revision, a run and its task instance.
pub(crate) async fn fill_at_version_1(db: &Db) {
    db.migrate_up_to(1).await;
    for sql in [
        "INSERT INTO revisions (branch, sha, author_name, author_email, author_time, \
         committer_name, committer_email, committer_time, message, signed, seen_at) \
         VALUES ('main', 'a1', 'Ada', 'ada@example.com', '2024-05-01T00:00:00.000000Z', 'Bot', \
         'bot@example.com', '2024-05-01T00:00:00.000000Z', 'first', TRUE, \
         '2024-05-01T00:00:01.000000Z')",
        "INSERT INTO runs (workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
         triggered_by, revision, logical_date, started_at, updated_at) \
         VALUES ('sales', 'orders', 'sales__orders', 'manual__1', 'success', 'api', 'ada', 'a1', \
         '2024-05-01T00:00:00.000000Z', '2024-05-01T00:00:01.000000Z', \
         '2024-05-01T00:00:05.000000Z')",
        "INSERT INTO task_instances (run_id, task_id, try_number, state, duration_seconds, \
         updated_at) SELECT id, 'extract', 1, 'success', 2.5, '2024-05-01T00:00:04.000000Z' \
         FROM runs",
    ] {
        assert_eq!(db.execute(sql).await.unwrap(), 1, "{sql}");
    }
}

pub(crate) async fn a_backup_of_an_older_schema_is_restored_then_upgraded(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (old, copy) = (Db::new(backend).await, Db::new(backend).await);
    fill_at_version_1(&old).await;
    let file = dir.path().join("v1.jsonl");
    let taken = backup_of(&old, &file).await;
    assert_eq!(
        taken.header.migrations, 1,
        "a backup does not migrate the store"
    );
    let runs = taken.header.table("runs").unwrap();
    assert!(!runs.columns.iter().any(|c| c.name == "conf"));

    restore(&copy, &file, false).await.unwrap();
    let applied = backup::open(&copy.url, false)
        .await
        .unwrap()
        .applied_migrations()
        .await
        .unwrap();
    let newest = backup::open(&copy.url, false)
        .await
        .unwrap()
        .known_migrations();
    assert!(newest > 1);
    assert_eq!(applied, Some(newest), "the restored store was upgraded");

    let store = copy.open().await;
    let runs = store.runs(&RunFilter::default(), 10, None).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].conf, json!({}));
    assert_eq!(Some(runs[0].created_at), runs[0].started_at);
    assert_eq!(
        store.task_instances(runs[0].id).await.unwrap()[0].duration_seconds,
        Some(2.5)
    );
    let revision = store.revision("main", "a1").await.unwrap().unwrap();
    assert!(revision.revision.signed);
    drop(store);
    old.finish().await;
    copy.finish().await;
}

pub(crate) async fn a_store_at_another_schema_version_is_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (old, current) = (Db::new(backend).await, Db::new(backend).await);
    fill_at_version_1(&old).await;
    let file = dir.path().join("v1.jsonl");
    backup_of(&old, &file).await;
    drop(current.open().await);

    let err = restore(&current, &file, true).await.unwrap_err();
    assert!(
        matches!(err, BackupError::SchemaDiffers { backup: 1, store } if store > 1),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("restore into a new, empty database"),
        "{err}"
    );
    old.finish().await;
    current.finish().await;
}
