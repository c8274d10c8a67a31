//! The read side of Marquez's API that `marquez-python` and Marquez's web UI call, answered from
//! olo's lineage (the graph and what events said, [`olo_reconciler::lineage::Observed`]):
//! namespaces, their jobs and datasets, a job's runs, a run, the graph at `/lineage/` (with the
//! trailing slash the web UI uses), search, column lineage, and the run events as received (from
//! the state store). Shapes follow Marquez's OpenAPI document field by field; docs/server.md
//! (Lineage) lists what olo implements and what not. Every route needs what the graph needs: a
//! role in some workspace.
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
use olo_reconciler::lineage::column::{self, ColumnNodeId, FieldRef};
use olo_reconciler::lineage::search::{self, Hit};
use olo_reconciler::lineage::{self, Kind, NodeRef};
use olo_reconciler::openlineage;
use olo_reconciler::store::LineageEventPage;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::{lineage as server_lineage, AppState};

mod ui;

/// Marquez's default page size.
pub const DEFAULT_LIMIT: usize = 100;
/// Marquez's default number of search results.
pub const SEARCH_LIMIT: usize = 10;
/// Most search results or events in one answer.
pub const MAX_LIMIT: usize = 1_000;

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
        .route(
            "/namespaces/{namespace}/datasets/{dataset}/versions",
            get(ui::dataset_versions),
        )
        .route(
            "/namespaces/{namespace}/datasets/{dataset}/versions/{version}",
            get(ui::dataset_version),
        )
        .route("/jobs", get(ui::all_jobs))
        .route("/jobs/runs/{id}", get(run))
        .route("/jobs/runs/{id}/facets", get(ui::run_facets))
        .route("/tags", get(ui::tags))
        .route("/stats/{figure}", get(ui::stats))
        .route("/search", get(search_names))
        .route("/column-lineage", get(column_lineage))
        .route("/events/lineage", get(lineage_events))
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
    let node = known_dataset(&state, &namespace, &name)?;
    Ok(Json(state.lineage.observed().dataset_json(&node)))
}

fn known_dataset(state: &AppState, namespace: &str, name: &str) -> Result<NodeRef, ApiError> {
    let node = NodeRef::dataset(namespace, name);
    if !members(state, namespace)?.contains(&node) {
        return Err(ApiError::not_found(format!(
            "no dataset {name:?} in namespace {namespace:?}"
        )));
    }
    Ok(node)
}

/// A whole number from a query, `default` when absent, at most `max`.
fn count(name: &str, value: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                ApiError::bad_request(format!("`{name}` must be a whole number from 0 to {max}"))
            }),
    }
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    filter: Option<String>,
    sort: Option<String>,
    limit: Option<String>,
    namespace: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

fn day(name: &str, value: Option<&str>) -> Result<Option<chrono::NaiveDate>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                ApiError::bad_request(format!("`{name}` must be a day, YYYY-MM-DD, not {v:?}"))
            })
        })
        .transpose()
}

