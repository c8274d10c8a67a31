//! Lineage in the server: OpenLineage ingest at `POST /api/v1/lineage` (the path Marquez uses,
//! so OpenLineage clients work unchanged), the graph at `GET /api/v1/lineage?nodeId=&depth=` in
//! Marquez's shape, and per job where declared and observed lineage differ.
//!
//! The graph lives in memory (loaded from the state store at start, then kept up to date by each
//! recorded event and each new live commit), so a query never touches the database. Events are
//! written by one task that commits whatever has queued up in one transaction (group commit):
//! each request is answered once its event is durable.

use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use olo_reconciler::catalog::Catalog;
use olo_reconciler::lineage::{self, Graph, NodeRef, Resolver, RunIndex, OBSERVED};
use olo_reconciler::openlineage;
use olo_reconciler::store::{NewLineageEvent, ObservedEdge, Store, StoreError};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::access::Role;
use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::metrics::ResultLabels;
use crate::{auth, AppState};

/// Largest request body of the ingest endpoint.
pub const MAX_BODY: usize = openlineage::MAX_EVENT_BYTES;
/// Marquez's default depth.
pub const DEFAULT_DEPTH: usize = 20;
pub const MAX_DEPTH: usize = 100;
/// Most nodes in one graph answer (nearest first); the answer says when it was cut.
pub const MAX_NODES: usize = 5_000;
/// Most events committed in one transaction.
const BATCH: usize = 512;

/// Whether the event was new, or whether the failure was temporary.
type Reply = oneshot::Sender<Result<bool, Failed>>;

#[derive(Debug, Clone, Copy)]
struct Failed {
    temporary: bool,
}

/// The lineage graph and its writer.
#[derive(Default)]
pub struct Lineage {
    graph: RwLock<Graph>,
    /// The catalog whose declared edges and names the graph holds (compared by pointer).
    declared_for: Mutex<Option<Arc<Catalog>>>,
    resolver: RwLock<Arc<Resolver>>,
    /// Runs attributed to olo jobs (in memory: a parent run and its children report within
    /// minutes, so a restart in between is the only way to lose the link).
    runs: Mutex<RunIndex>,
    writer: OnceLock<mpsc::Sender<(NewLineageEvent, Reply)>>,
}

impl Lineage {
    /// Adds the observed edges recorded in the store (at start).
    pub async fn load(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let edges = store.observed_edges().await?;
        let mut graph = self.graph.write().expect("lineage lock");
        for e in &edges {
            add_observed(&mut graph, e);
        }
        Ok(edges.len())
    }

    /// Brings declared edges and name mapping in step with the live catalog, when it changed.
    pub fn sync(&self, catalog: Option<&Arc<Catalog>>) {
        let mut current = self.declared_for.lock().expect("lineage lock");
        let same = match (current.as_ref(), catalog) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        let (edges, resolver) = match catalog {
            Some(c) => (lineage::declared_edges(c), Resolver::new(c)),
            None => (Vec::new(), Resolver::default()),
        };
        self.graph
            .write()
            .expect("lineage lock")
            .set_declared(&edges);
        *self.resolver.write().expect("lineage lock") = Arc::new(resolver);
        *current = catalog.cloned();
    }

    fn resolver(&self) -> Arc<Resolver> {
        self.resolver.read().expect("lineage lock").clone()
    }

