//! Fixtures: a store with rows in every table, and everything the Store trait shows of it.

use chrono::DateTime;
use chrono::TimeZone;
use chrono::Utc;
use olo_reconciler::store::BranchStatus;
use olo_reconciler::store::InventoryItem;
use olo_reconciler::store::NewAudit;
use olo_reconciler::store::NewLineageEvent;
use olo_reconciler::store::NewRun;
use olo_reconciler::store::ObservedEdge;
use olo_reconciler::store::Person;
use olo_reconciler::store::Revision;
use olo_reconciler::store::RevisionStatus;
use olo_reconciler::store::RunFilter;
use olo_reconciler::store::RunTrigger;
use olo_reconciler::store::RunUpdate;
use olo_reconciler::store::SyncState;
use olo_reconciler::store::TaskInstanceRow;
use serde_json::json;
use serde_json::Value;

use super::harness::*;

pub(crate) fn at(second: u32, micros: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, second).unwrap()
        + chrono::Duration::microseconds(i64::from(micros))
}

pub(crate) fn revision(branch: &str, sha: &str, signed: bool) -> Revision {
    Revision {
        sha: sha.to_string(),
        branch: branch.to_string(),
        author: Person {
            name: "Zoë \"Z\" O'Brien".to_string(),
            email: "zoe@example.com".to_string(),
            time: at(1, 123_456),
        },
        committer: Person {
            name: "Merge Bot".to_string(),
            email: "bot@example.com".to_string(),
            time: at(2, 1),
        },
        message: format!("Change {sha} ✓\n\nWith a body, a tab\tand a backslash \\."),
        signed,
        signature: None,
    }
}

pub(crate) fn audit(action: &str, revision: Option<&str>, details: Value) -> NewAudit {
    NewAudit {
        actor: "Ada Lovelace <ada@example.com>".to_string(),
        action: action.to_string(),
        target: "main".to_string(),
        revision: revision.map(str::to_string),
        details,
    }
}

pub(crate) fn run(airflow_run_id: &str, conf: Value) -> NewRun {
    NewRun {
        workspace: "sales".to_string(),
        job: "orders".to_string(),
        dag_id: "sales__orders".to_string(),
        airflow_run_id: airflow_run_id.to_string(),
        state: "queued".to_string(),
        trigger: RunTrigger::Api,
        triggered_by: Some("api:deploy-bot".to_string()),
        revision: Some("a1".to_string()),
        conf,
    }
}

