//! Airflow DAG runs of olo jobs: trigger (from the API or a commit trailer) and follow (state
//! and task instances copied into the state store). Logs are fetched from Airflow on demand.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use olo_reconciler::store::{
    is_terminal_run_state, NewAudit, NewRun, Run, RunTrigger, RunUpdate, Store, TaskInstanceRow,
};
use olo_reconciler::targets::airflow::{Airflow, AirflowError, NewDagRun};
use olo_reconciler::text::first_chars;
use serde_json::{json, Map, Value};

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
    if matches!(e, AirflowError::Conflict { .. }) {
        ApiError::new(StatusCode::CONFLICT, "run_exists", e.to_string())
    } else if e.is_temporary() {
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

/// What a caller asks of a new run besides the job.
#[derive(Debug, Default)]
pub struct RunRequest {
    /// The run's conf: declared params by name (checked against their types), and any other keys
    /// tasks read from `dag_run.conf`. `olo` is reserved for olo's own identity block.
    pub conf: Map<String, Value>,
    /// The logical date the run stands for (`{{ ds }}` in templates); now when not given.
    pub logical_date: Option<DateTime<Utc>>,
    /// A note shown beside the run in Airflow's UI.
    pub note: Option<String>,
}

/// Airflow's limit on a run's note.
const MAX_NOTE_CHARS: usize = 1000;

/// Triggers a run of a job of the live catalog in Airflow and records it.
///
/// Refused before Airflow is asked: a conf that sets `olo` or gives a declared param a value of
/// the wrong type (400), a note over 1,000 characters (400), a job Airflow has not parsed or has
/// paused (409: a paused DAG's run would wait in `queued` forever).
pub async fn trigger(
    state: &AppState,
    workspace: &str,
    job: &str,
    request: RunRequest,
    by: Trigger<'_>,
) -> Result<Run, ApiError> {
    let catalog = state.catalog();
    let Some(view) = catalog.as_ref().and_then(|c| c.job(workspace, job)) else {
        return Err(ApiError::not_found(format!(
            "job {workspace}/{job} is not in the live configuration"
        )));
    };
    if request.conf.contains_key("olo") {
        return Err(ApiError::bad_request(
            "`conf.olo` is olo's own (who triggered the run, and why): use another key",
        ));
    }
    let problems = view.check_conf(&request.conf);
    if !problems.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_conf",
            format!(
                "the conf does not match the params of {workspace}/{job} ({}): {}",
                view.path,
                problems.join("; ")
            ),
        ));
    }
    if let Some(note) = &request.note {
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(ApiError::bad_request(format!(
                "`note` is longer than Airflow's limit of {MAX_NOTE_CHARS} characters"
            )));
        }
    }
    let dag_id = view.dag_id.clone();
    let airflow = airflow(state)?;
    match airflow.dag(&dag_id).await.map_err(airflow_error)? {
        None => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "dag_not_in_airflow",
                format!(
                    "Airflow does not know DAG {dag_id} yet: it has not parsed the file olo wrote; \
                     try again once `olo status` is Ready"
                ),
            ))
        }
        Some(dag) if dag.is_paused => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_paused",
                format!(
                    "job {workspace}/{job} is paused in Airflow, so a run would wait in `queued` \
                     until it is unpaused; set `paused: false` in {} (a Git change) and trigger again",
                    view.path
                ),
            ))
        }
        Some(_) => {}
    }
    let logical_date = request.logical_date.unwrap_or_else(Utc::now);
    let run_id = format!(
        "olo__{}__{}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let conf = Value::Object(request.conf);
    // The trigger's identity travels with the run in Airflow too (`dag_run.conf["olo"]`);
    // olo's own record keeps the caller's conf as given.
    let mut sent = conf.clone();
    sent["olo"] = json!({
        "triggered_by": by.actor,
        "trigger": by.kind.as_str(),
        "revision": by.revision,
    });
    let dag_run = airflow
        .trigger_run(
            &dag_id,
            &NewDagRun {
                run_id: &run_id,
                logical_date,
                conf: &sent,
                note: request.note.as_deref(),
            },
        )
        .await
        .map_err(airflow_error)?;
    let mut run = state
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
    let update = RunUpdate {
        state: dag_run.state.clone(),
        logical_date: dag_run.logical_date.or(Some(logical_date)),
        started_at: dag_run.start_date,
        ended_at: dag_run.end_date,
    };
    state.store.update_run(run.id, &update).await?;
    run.logical_date = update.logical_date;
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
                "logical_date": run.logical_date,
                "conf": conf,
            }),
        })
        .await?;
    state.metrics.runs_triggered.inc();
    Ok(run)
}

/// What an operator may do to a run olo triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop a run that has not finished: Airflow marks it failed (running tasks fail, the rest
    /// are skipped).
    Cancel,
    /// Re-run the failed (and upstream-failed) tasks of a finished run: Airflow clears them and
    /// queues the run again, which olo then follows like a new one.
    ClearFailed,
}

/// Cancels or clears a run in Airflow, with a note naming the caller; records the state Airflow
/// reports and audits it (`run_cancel`, `run_clear`). Cancelling a finished run, or clearing one
/// that goes on, is a 409 and changes nothing.
pub async fn control(
    state: &AppState,
    run: &Run,
    actor: &str,
    control: Control,
) -> Result<Run, ApiError> {
    let finished = is_terminal_run_state(&run.state);
    let who = first_chars(actor, 200);
    let (action, note) = match control {
        Control::Cancel if finished => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "run_finished",
                format!(
                    "run {} of {}/{} has already finished ({}); nothing to cancel",
                    run.id, run.workspace, run.job, run.state
                ),
            ))
        }
        Control::ClearFailed if !finished => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "run_not_finished",
                format!(
                    "run {} of {}/{} is still {}; re-run its failed tasks once it has finished",
                    run.id, run.workspace, run.job, run.state
                ),
            ))
        }
        Control::Cancel => ("run_cancel", format!("cancelled through olo by {who}")),
        Control::ClearFailed => (
            "run_clear",
            format!("failed tasks cleared through olo by {who}"),
        ),
    };
    let airflow = airflow(state)?;
    let dag_run = match control {
        Control::Cancel => {
            airflow
                .cancel_run(&run.dag_id, &run.airflow_run_id, &note)
                .await
        }
        Control::ClearFailed => {
            airflow
                .clear_failed_tasks(&run.dag_id, &run.airflow_run_id, &note)
                .await
        }
    }
    .map_err(airflow_error)?;
    let update = RunUpdate {
        state: dag_run.state,
        logical_date: dag_run.logical_date.or(run.logical_date),
        started_at: dag_run.start_date,
        ended_at: dag_run.end_date,
    };
    state.store.update_run(run.id, &update).await?;
    state
        .store
        .append_audit(&NewAudit {
            actor: actor.to_string(),
            action: action.into(),
            target: format!("{}/{}", run.workspace, run.job),
            revision: run.revision.clone(),
            details: json!({
                "run": run.id,
                "dag_id": run.dag_id,
                "airflow_run_id": run.airflow_run_id,
                "state_before": run.state,
                "state": update.state,
            }),
        })
        .await?;
    Ok(Run {
        state: update.state,
        logical_date: update.logical_date,
        started_at: update.started_at,
        ended_at: update.ended_at,
        ..run.clone()
    })
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
