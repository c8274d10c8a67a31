//! The schema and its migrations, per backend: checks that reopen the database or reach it
//! with raw SQL.

use chrono::{TimeZone, Utc};
use olo_reconciler::store::{RunFilter, RunTrigger, TaskInstanceRow};
use serde_json::json;

use super::fixtures::{assert_recent, audit_entry, new_run, revision, run_ids, task_instance};
use super::harness::TestDb;

pub async fn reopening_runs_migrations_once_and_keeps_data(db: &TestDb) {
    let first = db.open().await;
    first
        .record_revision(&revision("main", "a1"))
        .await
        .unwrap();
    let audit_id = first
        .append_audit(&audit_entry("apply", "main"))
        .await
        .unwrap();
    drop(first);

    let second = db.open().await;
    let third = db.open().await;
    assert!(second.revision("main", "a1").await.unwrap().is_some());
    assert_eq!(third.audit(10, None).await.unwrap()[0].id, audit_id);
    let next = third
        .append_audit(&audit_entry("apply", "main"))
        .await
        .unwrap();
    assert!(next > audit_id);

    // A no-op UPDATE counts the rows of sqlx's bookkeeping table on both backends.
    let applied = db
        .execute("UPDATE _sqlx_migrations SET description = description")
        .await
        .expect("the migrations table exists");
    assert_eq!(applied, db.migration_files(), "each migration applied once");
}

/// The tables later features write (no trait methods yet) exist, with their keys and checks.
pub async fn schema_holds_runs_task_instances_lineage_and_lease(db: &TestDb) {
    drop(db.open().await);
    let run = "INSERT INTO runs (workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
               triggered_by, revision, logical_date, started_at, updated_at) \
               VALUES ('sales', 'orders_daily', 'sales__orders_daily', 'manual__1', 'running', \
               'api', 'ada', 'a1', '2024-05-01T00:00:00.000000Z', \
               '2024-05-01T00:00:01.000000Z', '2024-05-01T00:00:01.000000Z')";
    assert_eq!(db.execute(run).await.unwrap(), 1);
    assert!(
        db.execute(run).await.is_err(),
        "(dag_id, airflow_run_id) is unique"
    );
    let bad_trigger = run
        .replace("'api'", "'cron'")
        .replace("manual__1", "manual__2");
    assert!(
        db.execute(&bad_trigger).await.is_err(),
        "trigger is api|commit|schedule"
    );

    let task = "INSERT INTO task_instances (run_id, task_id, try_number, state, started_at, \
                ended_at, duration_seconds, updated_at) \
                SELECT id, 'extract', 1, 'success', '2024-05-01T00:00:01.000000Z', \
                '2024-05-01T00:00:03.500000Z', 2.5, '2024-05-01T00:00:04.000000Z' FROM runs";
    assert_eq!(db.execute(task).await.unwrap(), 1);
    assert!(
        db.execute(task).await.is_err(),
        "one row per (run, task, map index, try)"
    );
    assert!(
        db.execute(
            "INSERT INTO task_instances (run_id, task_id, try_number, updated_at) \
             VALUES (999999, 'orphan', 1, '2024-05-01T00:00:04.000000Z')"
        )
        .await
        .is_err(),
        "task instances belong to a run"
    );

    let event = "INSERT INTO lineage_events (dedupe_key, event_id, run_id, event_type, \
                 event_time, job_namespace, job_name, raw, received_at) \
                 VALUES ('k1', 'e1', 'r1', 'COMPLETE', '2024-05-01T00:00:05.000000Z', 'olo', \
                 'sales.orders_daily', '{\"eventType\": \"COMPLETE\"}', \
                 '2024-05-01T00:00:06.000000Z')";
    assert_eq!(db.execute(event).await.unwrap(), 1);
    assert!(db.execute(event).await.is_err(), "dedupe_key is unique");

    let edge = |direction: &str, source: &str| {
        format!(
            "INSERT INTO lineage_edges (job_namespace, job_name, dataset_namespace, dataset_name, \
             direction, source, first_seen_at, last_seen_at) \
             VALUES ('olo', 'sales.orders_daily', 's3://lake', 'sales/orders', '{direction}', \
             '{source}', '2024-05-01T00:00:05.000000Z', '2024-05-01T00:00:05.000000Z')"
        )
    };
    assert_eq!(db.execute(&edge("out", "declared")).await.unwrap(), 1);
    assert_eq!(db.execute(&edge("out", "observed")).await.unwrap(), 1);
    assert!(
        db.execute(&edge("out", "declared")).await.is_err(),
        "edges are unique"
    );
    assert!(db.execute(&edge("sideways", "declared")).await.is_err());
    assert!(db.execute(&edge("in", "guessed")).await.is_err());

    let lease = "INSERT INTO leader_lease (name, holder, acquired_at, renewed_at, expires_at) \
                 VALUES ('reconciler', 'replica-1', '2024-05-01T00:00:00.000000Z', \
                 '2024-05-01T00:00:00.000000Z', '2024-05-01T00:00:15.000000Z')";
    assert_eq!(db.execute(lease).await.unwrap(), 1);
    assert!(
        db.execute(lease).await.is_err(),
        "one holder per lease name"
    );
}

