//! Round trips: a restored store holds every row, a backup is one snapshot, new rows get fresh ids, and the audit log is paged from its oldest entry.

use olo_reconciler::store;
use olo_reconciler::store::backup;
use olo_reconciler::store::backup::Backend;
use olo_reconciler::store::backup::Progress;
use serde_json::json;
use std::sync::Mutex;

use super::fixtures::*;
use super::harness::*;
use super::support::*;

pub(crate) async fn a_restored_store_holds_every_row_of_the_backup(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (original, copy) = (Db::new(backend).await, Db::new(backend).await);
    fill(&original).await;
    let file = dir.path().join("olo.backup.jsonl");
    let reports = Mutex::new(Vec::new());
    let record = |p: Progress<'_>| {
        if p.done {
            reports.lock().unwrap().push((p.table.to_string(), p.rows));
        }
    };
    let taken = backup::backup(&original.url, &file, &record).await.unwrap();

    assert_eq!(taken.header.backend, backend);
    let tables: Vec<&str> = taken
        .header
        .tables
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let mut sorted = tables.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "audit_log",
            "branch_status",
            "inventory",
            "leader_lease",
            "lineage_edges",
            "lineage_events",
            "pending_checks",
            "plans",
            "revisions",
            "runs",
            "task_instances",
            "webhook_deliveries",
            "work_requests"
        ],
        "every table of the migrations but sqlx's own"
    );
    let position = |t: &str| tables.iter().position(|x| *x == t).unwrap();
    assert!(position("revisions") < position("plans"));
    assert!(position("runs") < position("task_instances"));
    assert!(
        taken.rows.values().all(|&n| n > 0),
        "the fixture fills every table: {:?}",
        taken.rows
    );
    assert_eq!(taken.rows["runs"], 2);
    assert_eq!(taken.rows["audit_log"], 3);
    // The runs' generator gave out the id of the deleted run.
    assert_eq!(taken.header.sequences["runs"], 3);
    // One report per table, with its rows, in the file's order.
    let reported = reports.into_inner().unwrap();
    assert_eq!(
        reported,
        tables
            .iter()
            .map(|t| (t.to_string(), taken.rows[*t]))
            .collect::<Vec<_>>()
    );
    assert_eq!(taken.bytes, std::fs::metadata(&file).unwrap().len());
    assert!(!dir.path().join("olo.backup.jsonl.partial").exists());

    let restored = restore(&copy, &file, false).await.unwrap();
    assert_eq!(restored.rows, taken.rows);
    assert_eq!(view(&copy).await, view(&original).await);

    // A backup of the copy holds the same rows, value for value.
    let again = dir.path().join("again.jsonl");
    let retaken = backup_of(&copy, &again).await;
    assert_eq!(row_lines(&again), row_lines(&file));
    assert_eq!(retaken.header.tables, taken.header.tables);
    assert_eq!(retaken.header.sequences, taken.header.sequences);
    assert_eq!(retaken.header.migrations, taken.header.migrations);
    original.finish().await;
    copy.finish().await;
}

