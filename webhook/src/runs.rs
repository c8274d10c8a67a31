//! Airflow DAG runs of olo jobs: trigger (from the API or a commit trailer) and follow (state
//! and task instances copied into the state store). Logs are fetched from Airflow on demand.

use std::sync::Arc;

use olo_reconciler::store::{NewAudit, NewRun, Run, RunTrigger, RunUpdate, Store, TaskInstanceRow};
use olo_reconciler::targets::airflow::{Airflow, AirflowError};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::AppState;
use axum::http::StatusCode;

/// Who asked for a run, and why.
pub struct Trigger<'a> {
    pub kind: RunTrigger,
    /// The API token's name, or the commit author.
    pub actor: &'a str,
    /// The commit (for trailers) or the live revision (for API calls).
    pub revision: Option<&'a str>,
}

/// `Olo-Run: <workspace>/<job>` trailers of a commit message, in order, without repeats.
pub fn trailer_runs(message: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in message.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("olo-run") {
            continue;
        }
        let Some((ws, job)) = value.trim().split_once('/') else {
            continue;
        };
        let pair = (ws.trim().to_string(), job.trim().to_string());
        if !pair.0.is_empty() && !pair.1.is_empty() && !out.contains(&pair) {
            out.push(pair);
        }
    }
    out
}

pub fn airflow_error(e: AirflowError) -> ApiError {
    if e.is_temporary() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "airflow_unavailable",
            format!("Airflow did not answer: {e}; try again"),
        )
    } else {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "airflow_refused",
            format!("Airflow refused the request: {e}"),
        )
    }
}

fn airflow(state: &AppState) -> Result<&Arc<dyn Airflow>, ApiError> {
    state.airflow.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "airflow_not_configured",
            "Airflow is not configured: set [airflow] url, username and password_env in olo's settings",
        )
    })
}

/// Triggers a run of a job of the live catalog in Airflow and records it.
pub async fn trigger(
    state: &AppState,
    workspace: &str,
    job: &str,
    conf: Value,
    by: Trigger<'_>,
) -> Result<Run, ApiError> {
    if !conf.is_object() {
        return Err(ApiError::bad_request("`conf` must be a JSON object"));
    }
    let catalog = state.catalog();
    let Some(view) = catalog.as_ref().and_then(|c| c.job(workspace, job)) else {
        return Err(ApiError::not_found(format!(
            "job {workspace}/{job} is not in the live configuration"
        )));
    };
    let dag_id = view.dag_id.clone();
    let airflow = airflow(state)?;
    let run_id = format!(
        "olo__{}__{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    // The trigger's identity travels with the run in Airflow too (`dag_run.conf["olo"]`);
    // olo's own record keeps the caller's conf as given.
    let mut sent = conf.clone();
    sent["olo"] = json!({
        "triggered_by": by.actor,
        "trigger": by.kind.as_str(),
        "revision": by.revision,
    });
    let dag_run = airflow
        .trigger_run(&dag_id, &run_id, &sent)
        .await
        .map_err(airflow_error)?;
    let run = state
        .store
        .insert_run(&NewRun {
            workspace: workspace.to_string(),
            job: job.to_string(),
            dag_id: dag_id.clone(),
            airflow_run_id: run_id.clone(),
            state: dag_run.state.clone(),
            trigger: by.kind,
            triggered_by: Some(by.actor.to_string()),
            revision: by.revision.map(str::to_string),
            conf: conf.clone(),
        })
        .await?;
    state
        .store
        .append_audit(&NewAudit {
            actor: by.actor.to_string(),
            action: "run_trigger".into(),
            target: format!("{workspace}/{job}"),
            revision: by.revision.map(str::to_string),
            details: json!({
                "run": run.id,
                "dag_id": dag_id,
                "airflow_run_id": run_id,
                "trigger": by.kind.as_str(),
                "conf": conf,
            }),
        })
        .await?;
    state.metrics.runs_triggered.inc();
    Ok(run)
}

/// Copies the state and task instances of every active run from Airflow into the store.
/// Returns how many runs were brought up to date.
pub async fn follow_once(store: &dyn Store, airflow: &dyn Airflow) -> Result<usize, String> {
    let active = store.active_runs().await.map_err(|e| e.to_string())?;
    let mut updated = 0;
    for run in active {
        let dag_run = match airflow.dag_run(&run.dag_id, &run.airflow_run_id).await {
            Ok(r) => r,
            Err(e) if e.is_temporary() => return Err(format!("Airflow: {e}")),
            Err(e) => {
                tracing::warn!(
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
            .await
            .map_err(|e| format!("Airflow: {e}"))?;
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
        store
            .upsert_task_instances(run.id, &rows)
            .await
            .map_err(|e| e.to_string())?;
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
            .await
            .map_err(|e| e.to_string())?;
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
            tracing::warn!("following runs: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_name_runs_once_each() {
        let msg = "Add orders job\n\nSome text: here\nOlo-Run: sales/orders_daily\nolo-run:  platform/smoke_test \nOlo-Run: sales/orders_daily\nOlo-Run: nojob\nSigned-off-by: A <a@b>\n";
        assert_eq!(
            trailer_runs(msg),
            [
                ("sales".to_string(), "orders_daily".to_string()),
                ("platform".to_string(), "smoke_test".to_string())
            ]
        );
        assert!(trailer_runs("no trailers").is_empty());
    }
}
