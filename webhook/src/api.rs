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
use olo_reconciler::store::RunFilter;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::access::Role;
use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::{lineage, sql, AppState};

mod runs;
use runs::{
    backfill_job, cancel_run, clear_run, list_runs, run, run_mlflow, run_tasks, task_log,
    trigger_run,
};

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
        assert_eq!(routed.len(), 47, "routes read from the source: {routed:?}");
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
