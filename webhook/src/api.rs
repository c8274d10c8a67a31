//! REST API `/api/v1`: JSON, one error shape ([`ApiError`]), cursor pagination on lists
//! (`?limit=&cursor=` → `{"items": [...], "next_cursor": ...}`). Documented in `openapi.json`
//! (served at `/api/v1/openapi.json`); a test keeps the two in step.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use olo_reconciler::catalog::{JobView, WorkspaceView};
use olo_reconciler::store::{RunFilter, RunTrigger};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::access::Role;
use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::{lineage, sql, AppState};
use olo_reconciler::runs::{BackfillRequest, Control, RunRequest, TriggeredBy};
use olo_reconciler::targets::airflow::Reprocess;

pub const OPENAPI: &str = include_str!("../openapi.json");

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/status", get(status))
        .route("/workspaces", get(workspaces))
        .route("/workspaces/{ws}", get(workspace))
        .route("/workspaces/{ws}/lakehouse", get(workspace_lakehouse))
        .route("/workspaces/{ws}/jobs", get(jobs))
        .route("/workspaces/{ws}/jobs/{job}", get(job))
        .route("/workspaces/{ws}/jobs/{job}/runs", post(trigger_run))
        .route("/workspaces/{ws}/jobs/{job}/backfills", post(backfill_job))
        .route(
            "/workspaces/{ws}/jobs/{job}/lineage",
            get(lineage::job_lineage),
        )
        .route("/revisions", get(revisions))
        .route("/revisions/{sha}", get(revision))
        .route("/audit", get(audit))
        .route("/audit/export", get(audit_export))
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(run))
        .route("/runs/{id}/cancel", post(cancel_run))
        .route("/runs/{id}/clear", post(clear_run))
        .route("/runs/{id}/tasks", get(run_tasks))
        .route("/runs/{id}/mlflow", get(run_mlflow))
        .route("/runs/{id}/tasks/{task}/logs/{try_number}", get(task_log))
        .route("/reconcile", post(reconcile))
        .route("/sql", post(sql::run))
        .route("/lineage", get(lineage::graph))
        .route(
            "/lineage",
            post(lineage::ingest).layer(DefaultBodyLimit::max(lineage::MAX_BODY)),
        )
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

fn limit(q: Option<u32>) -> Result<u32, ApiError> {
    match q.unwrap_or(DEFAULT_LIMIT) {
        0 => Err(ApiError::bad_request("limit must be at least 1")),
        n => Ok(n.min(MAX_LIMIT)),
    }
}

/// Pages a sorted in-memory list by name: the cursor is the last name of the previous page.
fn page_by_name<T: Clone>(
    all: &[T],
    name: impl Fn(&T) -> &str,
    q: &PageQuery,
) -> Result<Page<T>, ApiError> {
    let limit = limit(q.limit)? as usize;
    let start = match &q.cursor {
        Some(c) => all.partition_point(|x| name(x) <= c.as_str()),
        None => 0,
    };
    let items: Vec<T> = all.iter().skip(start).take(limit).cloned().collect();
    let next_cursor = (start + items.len() < all.len())
        .then(|| items.last().map(|x| name(x).to_string()))
        .flatten();
    Ok(Page { items, next_cursor })
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn status(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let status = state.store.branch_status(&state.config.branch).await?;
    let catalog = state.catalog();
    let drift = state
        .store
        .last_audit(olo_reconciler::engine::DRIFT_REPAIRED)
        .await?;
    Ok(Json(json!({
        "branch": state.config.branch,
        "ready": state.is_ready(),
        "role": state.role().as_str(),
        "sync": status,
        "catalog_revision": catalog.as_ref().and_then(|c| c.revision.clone()),
        "last_drift_repair": drift,
    })))
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceSummary {
    pub name: String,
    pub description: Option<String>,
    pub catalog: String,
    pub jobs: usize,
}

fn live(state: &AppState) -> Result<Arc<olo_reconciler::catalog::Catalog>, ApiError> {
    state.catalog().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "no valid commit has been read yet; see GET /api/v1/status",
        )
    })
}

async fn workspaces(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<WorkspaceSummary>>, ApiError> {
    caller.need(&state, Need::Read).await?;
    let catalog = live(&state)?;
    let visible = caller.visible_workspaces();
    let all: Vec<WorkspaceSummary> = catalog
        .workspaces
        .iter()
        .filter(|w| visible.as_ref().is_none_or(|v| v.contains(&w.name)))
        .map(|w| WorkspaceSummary {
            name: w.name.clone(),
            description: w.description.clone(),
            catalog: w.catalog.clone(),
            jobs: w.jobs.len(),
        })
        .collect();
    Ok(Json(page_by_name(&all, |w| &w.name, &q)?))
}

fn find_workspace<'c>(
    catalog: &'c olo_reconciler::catalog::Catalog,
    ws: &str,
) -> Result<&'c WorkspaceView, ApiError> {
    catalog.workspace(ws).ok_or_else(|| {
        ApiError::not_found(format!("no workspace `{ws}` in the live configuration"))
    })
}

