//! The read side of Marquez's API that `marquez-python` and Marquez's web UI call, answered from
//! olo's lineage (the graph and what events said, [`olo_reconciler::lineage::Observed`]):
//! namespaces, their jobs and datasets, a job's runs, a run, and the graph at `/lineage/` (with
//! the trailing slash the web UI uses). Shapes follow Marquez's OpenAPI document field by field;
//! docs/server.md (Lineage) lists what olo implements and what not.
//!
//! A namespace is any namespace a job or dataset of the graph or of an event has: olo's
//! workspaces (`sales`), and the ones events brought (`default`, `s3://landing`). A job's
//! `createdAt`/`updatedAt` are the times of its first and last event (null for a job only
//! declared); the same for datasets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use olo_reconciler::lineage::{self, Kind, NodeRef};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::{lineage as server_lineage, AppState};

/// Marquez's default page size.
pub const DEFAULT_LIMIT: usize = 100;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/lineage/", get(server_lineage::graph))
        .route("/namespaces", get(namespaces))
        .route("/namespaces/{namespace}", get(namespace))
        .route("/namespaces/{namespace}/jobs", get(jobs))
        .route("/namespaces/{namespace}/jobs/{job}", get(job))
        .route("/namespaces/{namespace}/jobs/{job}/runs", get(runs))
        .route("/namespaces/{namespace}/datasets", get(datasets))
        .route("/namespaces/{namespace}/datasets/{dataset}", get(dataset))
        .route("/jobs/runs/{id}", get(run))
}

#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<usize>,
    offset: Option<usize>,
}

impl Page {
    fn apply<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .skip(self.offset.unwrap_or(0))
            .take(self.limit.unwrap_or(DEFAULT_LIMIT))
            .collect()
    }
}

/// Every job and dataset olo knows, by namespace.
fn nodes(state: &AppState) -> BTreeMap<String, BTreeSet<NodeRef>> {
    state.lineage.sync(state.catalog().as_ref());
    let graph = state.lineage.read();
    let observed = state.lineage.observed();
    let mut out: BTreeMap<String, BTreeSet<NodeRef>> = BTreeMap::new();
    for n in graph.live_nodes().chain(observed.nodes()) {
        out.entry(n.namespace.clone())
            .or_default()
            .insert(n.clone());
    }
    out
}

/// When a node was first and last named by an event.
type Times = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn namespace_json(state: &AppState, name: &str, members: &BTreeSet<NodeRef>) -> Value {
    let observed = state.lineage.observed();
    // (created, updated) of each member that events named.
    let times: Vec<Times> = members
        .iter()
        .map(|n| match n.kind {
            Kind::Job => observed
                .job(n)
                .map_or((None, None), |j| (j.created_at, j.updated_at)),
            Kind::Dataset => observed
                .dataset(n)
                .map_or((None, None), |d| (d.created_at, d.updated_at)),
        })
        .collect();
    let created = times.iter().filter_map(|t| t.0).min();
    let updated = times.iter().filter_map(|t| t.1).max();
    let workspace = state
        .catalog()
        .and_then(|c| c.workspaces.iter().find(|w| w.name == name).cloned());
    json!({
        "name": name,
        "createdAt": created.map(lineage::time),
        "updatedAt": updated.map(lineage::time),
        "ownerName": workspace
            .as_ref()
            .and_then(|w| w.owners.first().cloned())
            .unwrap_or_else(|| "anonymous".to_string()),
        "description": workspace.and_then(|w| w.description.clone()),
    })
}

/// `GET /api/v1/namespaces`: `NamespaceList`.
async fn namespaces(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let all = nodes(&state);
    let list: Vec<Value> = all
        .iter()
        .map(|(name, members)| namespace_json(&state, name, members))
        .collect();
    Ok(Json(json!({ "namespaces": page.apply(list) })))
}

fn members(state: &AppState, namespace: &str) -> Result<BTreeSet<NodeRef>, ApiError> {
    nodes(state)
        .remove(namespace)
        .ok_or_else(|| ApiError::not_found(format!("no namespace {namespace:?} in olo's lineage")))
}

/// The jobs or the datasets of a namespace.
fn members_of(state: &AppState, namespace: &str, kind: Kind) -> Result<Vec<NodeRef>, ApiError> {
    Ok(members(state, namespace)?
        .into_iter()
        .filter(|n| n.kind == kind)
        .collect())
}

/// `GET /api/v1/namespaces/{namespace}`: `Namespace`.
async fn namespace(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let members = members(&state, &name)?;
    Ok(Json(namespace_json(&state, &name, &members)))
}

fn job_json(state: &AppState, node: &NodeRef) -> Value {
    let graph = state.lineage.read();
    let (inputs, outputs) = graph.datasets_of(node);
    state.lineage.observed().job_json(node, &inputs, &outputs)
}

/// `GET /api/v1/namespaces/{namespace}/jobs`: `JobList`.
async fn jobs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(namespace): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let jobs = members_of(&state, &namespace, Kind::Job)?;
    let total = jobs.len();
    let list: Vec<Value> = page
        .apply(jobs)
        .iter()
        .map(|n| job_json(&state, n))
        .collect();
    Ok(Json(json!({ "jobs": list, "totalCount": total })))
}

/// A job by its namespace and name, or by the name its events gave it.
fn find_job(state: &AppState, namespace: &str, name: &str) -> Result<NodeRef, ApiError> {
    let node = NodeRef::job(namespace, name);
    if nodes(state)
        .get(namespace)
        .is_some_and(|members| members.contains(&node))
    {
        return Ok(node);
    }
    state
        .lineage
        .observed()
        .alias(&node)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no job {name:?} in namespace {namespace:?}")))
}

/// `GET /api/v1/namespaces/{namespace}/jobs/{job}`: `Job`.
async fn job(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let node = find_job(&state, &namespace, &name)?;
    Ok(Json(job_json(&state, &node)))
}

/// `GET /api/v1/namespaces/{namespace}/jobs/{job}/runs`: `RunList`, newest first.
async fn runs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let node = find_job(&state, &namespace, &name)?;
    let observed = state.lineage.observed();
    let runs: Vec<Value> = observed
        .job(&node)
        .map(|j| j.runs.iter().rev().map(lineage::run_json).collect())
        .unwrap_or_default();
    Ok(Json(json!({ "runs": page.apply(runs) })))
}

/// `GET /api/v1/jobs/runs/{id}`: `Run`.
async fn run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let observed = state.lineage.observed();
    let (_, run) = observed
        .run(&id)
        .ok_or_else(|| ApiError::not_found(format!("no run {id:?} in olo's lineage")))?;
    Ok(Json(lineage::run_json(run)))
}

/// `GET /api/v1/namespaces/{namespace}/datasets`: `DatasetList`.
async fn datasets(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(namespace): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let datasets = members_of(&state, &namespace, Kind::Dataset)?;
    let total = datasets.len();
    let observed = state.lineage.observed();
    let list: Vec<Value> = page
        .apply(datasets)
        .iter()
        .map(|n| observed.dataset_json(n))
        .collect();
    Ok(Json(json!({ "datasets": list, "totalCount": total })))
}

/// `GET /api/v1/namespaces/{namespace}/datasets/{dataset}`: `Dataset`.
async fn dataset(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let node = NodeRef::dataset(&namespace, &name);
    if !members(&state, &namespace)?.contains(&node) {
        return Err(ApiError::not_found(format!(
            "no dataset {name:?} in namespace {namespace:?}"
        )));
    }
    Ok(Json(state.lineage.observed().dataset_json(&node)))
}