/// Rows written while a backup runs (here: as soon as its first table is done, before it reads
/// the revisions, plans and runs) are not in it: it reads one snapshot.
pub(crate) async fn a_backup_is_one_snapshot_while_olo_writes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(backend).await;
    fill(&db).await;
    let url = db.url.clone();
    let wrote = Mutex::new(false);
    let write_once = |p: Progress<'_>| {
        let mut wrote = wrote.lock().unwrap();
        if !p.done || *wrote {
            return;
        }
        *wrote = true;
        // Another connection, on a thread and runtime of its own: the backup waits meanwhile.
        std::thread::scope(|s| {
            s.spawn(|| {
                let runtime = tokio::runtime::Runtime::new().unwrap();
                runtime.block_on(async {
                    let store = store::open(&url).await.unwrap();
                    store
                        .record_revision(&revision("main", "late", false))
                        .await
                        .unwrap();
                    store
                        .insert_plan("main", "late", &json!({}), &json!({}))
                        .await
                        .unwrap();
                    store
                        .insert_run(&run("manual__late", json!({})))
                        .await
                        .unwrap();
                    store
                        .append_audit(&audit("apply", Some("late"), json!({})))
                        .await
                        .unwrap();
                });
            })
            .join()
            .unwrap();
        });
    };
    let file = dir.path().join("b.jsonl");
    let taken = backup::backup(&db.url, &file, &write_once).await.unwrap();
    assert!(
        *wrote.lock().unwrap(),
        "the writes happened during the backup"
    );
    assert_eq!(taken.header.tables[0].name, "audit_log");
    assert_eq!(taken.rows["revisions"], 3);
    assert_eq!(taken.rows["plans"], 3);
    assert_eq!(taken.rows["runs"], 2);
    assert_eq!(taken.rows["audit_log"], 3);
    assert!(!std::fs::read_to_string(&file).unwrap().contains("late"));
    // They are in the store, for the next backup.
    let next = backup_of(&db, &dir.path().join("next.jsonl")).await;
    assert_eq!(
        (
            next.rows["revisions"],
            next.rows["plans"],
            next.rows["runs"],
            next.rows["audit_log"]
        ),
        (4, 4, 3, 4)
    );
    db.finish().await;
}

pub(crate) async fn new_rows_after_a_restore_get_fresh_ids_and_the_audit_log_stays_append_only(
    backend: Backend,
) {
    let (_dir, original, copy, file) = backed_up(backend).await;
    restore(&copy, &file, false).await.unwrap();

    let store = copy.open().await;
    let audit_ids: Vec<i64> = store
        .audit(100, None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let id = store
        .append_audit(&audit("apply", None, json!({})))
        .await
        .unwrap();
    assert!(
        id > *audit_ids.iter().max().unwrap(),
        "audit id {id} given again"
    );
    let plan_ids: Vec<i64> = store
        .plans("main", "a1")
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    let plan = store
        .insert_plan("main", "a1", &json!({}), &json!({}))
        .await
        .unwrap();
    assert!(plan > *plan_ids.iter().max().unwrap());
    // Above the deleted run's id too, as in the original store.
    let next_run = store
        .insert_run(&run("manual__4", json!({})))
        .await
        .unwrap();
    assert_eq!(next_run.id, 4);
    // Every table's id generator, identity column or serial: the fixture's work request has id 1.
    store
        .push_work("reconcile", &json!({"reason": "after the restore"}))
        .await
        .unwrap();
    assert_eq!(store.take_work(10).await.unwrap().len(), 2);
    store
        .record_revision(&revision("main", "d4", false))
        .await
        .unwrap();
    assert_eq!(
        store.revisions("main", 10, None).await.unwrap()[0]
            .revision
            .sha,
        "d4"
    );

    let update = copy.execute("UPDATE audit_log SET actor = 'mallory'").await;
    assert!(
        update.is_err(),
        "UPDATE audit_log was allowed after a restore"
    );
    let delete = copy.execute("DELETE FROM audit_log").await;
    assert!(
        delete.is_err(),
        "DELETE FROM audit_log was allowed after a restore"
    );
    drop(store);
    original.finish().await;
    copy.finish().await;
}

pub(crate) async fn audit_oldest_first_pages_from_the_oldest_entry(backend: Backend) {
    let db = Db::new(backend).await;
    let store = db.open().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            store
                .append_audit(&audit("apply", None, json!({ "n": n })))
                .await
                .unwrap(),
        );
    }
    let page = |limit, after| {
        let store = &store;
        async move {
            store
                .audit_oldest_first(limit, after)
                .await
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(2, None).await, ids[..2]);
    assert_eq!(page(2, Some(ids[1])).await, ids[2..4]);
    assert_eq!(page(2, Some(ids[3])).await, ids[4..]);
    assert!(page(2, Some(ids[4])).await.is_empty());
    assert_eq!(page(100, None).await, ids);
    let entries = store.audit_oldest_first(1, None).await.unwrap();
    assert_eq!(entries[0].details, json!({"n": 0}));
    drop(store);
    db.finish().await;
}
