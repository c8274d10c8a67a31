//! What Marquez's web UI reads besides the routes `marquez-python` uses: tags (olo keeps none),
//! the jobs of every namespace, a run's facets, the dashboard's figures (`/stats/*`) and a
//! dataset's versions (the current one). Checked by hand against Marquez's own web build
//! (docs/server.md); each route is in the test suite through `marquez-python` or plain HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use olo_reconciler::lineage::stats;
use olo_reconciler::lineage::{Kind, NodeRef};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{job_json, known_dataset, nodes, Page};
use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::AppState;

#[derive(Debug, Deserialize)]
pub struct FacetsQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `GET /api/v1/jobs/runs/{id}/facets?type=run|job`: `FacetsResult`, the run's facets or the
/// job facets its events carried (as Marquez answers: the job as it was for that run).
pub(super) async fn run_facets(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<FacetsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let kind = q.kind.as_deref().unwrap_or_default();
    if !matches!(kind, "run" | "job") {
        return Err(ApiError::bad_request(format!(
            "`type` must be run or job, not {kind:?}"
        )));
    }
    let observed = state.lineage.observed();
    let (_, run) = observed
        .run(&id)
        .ok_or_else(|| ApiError::not_found(format!("no run {id:?} in olo's lineage")))?;
    let facets = Value::Object(if kind == "run" {
        run.facets.clone()
    } else {
        run.job_facets.clone()
    });
    Ok(Json(json!({ "runId": run.id, "facets": facets })))
}

/// `GET /api/v1/tags`: `TagList`. olo keeps no tags, so the list is empty (Marquez's web UI
/// asks for it on every page).
pub(super) async fn tags(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let none: Vec<Value> = page.apply(Vec::new());
    Ok(Json(json!({ "tags": none })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllJobsQuery {
    limit: Option<usize>,
    offset: Option<usize>,
    last_run_states: Option<String>,
}

/// `GET /api/v1/jobs?limit=&offset=&lastRunStates=`: `JobList` of every namespace, the most
/// recently updated first (jobs no event named last, by name), optionally only those whose
/// latest run is in one of the comma-separated states.
pub(super) async fn all_jobs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<AllJobsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let states: Vec<String> = q
        .last_run_states
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    for s in &states {
        if !["NEW", "RUNNING", "COMPLETED", "FAILED", "ABORTED"].contains(&s.as_str()) {
            return Err(ApiError::bad_request(format!(
                "`lastRunStates` holds NEW, RUNNING, COMPLETED, FAILED or ABORTED, not {s:?}"
            )));
        }
    }
    let jobs: Vec<NodeRef> = nodes(&state)
        .into_values()
        .flatten()
        .filter(|n| n.kind == Kind::Job)
        .collect();
    let mut jobs: Vec<(Option<DateTime<Utc>>, NodeRef)> = {
        let observed = state.lineage.observed();
        jobs.into_iter()
            .filter(|n| {
                states.is_empty()
                    || observed
                        .job(n)
                        .and_then(|j| j.runs.last())
                        .is_some_and(|r| states.iter().any(|s| s == r.state))
            })
            .map(|n| (observed.job(&n).and_then(|j| j.updated_at), n))
            .collect()
    };
    jobs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let total = jobs.len();
    let page = Page {
        limit: q.limit,
        offset: q.offset,
    };
    let list: Vec<Value> = page
        .apply(jobs)
        .iter()
        .map(|(_, n)| job_json(&state, n))
        .collect();
    Ok(Json(json!({ "jobs": list, "totalCount": total })))
}

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    period: Option<String>,
    timezone: Option<String>,
}

/// `GET /api/v1/stats/{lineage-events|jobs|datasets|sources}?period=DAY|WEEK&timezone=`: the
/// figures of Marquez's dashboard ([`stats`] has how they are counted); a source is a dataset
/// namespace (a dataset's `sourceName`).
pub(super) async fn stats(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(figure): Path<String>,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let period = stats::Period::parse(q.period.as_deref().unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let now = Utc::now();
    let values = match figure.as_str() {
        "lineage-events" => {
            if period == stats::Period::Week && q.timezone.as_deref().is_none_or(str::is_empty) {
                return Err(ApiError::bad_request(
                    "`timezone` is required with period WEEK (as Marquez asks)",
                ));
            }
            let intervals = period.intervals(now);
            let (from, to) = (
                intervals.first().map_or(now, |i| i.0),
                intervals.last().map_or(now, |i| i.1),
            );
            let hours = state
                .store
                .lineage_event_hours(from, to)
                .await
                .map_err(ApiError::from)?;
            stats::lineage_metrics(period, now, &hours)
        }
        "jobs" | "datasets" => {
            let kind = if figure == "jobs" {
                Kind::Job
            } else {
                Kind::Dataset
            };
            let members: Vec<NodeRef> = nodes(&state)
                .into_values()
                .flatten()
                .filter(|n| n.kind == kind)
                .collect();
            let observed = state.lineage.observed();
            let created = members.iter().map(|n| match kind {
                Kind::Job => observed.job(n).and_then(|j| j.created_at),
                Kind::Dataset => observed.dataset(n).and_then(|d| d.created_at),
            });
            stats::running_totals(period, now, created)
        }
        "sources" => {
            // A dataset's `sourceName` is its namespace: a source exists from its first
            // dataset (from before the window when one is only declared).
            let mut first: BTreeMap<String, Option<DateTime<Utc>>> = BTreeMap::new();
            let members = nodes(&state);
            let observed = state.lineage.observed();
            for n in members
                .values()
                .flatten()
                .filter(|n| n.kind == Kind::Dataset)
            {
                let created = observed.dataset(n).and_then(|d| d.created_at);
                first
                    .entry(n.namespace.clone())
                    .and_modify(|t| *t = (*t).min(created))
                    .or_insert(created);
            }
            stats::running_totals(period, now, first.into_values())
        }
        other => {
            return Err(ApiError::not_found(format!(
                "no figure {other:?}: olo answers lineage-events, jobs, datasets and sources"
            )))
        }
    };
    Ok(Json(Value::Array(values)))
}

/// A dataset's current version in Marquez's `DatasetVersion` shape, created by the latest run
/// of a job that writes it.
fn version_json(state: &AppState, node: &NodeRef) -> Value {
    let graph = state.lineage.read();
    let (producers, _) = graph.datasets_of(node);
    let observed = state.lineage.observed();
    let latest = producers
        .iter()
        .filter(|p| p.kind == Kind::Job)
        .filter_map(|p| observed.job(p).and_then(|j| j.runs.last()))
        .max_by_key(|r| r.updated_at);
    observed.dataset_version_json(node, latest)
}

/// `GET /api/v1/namespaces/{namespace}/datasets/{dataset}/versions`: `DatasetVersionList`. olo
/// keeps one version of a dataset, the current one, so the list holds it alone.
pub(super) async fn dataset_versions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let node = known_dataset(&state, &namespace, &name)?;
    let versions = page.apply(vec![version_json(&state, &node)]);
    Ok(Json(json!({ "versions": versions, "totalCount": 1 })))
}

/// `GET /api/v1/namespaces/{namespace}/datasets/{dataset}/versions/{version}`:
/// `DatasetVersion`, the current one only (an older version id is 404).
pub(super) async fn dataset_version(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let node = known_dataset(&state, &namespace, &name)?;
    let current = version_json(&state, &node);
    if current["version"] != version.as_str() {
        return Err(ApiError::not_found(format!(
            "no version {version:?} of dataset {name:?}: olo keeps the current version only ({})",
            current["version"].as_str().unwrap_or_default()
        )));
    }
    Ok(Json(current))
}