/// Rows in every table olo's migrations make, with the values that are easy to get wrong:
/// microseconds, floats that need 17 digits, JSON strings and nested JSON, NULLs, booleans,
/// quotes, newlines and non-ASCII text; and a deleted run, so that the runs' id generator is
/// ahead of the highest id.
pub(crate) async fn fill(db: &Db) {
    let store = db.open().await;
    store
        .record_revision(&revision("main", "a1", true))
        .await
        .unwrap();
    store
        .record_revision(&revision("main", "b2", false))
        .await
        .unwrap();
    store
        .record_revision(&revision("feature", "c3", false))
        .await
        .unwrap();
    store
        .set_revision_status("main", "a1", RevisionStatus::Applied, &json!([]))
        .await
        .unwrap();
    let diagnostics = json!([{"file": "w/job.yaml", "line": 3, "message": "bad \"quote\" ✓"}]);
    store
        .set_revision_status("main", "b2", RevisionStatus::Invalid, &diagnostics)
        .await
        .unwrap();
    let body = json!({"z": 1, "a": {"nested": [1, 2.5, null, true, "x"]}, "text": "line\nbreak"});
    let plan = store
        .insert_plan("main", "a1", &json!({"create": 2, "update": 0}), &body)
        .await
        .unwrap();
    store.finish_plan(plan, "applied", None).await.unwrap();
    let failed = store
        .insert_plan("main", "a1", &json!({"create": 1}), &json!({}))
        .await
        .unwrap();
    store
        .finish_plan(failed, "failed", Some("could not deploy DAG sales__orders"))
        .await
        .unwrap();
    store
        .insert_plan("feature", "c3", &json!({}), &json!([]))
        .await
        .unwrap();

    for (target, name) in [
        ("dags", "dags/sales__orders.py"),
        ("files", "trino/rules.json"),
    ] {
        store
            .upsert_inventory(&InventoryItem {
                target: target.to_string(),
                name: name.to_string(),
                hash: format!("sha256:{name}"),
                revision: "a1".to_string(),
            })
            .await
            .unwrap();
    }

    store
        .append_audit(&audit(
            "apply",
            Some("a1"),
            json!({"plan": {"create": 2}, "signed": true}),
        ))
        .await
        .unwrap();
    store
        .append_audit(&audit("invalid_commit", Some("b2"), diagnostics.clone()))
        .await
        .unwrap();
    // A JSON column holding a JSON string.
    store
        .append_audit(&audit("reconcile_request", None, json!("just a string")))
        .await
        .unwrap();

    store
        .set_branch_status(&BranchStatus {
            branch: "main".to_string(),
            state: SyncState::Stalled,
            last_attempted: Some("b2".to_string()),
            last_applied: Some("a1".to_string()),
            message: Some("b2 is invalid".to_string()),
            diagnostics,
            updated_at: at(30, 999_999),
        })
        .await
        .unwrap();
    store
        .set_pending_check(
            "main",
            Some(&olo_reconciler::store::PendingCheck {
                sha: "a1".to_string(),
                plan: json!({"revision": "a1", "changes": [{"name": "dags/w__one.py", "action": "create", "hash": "h"}], "unchanged": 0}),
                since: at(29, 123_456),
            }),
        )
        .await
        .unwrap();
    assert!(store
        .record_delivery("delivery-1", "push", None)
        .await
        .unwrap());

    let first = store
        .insert_run(&run("manual__1", json!({"k": "v", "n": [1, 2]})))
        .await
        .unwrap();
    store
        .update_run(
            first.id,
            &RunUpdate {
                state: "success".to_string(),
                logical_date: Some(at(40, 0)),
                started_at: Some(at(41, 500_000)),
                ended_at: Some(at(45, 7)),
            },
        )
        .await
        .unwrap();
    store
        .upsert_task_instances(
            first.id,
            &[
                TaskInstanceRow {
                    task_id: "extract".to_string(),
                    map_index: -1,
                    try_number: 1,
                    state: Some("success".to_string()),
                    started_at: Some(at(41, 500_000)),
                    ended_at: Some(at(42, 0)),
                    duration_seconds: Some(0.1 + 0.2),
                },
                TaskInstanceRow {
                    task_id: "load".to_string(),
                    map_index: 3,
                    try_number: 2,
                    state: None,
                    started_at: None,
                    ended_at: None,
                    duration_seconds: Some(1e-7),
                },
            ],
        )
        .await
        .unwrap();
    store
        .insert_run(&run("manual__2", json!({})))
        .await
        .unwrap();
    store
        .insert_run(&run("manual__3", json!({})))
        .await
        .unwrap();
    let deleted = db
        .execute("DELETE FROM runs WHERE airflow_run_id = 'manual__3'")
        .await
        .unwrap();
    assert_eq!(deleted, 1);

    let event = NewLineageEvent {
        dedupe_key: "k1".to_string(),
        run_id: Some("01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11".to_string()),
        event_type: Some("COMPLETE".to_string()),
        event_time: at(50, 250),
        job_namespace: Some("olo".to_string()),
        job_name: Some("sales.orders".to_string()),
        raw: json!({"eventType": "COMPLETE", "inputs": [{"name": "raw.orders"}]}),
        edges: vec![ObservedEdge {
            job_namespace: "olo".to_string(),
            job_name: "sales.orders".to_string(),
            dataset_namespace: "s3://lake".to_string(),
            dataset_name: "sales/orders".to_string(),
            direction: "out".to_string(),
        }],
    };
    assert_eq!(store.record_lineage(&[event]).await.unwrap(), [true]);

    // Work handed to the leader and not taken yet.
    store
        .push_work("reconcile", &json!({"reason": "push"}))
        .await
        .unwrap();

    // No trait method writes the lease yet.
    db.execute(
        "INSERT INTO leader_lease (name, holder, acquired_at, renewed_at, expires_at) \
         VALUES ('reconciler', 'replica-1', '2024-05-01T12:00:00.000001Z', \
         '2024-05-01T12:00:05.000000Z', '2024-05-01T12:00:20.000000Z')",
    )
    .await
    .unwrap();
}

/// Everything the Store trait shows, plus the row counts of the tables it does not read.
pub(crate) async fn view(db: &Db) -> Value {
    let store = db.open().await;
    let mut revisions = serde_json::Map::new();
    for branch in ["main", "feature"] {
        let mut rows = Vec::new();
        for r in store.revisions(branch, 100, None).await.unwrap() {
            let plans = store.plans(branch, &r.revision.sha).await.unwrap();
            rows.push(json!({"revision": r, "plans": plans}));
        }
        revisions.insert(branch.to_string(), Value::Array(rows));
    }
    let mut runs = Vec::new();
    for r in store.runs(&RunFilter::default(), 100, None).await.unwrap() {
        let tasks = store.task_instances(r.id).await.unwrap();
        runs.push(json!({"run": r, "tasks": tasks}));
    }
    json!({
        "revisions": revisions,
        "audit": store.audit(100, None).await.unwrap(),
        "inventory": [
            store.inventory("dags").await.unwrap(),
            store.inventory("files").await.unwrap(),
        ],
        "branch_status": [
            store.branch_status("main").await.unwrap(),
            store.branch_status("feature").await.unwrap(),
        ],
        "runs": runs,
        "observed_edges": store.observed_edges().await.unwrap(),
        "lineage_events": store.lineage_event_count().await.unwrap(),
        "webhook_deliveries": db.count("webhook_deliveries").await,
        "leader_lease": db.count("leader_lease").await,
        "work_requests": db.count("work_requests").await,
    })
}
