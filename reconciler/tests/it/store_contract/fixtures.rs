//! Fixtures the checks share: rows to write, and assertions about what comes back.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use olo_reconciler::store::{
    self, BranchStatus, InventoryItem, NewAudit, NewRun, Person, Revision, Run, RunTrigger,
    RunUpdate, Store, StoreError, SyncState, TaskInstanceRow,
};
use serde_json::json;

pub fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, second).unwrap()
}

pub fn revision(branch: &str, sha: &str) -> Revision {
    Revision {
        sha: sha.to_string(),
        branch: branch.to_string(),
        author: Person {
            name: "Ada Lovelace".to_string(),
            email: "ada@example.com".to_string(),
            time: at(1),
        },
        committer: Person {
            name: "Grace Hopper".to_string(),
            email: "grace@example.com".to_string(),
            time: at(2),
        },
        message: format!("Change {sha}\n\nWith a body."),
        signed: false,
        signature: None,
    }
}

pub fn item(target: &str, name: &str, hash: &str, revision: &str) -> InventoryItem {
    InventoryItem {
        target: target.to_string(),
        name: name.to_string(),
        hash: hash.to_string(),
        revision: revision.to_string(),
    }
}

pub fn audit_entry(action: &str, target: &str) -> NewAudit {
    NewAudit {
        actor: "Ada Lovelace <ada@example.com>".to_string(),
        action: action.to_string(),
        target: target.to_string(),
        revision: None,
        details: json!({}),
    }
}

pub fn branch_status(branch: &str, state: SyncState) -> BranchStatus {
    BranchStatus {
        branch: branch.to_string(),
        state,
        last_attempted: None,
        last_applied: None,
        message: None,
        diagnostics: json!([]),
        updated_at: at(30),
    }
}

/// Asserts `time` is the store's clock reading of about now (same machine: a few seconds).
pub fn assert_recent(time: DateTime<Utc>, what: &str) {
    let drift = (Utc::now() - time).num_seconds().abs();
    assert!(drift < 30, "{what} = {time} is not about now");
}

/// Lets the clock move on, so consecutive writes get distinct timestamps.
pub async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

pub fn shas(rows: &[store::RevisionRow]) -> Vec<&str> {
    rows.iter().map(|r| r.revision.sha.as_str()).collect()
}

/// A queued API run of `workspace`/`job`, DAG `<workspace>__<job>`.
pub fn new_run(workspace: &str, job: &str, airflow_run_id: &str) -> NewRun {
    NewRun {
        workspace: workspace.to_string(),
        job: job.to_string(),
        dag_id: format!("{workspace}__{job}"),
        airflow_run_id: airflow_run_id.to_string(),
        state: "queued".to_string(),
        trigger: RunTrigger::Api,
        triggered_by: Some("api:deploy-bot".to_string()),
        revision: Some("a1".to_string()),
        conf: json!({}),
    }
}

/// A run of `sales`/`orders` in `state`.
pub async fn run_in_state(store: &dyn Store, airflow_run_id: &str, state: &str) -> Run {
    let run = store
        .insert_run(&new_run("sales", "orders", airflow_run_id))
        .await
        .unwrap();
    let update = RunUpdate {
        state: state.to_string(),
        logical_date: None,
        started_at: None,
        ended_at: None,
    };
    store.update_run(run.id, &update).await.unwrap();
    store.run(run.id).await.unwrap().unwrap()
}

pub fn run_ids(runs: &[Run]) -> Vec<&str> {
    runs.iter().map(|r| r.airflow_run_id.as_str()).collect()
}

pub fn task_instance(task_id: &str, map_index: i64, try_number: i64) -> TaskInstanceRow {
    TaskInstanceRow {
        task_id: task_id.to_string(),
        map_index,
        try_number,
        state: None,
        started_at: None,
        ended_at: None,
        duration_seconds: None,
    }
}

pub fn assert_query_error<T: std::fmt::Debug>(result: store::StoreResult<T>, method: &str) {
    match result {
        Err(StoreError::Query { what, .. }) => assert_eq!(what, method),
        other => panic!("expected StoreError::Query from {method}, got {other:?}"),
    }
}