async fn workspace(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(ws): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller
        .need(&state, Need::Workspace(&ws, Role::Viewer))
        .await?;
    let catalog = live(&state)?;
    let w = find_workspace(&catalog, &ws)?;
    let mut v = serde_json::to_value(w).map_err(|e| ApiError::internal(&e))?;
    v["revision"] = json!(catalog.revision);
    Ok(Json(v))
}

async fn workspace_lakehouse(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(ws): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller
        .need(&state, Need::Workspace(&ws, Role::Viewer))
        .await?;
    let catalog = live(&state)?;
    find_workspace(&catalog, &ws)?;
    match state.live_lakehouse(&ws).await {
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "lakehouse_not_configured",
            "olo manages no lakehouse here: set [lakehouse] catalog or warehouse",
        )),
        Some(Err(message)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "lakehouse_unavailable",
            message,
        )),
        Some(Ok(live)) => Ok(Json(
            serde_json::to_value(live).map_err(|e| ApiError::internal(&e))?,
        )),
    }
}

async fn jobs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(ws): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Arc<JobView>>>, ApiError> {
    caller
        .need(&state, Need::Workspace(&ws, Role::Viewer))
        .await?;
    let catalog = live(&state)?;
    let w = find_workspace(&catalog, &ws)?;
    Ok(Json(page_by_name(&w.jobs, |j| &j.name, &q)?))
}

async fn job(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((ws, job)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller
        .need(&state, Need::Workspace(&ws, Role::Viewer))
        .await?;
    let catalog = live(&state)?;
    let j = catalog.job(&ws, &job).ok_or_else(|| {
        ApiError::not_found(format!("no job `{ws}/{job}` in the live configuration"))
    })?;
    let recent = state
        .store
        .runs(&RunFilter::job(&ws, &job), 10, None)
        .await?;
    let mut v = serde_json::to_value(j).map_err(|e| ApiError::internal(&e))?;
    v["revision"] = json!(catalog.revision);
    v["recent_runs"] = json!(recent);
    Ok(Json(v))
}

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

async fn trigger_run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((ws, job)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller
        .need(&state, Need::Workspace(&ws, Role::Operator))
        .await?;
    let actor = caller.actor().to_string();
    let body: TriggerBody = if body.is_empty() {
        TriggerBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let revision = state.catalog().and_then(|c| c.revision.clone());
    let run = state
        .runs()
        .trigger(
            state.catalog().as_deref(),
            &ws,
            &job,
            body.into_request()?,
            TriggeredBy {
                kind: RunTrigger::Api,
                actor: &actor,
                revision: revision.as_deref(),
            },
        )
        .await?;
    state.metrics.runs_triggered.inc();
    Ok((StatusCode::CREATED, Json(json!(run))))
}

/// Starts a backfill of a job over a date range (operator of its workspace): Airflow makes a
/// run for each interval of the job's schedule, and olo records and follows each.
async fn backfill_job(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((ws, job)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller
        .need(&state, Need::Workspace(&ws, Role::Operator))
        .await?;
    let actor = caller.actor().to_string();
    let body: BackfillBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let revision = state.catalog().and_then(|c| c.revision.clone());
    let backfilled = state
        .runs()
        .backfill(
            state.catalog().as_deref(),
            &ws,
            &job,
            body.into_request()?,
            TriggeredBy {
                kind: RunTrigger::Api,
                actor: &actor,
                revision: revision.as_deref(),
            },
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
pub struct RevisionsQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

async fn revisions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<RevisionsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let limit = limit(q.limit)?;
    let before = match &q.cursor {
        Some(c) => Some(
            DateTime::parse_from_rfc3339(c)
                .map_err(|_| ApiError::bad_request("cursor is not one this API gave out"))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let rows = state
        .store
        .revisions(&state.config.branch, limit, before)
        .await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| r.seen_at.to_rfc3339()))
        .flatten();
    Ok(Json(json!({ "items": rows, "next_cursor": next_cursor })))
}

async fn revision(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(sha): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let row = state
        .store
        .revision(&state.config.branch, &sha)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("olo has not seen revision `{sha}`")))?;
    let plans = state.store.plans(&state.config.branch, &sha).await?;
    let mut v = json!(row);
    v["plans"] = json!(plans);
    Ok(Json(v))
}

fn id_cursor(cursor: &Option<String>) -> Result<Option<i64>, ApiError> {
    cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_request("cursor is not one this API gave out"))
        })
        .transpose()
}