    /// The job an event belongs to in olo's names, remembering its run when it is an olo job's
    /// (so the runs it parents reach the same job).
    fn job_of(&self, event: &openlineage::RunEvent, resolver: &Resolver) -> NodeRef {
        let mut runs = self.runs.lock().expect("lineage lock");
        match resolver.olo_job_of(event, &runs) {
            Some(job) => {
                runs.insert(&event.run_id, job.clone());
                job
            }
            None => NodeRef::job(&event.job_namespace, &event.job_name),
        }
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Graph> {
        self.graph.read().expect("lineage lock")
    }

    fn writer(self: &Arc<Self>, store: Arc<dyn Store>) -> mpsc::Sender<(NewLineageEvent, Reply)> {
        self.writer
            .get_or_init(|| {
                let (tx, rx) = mpsc::channel(4 * BATCH);
                tokio::spawn(write_loop(rx, store, self.clone()));
                tx
            })
            .clone()
    }
}

fn add_observed(graph: &mut Graph, e: &ObservedEdge) {
    let job = NodeRef::job(&e.job_namespace, &e.job_name);
    let dataset = NodeRef::dataset(&e.dataset_namespace, &e.dataset_name);
    if e.direction == "in" {
        graph.add(&dataset, &job, OBSERVED);
    } else {
        graph.add(&job, &dataset, OBSERVED);
    }
}

/// Commits queued events in batches; answers each sender; adds new events' edges to the graph.
async fn write_loop(
    mut rx: mpsc::Receiver<(NewLineageEvent, Reply)>,
    store: Arc<dyn Store>,
    lineage: Arc<Lineage>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let (events, replies): (Vec<NewLineageEvent>, Vec<Reply>) = batch.drain(..).unzip();
        match store.record_lineage(&events).await {
            Ok(new) => {
                {
                    let mut graph = lineage.graph.write().expect("lineage lock");
                    for (event, _) in events.iter().zip(&new).filter(|(_, n)| **n) {
                        for e in &event.edges {
                            add_observed(&mut graph, e);
                        }
                    }
                }
                for (reply, n) in replies.into_iter().zip(new) {
                    let _ = reply.send(Ok(n));
                }
            }
            Err(e) => {
                tracing::error!("error: recording {} lineage events: {e:#}", events.len());
                let temporary = e.is_temporary();
                for reply in replies {
                    let _ = reply.send(Err(Failed { temporary }));
                }
            }
        }
    }
}

/// The edges an event of `job` shows, in olo's names.
pub fn edges_of(
    event: &openlineage::RunEvent,
    job: &NodeRef,
    resolver: &Resolver,
) -> Vec<ObservedEdge> {
    let edge = |d: &openlineage::DatasetRef, direction: &str| {
        let dataset = resolver.dataset(d);
        ObservedEdge {
            job_namespace: job.namespace.clone(),
            job_name: job.name.clone(),
            dataset_namespace: dataset.namespace,
            dataset_name: dataset.name,
            direction: direction.into(),
        }
    };
    let mut edges: Vec<ObservedEdge> = event
        .inputs
        .iter()
        .map(|d| edge(d, "in"))
        .chain(event.outputs.iter().map(|d| edge(d, "out")))
        .collect();
    let mut seen = std::collections::HashSet::new();
    edges.retain(|e| seen.insert(e.clone()));
    edges
}

/// `POST /api/v1/lineage`. With API tokens or OpenID Connect configured the sender needs an
/// identity (OpenLineage's HTTP transport sends a token as `Authorization: Bearer` with
/// `auth.type = api_key`); without any, the endpoint is open like a local Marquez. Refusals are
/// counted (`olo_lineage_events_total{result="unauthorized"}`), not audited: a misconfigured
/// transport would fill the audit log with one entry per event.
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let auth_configured = !state.config.tokens.is_empty() || state.oidc.is_some();
    let who = auth::identify(&state, &axum::http::Method::POST, &headers).await;
    if auth_configured && !matches!(who, Ok(Some(_))) {
        state.metrics.lineage_result("unauthorized");
        return Err(ApiError::unauthorized(
            "lineage events need an API token here: set the OpenLineage transport's auth (type api_key) to a token from olo's settings ([[api.tokens]])",
        ));
    }
    let (event, raw) = openlineage::parse(&body).map_err(|message| {
        state.metrics.lineage_result("invalid");
        ApiError::bad_request(format!("not a valid OpenLineage RunEvent: {message}"))
    })?;
    state.lineage.sync(state.catalog().as_ref());
    let resolver = state.lineage.resolver();
    let job = state.lineage.job_of(&event, &resolver);
    let edges = edges_of(&event, &job, &resolver);
    let record = NewLineageEvent {
        dedupe_key: event.dedupe_key(),
        run_id: event.run_id.clone(),
        event_type: event.event_type.clone(),
        event_time: event.event_time.with_timezone(&Utc),
        job_namespace: event.job_namespace.clone(),
        job_name: event.job_name.clone(),
        raw,
        edges,
    };
    let (tx, rx) = oneshot::channel();
    let writer = state.lineage.writer(state.store.clone());
    writer
        .send((record, tx))
        .await
        .map_err(|_| ApiError::internal(&"the lineage writer stopped"))?;
    let new = rx
        .await
        .map_err(|_| ApiError::internal(&"the lineage writer stopped"))?
        .map_err(|f| {
            if f.temporary {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the state store is not reachable; send the event again",
                )
            } else {
                ApiError::internal(&"the state store refused a lineage event (see the log above)")
            }
        })?;
    state
        .metrics
        .lineage_result(if new { "recorded" } else { "duplicate" });
    Ok((
        StatusCode::OK,
        Json(json!({ "status": if new { "recorded" } else { "duplicate" } })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphQuery {
    pub node_id: Option<String>,
    pub depth: Option<String>,
}

/// The depth a query asks for (Marquez's default 20), at most [`MAX_DEPTH`].
pub fn depth(q: Option<&str>) -> Result<usize, String> {
    match q.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(DEFAULT_DEPTH),
        Some(d) => d
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_DEPTH).contains(n))
            .ok_or_else(|| format!("`depth` must be a whole number from 1 to {MAX_DEPTH}")),
    }
}