/// `GET /api/v1/search?q=&filter=&sort=&limit=&namespace=&before=&after=`: `SearchResultList`,
/// the jobs and datasets whose names hold `q` ([`search`] has the matching and the order);
/// `totalCount` counts every match, `results` the first `limit` (default 10, as Marquez).
async fn search_names(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let text =
        q.q.as_deref()
            .ok_or_else(|| ApiError::bad_request("`q` is required: the text to find in names"))?;
    let query = search::Query {
        q: text,
        filter: q
            .filter
            .as_deref()
            .filter(|f| !f.is_empty())
            .map(search::parse_filter)
            .transpose()
            .map_err(ApiError::bad_request)?,
        sort: q
            .sort
            .as_deref()
            .filter(|s| !s.is_empty())
            .map_or(Ok(search::Sort::Name), search::Sort::parse)
            .map_err(ApiError::bad_request)?,
        namespace: q.namespace.as_deref().filter(|n| !n.is_empty()),
        before: day("before", q.before.as_deref())?,
        after: day("after", q.after.as_deref())?,
    };
    let limit = count("limit", q.limit.as_deref(), SEARCH_LIMIT, MAX_LIMIT)?;
    // A blank query finds nothing, as Marquez answers.
    if text.trim().is_empty() {
        return Ok(Json(json!({ "totalCount": 0, "results": [] })));
    }
    let all = nodes(&state);
    let observed = state.lineage.observed();
    let candidates = all.into_values().flatten().map(|node| {
        let updated_at = match node.kind {
            Kind::Job => observed.job(&node).and_then(|j| j.updated_at),
            Kind::Dataset => observed.dataset(&node).and_then(|d| d.updated_at),
        };
        Hit { node, updated_at }
    });
    let hits = search::search(candidates, &query);
    let results: Vec<Value> = hits.iter().take(limit).map(Hit::json).collect();
    Ok(Json(
        json!({ "totalCount": hits.len(), "results": results }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnQuery {
    node_id: Option<String>,
    depth: Option<String>,
    with_downstream: Option<String>,
}

/// `GET /api/v1/column-lineage?nodeId=&depth=&withDownstream=`: Marquez's column lineage graph
/// around a field (`datasetField:<namespace>:<dataset>:<field>`), every field of a dataset
/// (`dataset:…`), or every field of the datasets a job writes (`job:…`), from the `columnLineage`
/// facets events carried ([`column::Columns::walk`] and [`column::Columns::marquez`] say what is
/// in it). A node with no field known is 404; a field without column lineage gives an empty
/// graph.
async fn column_lineage(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ColumnQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    state.lineage.sync(state.catalog().as_ref());
    let depth = server_lineage::depth(q.depth.as_deref()).map_err(ApiError::bad_request)?;
    let with_downstream = match q.with_downstream.as_deref().map(str::trim) {
        None | Some("") => false,
        // marquez-python sends Python's `True`/`False`.
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "`withDownstream` must be true or false, not {v:?}"
            )))
        }
    };
    let id = q
        .node_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "`nodeId` is required: datasetField:<namespace>:<dataset>:<field>, \
             dataset:<namespace>:<name> or job:<namespace>:<name>",
            )
        })?;
    let target = ColumnNodeId::parse(id).map_err(ApiError::bad_request)?;
    // A job's outputs, read before `observed` is held (finding a job reads it too).
    let written: Vec<NodeRef> = match target {
        ColumnNodeId::Job(id) => {
            let job = state
                .lineage
                .find(id)
                .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
            let graph = state.lineage.read();
            let outputs: Vec<NodeRef> = graph.datasets_of(&job).1.into_iter().cloned().collect();
            outputs
        }
        _ => Vec::new(),
    };
    let observed = state.lineage.observed();
    let start: Vec<FieldRef> = match target {
        ColumnNodeId::Field(rest, field) => {
            column::find_dataset(rest, |d| observed.known_fields(d).contains(field))
                .map(|d| FieldRef::new(&d, field))
                .into_iter()
                .collect()
        }
        ColumnNodeId::Dataset(rest) => {
            column::find_dataset(rest, |d| !observed.known_fields(d).is_empty())
                .map(|d| {
                    observed
                        .known_fields(&d)
                        .iter()
                        .map(|f| FieldRef::new(&d, f))
                        .collect()
                })
                .unwrap_or_default()
        }
        ColumnNodeId::Job(_) => written
            .iter()
            .flat_map(|d| {
                observed
                    .known_fields(d)
                    .into_iter()
                    .map(|f| FieldRef::new(d, &f))
                    .collect::<Vec<_>>()
            })
            .collect(),
    };
    if start.is_empty() {
        return Err(ApiError::not_found(format!("no fields known for {id}")));
    }
    let columns = observed.columns();
    let graph = columns.walk(&start, depth, with_downstream, server_lineage::MAX_NODES);
    Ok(Json(columns.marquez(&graph, |f| observed.field_type(f))))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    before: Option<String>,
    after: Option<String>,
    sort_direction: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

fn instant(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            // A `+` sent unencoded in a query string arrives as a space.
            openlineage::event_time(&v.replace(' ', "+"))
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`{name}` must be an ISO 8601 date-time (2026-11-27T04:30:00Z), not {v:?}"
                    ))
                })
        })
        .transpose()
}

/// `GET /api/v1/events/lineage?before=&after=&sortDirection=&limit=&offset=`: `LineageEventList`,
/// the `RunEvent`s olo took in, as received, with `after <= eventTime < before`, newest first
/// (`sortDirection=asc`: oldest first), `limit` (default 100, at most 1,000) from `offset`;
/// `totalCount` counts every one in the window. Read from the state store.
async fn lineage_events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    let newest_first = match q.sort_direction.as_deref().map(str::trim) {
        None | Some("") => true,
        Some(d) if d.eq_ignore_ascii_case("desc") => true,
        Some(d) if d.eq_ignore_ascii_case("asc") => false,
        Some(d) => {
            return Err(ApiError::bad_request(format!(
                "`sortDirection` must be asc or desc, not {d:?}"
            )))
        }
    };
    let page = LineageEventPage {
        after: instant("after", q.after.as_deref())?,
        before: instant("before", q.before.as_deref())?,
        newest_first,
        limit: count("limit", q.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)? as u32,
        offset: count("offset", q.offset.as_deref(), 0, usize::MAX)? as u64,
    };
    let (events, total) = state.store.lineage_run_events(&page).await?;
    Ok(Json(json!({ "events": events, "totalCount": total })))
}
