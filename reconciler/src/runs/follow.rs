//! Following runs: the state and task instances of every active run copied from Airflow into the
//! state store.

use std::sync::Arc;

use crate::store::{RunUpdate, Store, TaskInstanceRow};
use crate::targets::airflow::Airflow;

use super::RunError;

/// Copies the state and task instances of every active run from Airflow into the store.
/// Returns how many runs were brought up to date. A run Airflow refuses to show (a permanent
/// error) is skipped with a warning; a temporary error stops the round.
pub async fn follow_once(store: &dyn Store, airflow: &dyn Airflow) -> Result<usize, RunError> {
    let active = store.active_runs().await?;
    let mut updated = 0;
    for run in active {
        let dag_run = match airflow.dag_run(&run.dag_id, &run.airflow_run_id).await {
            Ok(r) => r,
            Err(e) if e.is_temporary() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(
                    run = run.id,
                    dag_id = %run.dag_id,
                    "run {} ({} {}): {e}",
                    run.id,
                    run.dag_id,
                    run.airflow_run_id
                );
                continue;
            }
        };
        let tis = airflow
            .task_instances(&run.dag_id, &run.airflow_run_id)
            .await?;
        let rows: Vec<TaskInstanceRow> = tis
            .into_iter()
            .map(|t| TaskInstanceRow {
                task_id: t.task_id,
                map_index: t.map_index,
                // Airflow says try 0 until a task's first try starts: that is try 1 to come,
                // not a try of its own (else a placeholder row would outlive the real one).
                try_number: t.try_number.max(1),
                state: t.state,
                started_at: t.start_date,
                ended_at: t.end_date,
                duration_seconds: t.duration,
            })
            .collect();
        store.upsert_task_instances(run.id, &rows).await?;
        store
            .update_run(
                run.id,
                &RunUpdate {
                    state: dag_run.state,
                    logical_date: dag_run.logical_date,
                    started_at: dag_run.start_date,
                    ended_at: dag_run.end_date,
                },
            )
            .await?;
        updated += 1;
    }
    Ok(updated)
}

/// Follows active runs forever, every `every`.
pub async fn follow(store: Arc<dyn Store>, airflow: Arc<dyn Airflow>, every: std::time::Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(e) = follow_once(store.as_ref(), airflow.as_ref()).await {
            tracing::warn!(error = %crate::controller::chain(&e), "following runs: {}", crate::controller::chain(&e));
        }
    }
}
