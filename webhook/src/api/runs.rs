//! The run routes: trigger a job's run or a backfill, list and read runs, cancel or clear one,
//! its task instances, task logs (read from Airflow) and MLflow runs.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use olo_reconciler::runs::{BackfillRequest, Control, RunRequest, TriggeredBy};
use olo_reconciler::store::{RunFilter, RunTrigger};
use olo_reconciler::targets::airflow::Reprocess;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{id_cursor, limit};
use crate::access::Role;
use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    #[serde(default)]
    pub conf: Option<Value>,
    /// RFC 3339 (`2026-03-01T00:00:00Z`) or a date (`2026-03-01`, midnight UTC); now if absent.
    #[serde(default)]
    pub logical_date: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

impl TriggerBody {
    fn into_request(self) -> Result<RunRequest, ApiError> {
        let conf = conf_object(self.conf)?;
        let logical_date = self
            .logical_date
            .as_deref()
            .map(|text| {
                parse_logical_date(text).ok_or_else(|| {
                    ApiError::bad_request(
                        "`logical_date` must be an RFC 3339 time with an offset \
                         (2026-03-01T00:00:00Z) or a date (2026-03-01)",
                    )
                })
            })
            .transpose()?;
        Ok(RunRequest {
            conf,
            logical_date,
            note: self.note,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillBody {
    /// The first and last logical dates, each RFC 3339 or a date (midnight UTC).
    pub from_date: String,
    pub to_date: String,
    #[serde(default)]
    pub conf: Option<Value>,
    /// `none` (default): leave intervals that have a run alone; `failed`: run failed ones
    /// again; `completed`: run every one again.
    #[serde(default)]
    pub reprocess: Reprocess,
    /// How many of its runs Airflow runs at once (1 to 100; default 1).
    #[serde(default)]
    pub max_active_runs: Option<u32>,
    #[serde(default)]
    pub run_backwards: bool,
}

impl BackfillBody {
    fn into_request(self) -> Result<BackfillRequest, ApiError> {
        let date = |name: &str, text: &str| {
            parse_logical_date(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{name}` must be an RFC 3339 time with an offset (2026-03-01T00:00:00Z) \
                     or a date (2026-03-01)"
                ))
            })
        };
        let max_active_runs = self.max_active_runs.unwrap_or(1);
        if !(1..=100).contains(&max_active_runs) {
            return Err(ApiError::bad_request(
                "`max_active_runs` must be between 1 and 100",
            ));
        }
        Ok(BackfillRequest {
            from: date("from_date", &self.from_date)?,
            to: date("to_date", &self.to_date)?,
            conf: conf_object(self.conf)?,
            reprocess: self.reprocess,
            max_active_runs,
            run_backwards: self.run_backwards,
        })
    }
}

/// A body's `conf`: a JSON object, or nothing.
fn conf_object(conf: Option<Value>) -> Result<serde_json::Map<String, Value>, ApiError> {
    match conf {
        None | Some(Value::Null) => Ok(serde_json::Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(ApiError::bad_request("`conf` must be a JSON object")),
    }
}

/// An RFC 3339 time, or a plain date taken as midnight UTC.
fn parse_logical_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

/// A run asked for through the API: by the caller, against the live revision.
fn by_api_caller<'a>(
    caller: &'a Caller,
    catalog: Option<&'a olo_reconciler::catalog::Catalog>,
) -> TriggeredBy<'a> {
    TriggeredBy {
        kind: RunTrigger::Api,
        actor: caller.actor(),
        revision: catalog.and_then(|c| c.revision.as_deref()),
    }
}

pub(super) async fn trigger_run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((ws, job)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller
        .need(&state, Need::Workspace(&ws, Role::Operator))
        .await?;
    let body: TriggerBody = if body.is_empty() {
        TriggerBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    // One catalog for the job and the revision the run is recorded against.
    let catalog = state.catalog();
    let run = state
        .runs()
        .trigger(
            catalog.as_deref(),
            &ws,
            &job,
            body.into_request()?,
            by_api_caller(&caller, catalog.as_deref()),
        )
        .await?;
    state.metrics.runs_triggered.inc();
    Ok((StatusCode::CREATED, Json(json!(run))))
}

/// Starts a backfill of a job over a date range (operator of its workspace): Airflow makes a
/// run for each interval of the job's schedule, and olo records and follows each.
pub(super) async fn backfill_job(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((ws, job)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller
        .need(&state, Need::Workspace(&ws, Role::Operator))
        .await?;
    let body: BackfillBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    // One catalog for the job and the revision the run is recorded against.
    let catalog = state.catalog();
    let backfilled = state
        .runs()
        .backfill(
            catalog.as_deref(),
            &ws,
            &job,
            body.into_request()?,
            by_api_caller(&caller, catalog.as_deref()),
        )
        .await?;
    state
        .metrics
        .runs_triggered
        .inc_by(backfilled.runs.len() as u64);
    Ok((StatusCode::CREATED, Json(json!(backfilled))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    pub workspace: Option<String>,
    pub job: Option<String>,
    pub state: Option<String>,
    /// RFC 3339.
    pub since: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub(super) async fn list_runs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    match &q.workspace {
        Some(ws) => {
            caller
                .need(&state, Need::Workspace(ws, Role::Viewer))
                .await?
        }
        None => caller.need(&state, Need::Member).await?,
    }
    let limit = limit(q.limit)?;
    let since = q
        .since
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "`since` must be an RFC 3339 time such as 2026-11-27T00:00:00Z, not `{s}`"
                    ))
                })
        })
        .transpose()?;
    let filter = RunFilter {
        workspace: q.workspace,
        workspaces: caller.visible_workspaces(),
        job: q.job,
        state: q.state,
        since,
    };
    let rows = state
        .store
        .runs(&filter, limit, id_cursor(&q.cursor)?)
        .await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(json!({ "items": rows, "next_cursor": next_cursor })))
}

/// A run the caller may read (a viewer of its workspace).
async fn find_run(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<olo_reconciler::store::Run, ApiError> {
    caller.need(state, Need::Member).await?;
    let run = state
        .store
        .run(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no run {id}")))?;
    caller
        .need(state, Need::Workspace(&run.workspace, Role::Viewer))
        .await?;
    Ok(run)
}

pub(super) async fn run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let run = find_run(&state, &caller, id).await?;
    let tasks = state.store.task_instances(id).await?;
    let mut v = json!(run);
    v["task_instances"] = json!(tasks);
    Ok(Json(v))
}

/// Stops a run that has not finished (operator of its workspace).
pub(super) async fn cancel_run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    control_run(&state, &caller, id, Control::Cancel).await
}

/// Re-runs the failed tasks of a finished run (operator of its workspace).
pub(super) async fn clear_run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    control_run(&state, &caller, id, Control::ClearFailed).await
}

async fn control_run(
    state: &AppState,
    caller: &Caller,
    id: i64,
    control: Control,
) -> Result<Json<Value>, ApiError> {
    let run = find_run(state, caller, id).await?;
    caller
        .need(state, Need::Workspace(&run.workspace, Role::Operator))
        .await?;
    let run = state.runs().control(&run, caller.actor(), control).await?;
    Ok(Json(json!(run)))
}

/// The MLflow runs tagged with this run (in the experiments its job declares).
pub(super) async fn run_mlflow(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let run = find_run(&state, &caller, id).await?;
    match state
        .mlflow_runs(&run, &state.mlflow_experiments(&run))
        .await
    {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "mlflow_not_configured",
            "olo has no MLflow server in its settings ([mlflow] url)",
        )),
        Some(Ok(items)) => Ok(Json(json!({ "items": items, "next_cursor": null }))),
        Some(Err(e)) if e.is_temporary() => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "mlflow_unavailable",
            format!("MLflow did not answer: {e}"),
        )),
        Some(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "mlflow_refused",
            format!("{e}"),
        )),
    }
}

pub(super) async fn run_tasks(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    find_run(&state, &caller, id).await?;
    let tasks = state.store.task_instances(id).await?;
    Ok(Json(json!({ "items": tasks, "next_cursor": null })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    pub map_index: Option<i64>,
}

pub(super) async fn task_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, task, try_number)): Path<(i64, String, i64)>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let run = find_run(&state, &caller, id).await?;
    if try_number < 1 {
        return Err(ApiError::bad_request("tries are numbered from 1"));
    }
    let airflow = state.airflow.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "airflow_not_configured",
            "Airflow is not configured; task logs are read from Airflow",
        )
    })?;
    let text = airflow
        .task_log(
            &run.dag_id,
            &run.airflow_run_id,
            &task,
            try_number,
            q.map_index.unwrap_or(-1),
        )
        .await
        .map_err(|e| match e {
            olo_reconciler::targets::airflow::AirflowError::NotFound { .. } => ApiError::not_found(
                format!("Airflow has no log for task `{task}` try {try_number} of run {id}"),
            ),
            e => e.into(),
        })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