async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::All).await?;
    let limit = limit(q.limit)?;
    let rows = state.store.audit(limit, id_cursor(&q.cursor)?).await?;
    let next_cursor = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(json!({ "items": rows, "next_cursor": next_cursor })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Only entries with a greater id (the last id of a previous export).
    pub after: Option<i64>,
}

/// Entries per read of an export.
const EXPORT_PAGE: u32 = 1000;

/// `GET /api/v1/audit/export`: the whole audit log (or what follows `after`) as JSON lines,
/// oldest first, streamed a page at a time.
async fn audit_export(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    caller.need(&state, Need::All).await?;
    let store = state.store.clone();
    let pages = futures::stream::try_unfold(Some(q.after), move |after| {
        let store = store.clone();
        async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let rows = store.audit_oldest_first(EXPORT_PAGE, after).await?;
            let next = (rows.len() as u32 == EXPORT_PAGE).then(|| rows.last().map(|r| r.id));
            let mut chunk = String::new();
            for row in &rows {
                chunk.push_str(&serde_json::to_string(row).expect("an audit entry serializes"));
                chunk.push('\n');
            }
            Ok::<_, olo_reconciler::store::StoreError>(Some((chunk, next)))
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(pages),
    )
        .into_response())
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

async fn list_runs(
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

async fn run(
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
async fn cancel_run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    control_run(&state, &caller, id, Control::Cancel).await
}

/// Re-runs the failed tasks of a finished run (operator of its workspace).
async fn clear_run(
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
async fn run_mlflow(
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

async fn run_tasks(
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

async fn task_log(
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

async fn reconcile(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.need(&state, Need::Reconcile).await?;
    state
        .store
        .append_audit(&olo_reconciler::store::NewAudit {
            actor: caller.actor().to_string(),
            action: "reconcile_request".into(),
            target: state.config.branch.clone(),
            revision: None,
            details: json!({}),
        })
        .await?;
    state
        .queue
        .reconcile(olo_reconciler::controller::Trigger::Api);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "result": "reconcile queued", "branch": state.config.branch })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of [`routes`] (read from this file's source) is in the OpenAPI document with
    /// the same methods, and the document has no path the router lacks.
    #[test]
    fn the_openapi_document_matches_the_routes() {
        let source = include_str!("api.rs");
        let body = &source[source.find("pub fn routes()").unwrap()
            ..source.find("#[derive(Debug, Serialize)]").unwrap()];
        // The write routes (merged beside these under /api/v1) live in their own module.
        let writes = include_str!("writes/mod.rs");
        let writes = &writes[writes.find("pub fn routes()").unwrap()..];
        let writes = &writes[..writes.find("\n}\n").unwrap()];
        // So do Marquez's read routes.
        let marquez = include_str!("marquez.rs");
        let marquez = &marquez[marquez.find("pub fn routes()").unwrap()..];
        let marquez = &marquez[..marquez.find("\n}\n").unwrap()];
        let mut routed = std::collections::BTreeSet::new();
        // Each `.route(` call, however rustfmt wrapped it: the path, then the method routers.
        for call in body
            .split(".route(")
            .skip(1)
            .chain(writes.split(".route(").skip(1))
            .chain(marquez.split(".route(").skip(1))
        {
            let path = call.split('"').nth(1).unwrap().to_string();
            for verb in ["get", "post", "put", "patch", "delete"] {
                let called = call.match_indices(&format!("{verb}(")).any(|(i, _)| {
                    i == 0
                        || !call[..i]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if called {
                    routed.insert((path.clone(), verb.to_string()));
                }
            }
        }
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented = std::collections::BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for verb in ops.as_object().unwrap().keys() {
                documented.insert((path.clone(), verb.clone()));
            }
        }
        assert_eq!(routed.len(), 41, "routes read from the source: {routed:?}");
        assert_eq!(routed, documented);
    }

    #[test]
    fn pages_by_name_follow_the_cursor() {
        let all: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let q = |limit, cursor: Option<&str>| PageQuery {
            limit: Some(limit),
            cursor: cursor.map(str::to_string),
        };
        let p = page_by_name(&all, |s| s, &q(2, None)).unwrap();
        assert_eq!((p.items.len(), p.next_cursor.as_deref()), (2, Some("b")));
        let p = page_by_name(&all, |s| s, &q(2, Some("b"))).unwrap();
        assert_eq!((p.items, p.next_cursor), (vec!["c".to_string()], None));
        let p = page_by_name(&all, |s| s, &q(5, None)).unwrap();
        assert_eq!((p.items.len(), p.next_cursor), (3, None));
        assert!(page_by_name(&all, |s| s, &q(0, None)).is_err());
    }
}