/// Runs and task instances an older olo recorded survive migration 0002 (SQLite rebuilds the
/// table), and ids of deleted runs are not given again.
pub async fn migration_0002_keeps_runs_and_task_instances_and_their_ids(db: &TestDb) {
    db.migrate_up_to(1).await;
    for (airflow_run_id, started_at) in [
        ("manual__1", "'2024-05-01T00:00:01.000000Z'"),
        ("manual__2", "NULL"),
        ("manual__3", "NULL"),
    ] {
        let insert = format!(
            "INSERT INTO runs (workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
             triggered_by, revision, logical_date, started_at, updated_at) \
             VALUES ('sales', 'orders', 'sales__orders', '{airflow_run_id}', 'running', 'api', \
             'ada', 'a1', '2024-05-01T00:00:00.000000Z', {started_at}, \
             '2024-05-01T00:00:05.000000Z')"
        );
        assert_eq!(db.execute(&insert).await.unwrap(), 1);
    }
    let task = "INSERT INTO task_instances (run_id, task_id, try_number, state, started_at, \
                duration_seconds, updated_at) \
                SELECT id, 'extract', 1, 'success', '2024-05-01T00:00:01.000000Z', 2.5, \
                '2024-05-01T00:00:04.000000Z' FROM runs WHERE airflow_run_id = 'manual__1'";
    assert_eq!(db.execute(task).await.unwrap(), 1);
    let deleted = "DELETE FROM runs WHERE airflow_run_id = 'manual__3'";
    assert_eq!(db.execute(deleted).await.unwrap(), 1);

    let store = db.open().await;
    let runs = store.runs(&RunFilter::default(), 10, None).await.unwrap();
    assert_eq!(run_ids(&runs), ["manual__2", "manual__1"]);
    let (second, first) = (&runs[0], &runs[1]);
    assert_eq!(first.conf, json!({}));
    assert_eq!(first.trigger, RunTrigger::Api);
    assert_eq!(first.triggered_by.as_deref(), Some("ada"));
    let midnight = |second| Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, second).unwrap();
    assert_eq!(first.logical_date, Some(midnight(0)));
    // Created no later than it started; without a start, when it was last updated.
    assert_eq!(first.created_at, first.started_at.unwrap());
    assert_eq!(second.created_at, second.updated_at);
    assert_eq!(
        store.task_instances(first.id).await.unwrap(),
        [TaskInstanceRow {
            state: Some("success".to_string()),
            started_at: Some(midnight(1)),
            duration_seconds: Some(2.5),
            ..task_instance("extract", -1, 1)
        }]
    );

    let next = store
        .insert_run(&new_run("sales", "orders", "manual__4"))
        .await
        .unwrap();
    assert!(
        next.id > second.id + 1,
        "run id {} was given again (the deleted run had id {})",
        next.id,
        second.id + 1
    );
    assert_recent(next.created_at, "created_at");
    // The task instances still belong to their run.
    let deleted = "DELETE FROM runs WHERE airflow_run_id = 'manual__1'";
    assert_eq!(db.execute(deleted).await.unwrap(), 1);
    assert!(store.task_instances(first.id).await.unwrap().is_empty());
}