/// The node a query names, or why not.
pub fn node(state: &AppState, id: Option<&str>) -> Result<NodeRef, ApiError> {
    let id = id.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "`nodeId` is required: dataset:<namespace>:<name> or job:<namespace>:<name>",
        )
    })?;
    if !id.starts_with("dataset:") && !id.starts_with("job:") {
        return Err(ApiError::bad_request(format!(
            "`nodeId` must start with dataset: or job:, not {id:?}"
        )));
    }
    state
        .lineage
        .read()
        .find(id)
        .ok_or_else(|| ApiError::not_found(format!("no lineage for {id}")))
}

/// `GET /api/v1/lineage?nodeId=&depth=`.
pub async fn graph(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<GraphQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.need(&state, Need::Member).await?;
    state.lineage.sync(state.catalog().as_ref());
    let depth = depth(q.depth.as_deref()).map_err(ApiError::bad_request)?;
    let start = node(&state, q.node_id.as_deref())?;
    let graph = state.lineage.read();
    let sub = graph
        .walk(&start, depth, MAX_NODES)
        .ok_or_else(|| ApiError::not_found(format!("no lineage for {}", start.id())))?;
    Ok(Json(lineage::marquez(&sub)))
}

/// `GET /api/v1/workspaces/{ws}/jobs/{job}/lineage`: the job's declared and observed datasets
/// where they differ, and what its outputs feed downstream.
pub async fn job_lineage(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((ws, job)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller
        .need(&state, Need::Workspace(&ws, Role::Viewer))
        .await?;
    let catalog = state
        .catalog()
        .ok_or_else(|| ApiError::not_found("no valid commit has been read yet"))?;
    if catalog.job(&ws, &job).is_none() {
        return Err(ApiError::not_found(format!(
            "no job `{ws}/{job}` in the live configuration"
        )));
    }
    state.lineage.sync(Some(&catalog));
    let node = NodeRef::job(&ws, &job);
    let graph = state.lineage.read();
    Ok(Json(json!({
        "node_id": node.id(),
        "mismatches": graph.mismatches(&node),
        "impact": graph.impact(&node, 5),
    })))
}

impl crate::metrics::Metrics {
    pub fn lineage_result(&self, result: &'static str) {
        self.lineage_events
            .get_or_create(&ResultLabels { result })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_are_bounded() {
        assert_eq!(depth(None), Ok(DEFAULT_DEPTH));
        assert_eq!(depth(Some("")), Ok(DEFAULT_DEPTH));
        assert_eq!(depth(Some("5")), Ok(5));
        for bad in ["0", "101", "-1", "x", "1.5"] {
            assert!(depth(Some(bad)).is_err(), "{bad}");
        }
    }
}
