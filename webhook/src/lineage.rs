//! Lineage in the server: OpenLineage ingest at `POST /api/v1/lineage` (the path Marquez uses,
//! so OpenLineage clients work unchanged: RunEvents, DatasetEvents and JobEvents, plain or
//! `Content-Encoding: gzip`), the graph at `GET /api/v1/lineage?nodeId=&depth=` in Marquez's
//! shape, and per job where declared and observed lineage differ.
//!
//! The graph and what events said of runs and datasets ([`Observed`]) live in memory (read from
//! the state store at start, then kept up to date by each recorded event and each new live
//! commit), so a query never touches the database. Events are written by one task that commits
//! whatever has queued up in one transaction (group commit): each request is answered once its
//! event is durable.

use std::io::Read as _;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use olo_reconciler::catalog::Catalog;
use olo_reconciler::lineage::{
    self, column, Graph, NodeRef, Observed, Resolver, RunIndex, OBSERVED,
};
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
/// Most events read from the store at once when catching up.
const READ_BATCH: u32 = 1_000;

/// Whether the event was new, or whether the failure was temporary.
type Reply = oneshot::Sender<Result<bool, Failed>>;

/// An event on its way to the writer: the row to record, and the event in olo's names for
/// [`Observed`] once it is recorded.
struct Queued {
    record: NewLineageEvent,
    sighting: Sighting,
}

/// One parsed event with its job and datasets in olo's names.
struct Sighting {
    event: openlineage::Event,
    job: Option<NodeRef>,
    datasets: Vec<NodeRef>,
    /// The `columnLineage` facets of its outputs, input fields in olo's names.
    columns: Vec<(NodeRef, column::FacetFields)>,
}

#[derive(Debug, Clone, Copy)]
struct Failed {
    temporary: bool,
}

/// The lineage graph and its writer.
#[derive(Default)]
pub struct Lineage {
    graph: RwLock<Graph>,
    /// Runs, dataset fields and facets, the names events give olo's jobs.
    observed: RwLock<Observed>,
    /// The id of the last stored event [`Observed`] holds.
    read_up_to: tokio::sync::Mutex<i64>,
    /// Whether the stored events were read back with a live catalog's names.
    replayed: std::sync::atomic::AtomicBool,
    /// The catalog whose declared edges and names the graph holds (compared by pointer).
    declared_for: Mutex<Option<Arc<Catalog>>>,
    resolver: RwLock<Arc<Resolver>>,
    /// Runs attributed to olo jobs (in memory: a parent run and its children report within
    /// minutes, so a restart in between is the only way to lose the link).
    runs: Mutex<RunIndex>,
    writer: OnceLock<mpsc::Sender<(Queued, Reply)>>,
}

impl Lineage {
    /// Adds the observed edges recorded in the store, and what the events recorded since the
    /// last call say of runs and datasets (at start, and every few seconds on replicas that
    /// share a store). Reading an event twice changes nothing.
    pub async fn load(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let edges = store.observed_edges().await?;
        {
            let mut graph = self.graph.write().expect("lineage lock");
            for e in &edges {
                add_observed(&mut graph, e);
            }
        }
        let mut read_up_to = self.read_up_to.lock().await;
        self.read_events(store, &mut read_up_to, |event, raw, s| {
            let s = s.sighting(event, raw, &s.resolver());
            s.record(&mut self.observed.write().expect("lineage lock"), raw);
        })
        .await?;
        Ok(edges.len())
    }

    /// Reads every stored event again, once, when a live catalog is first known: events read at
    /// start were recorded under the names they were sent with, and a run attributed to an olo
    /// job only through its parent run (openlineage-spark, dbt-ol) needs the parent's event read
    /// with the catalog's names first. The answer is built aside and swapped in.
    pub async fn replay_with(
        &self,
        catalog: Option<&Arc<Catalog>>,
        store: &dyn Store,
    ) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if catalog.is_none() || self.replayed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.sync(catalog);
        let mut read_up_to = self.read_up_to.lock().await;
        let mut fresh = Observed::default();
        let mut cursor = 0;
        self.read_events(store, &mut cursor, |event, raw, s| {
            s.sighting(event, raw, &s.resolver())
                .record(&mut fresh, raw);
        })
        .await?;
        *self.observed.write().expect("lineage lock") = fresh;
        // What the writer recorded meanwhile into the answer swapped out.
        self.read_events(store, &mut cursor, |event, raw, s| {
            let s = s.sighting(event, raw, &s.resolver());
            s.record(&mut self.observed.write().expect("lineage lock"), raw);
        })
        .await?;
        *read_up_to = cursor;
        self.replayed.store(true, Ordering::Release);
        Ok(())
    }

    /// Hands each stored event after `cursor` to `record`, oldest first, moving the cursor.
    async fn read_events(
        &self,
        store: &dyn Store,
        cursor: &mut i64,
        mut record: impl FnMut(openlineage::Event, &serde_json::Value, &Self),
    ) -> Result<(), StoreError> {
        loop {
            let events = store.lineage_events_after(*cursor, READ_BATCH).await?;
            let Some((last, _)) = events.last() else {
                return Ok(());
            };
            *cursor = *last;
            for (id, raw) in &events {
                // Stored events were checked when they came in; one that no longer parses
                // (a stricter olo) is skipped, not fatal.
                let Ok(event) = openlineage::check(raw) else {
                    tracing::warn!(
                        event_id = id,
                        "a stored lineage event no longer parses; skipped"
                    );
                    continue;
                };
                record(event, raw, self);
            }
        }
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
        // What was recorded before this catalog (events read back at start) under the names
        // this catalog gives olo's jobs and tables.
        self.observed.write().expect("lineage lock").rename(
            |j| resolver.job(&j.namespace, &j.name),
            |d| {
                resolver.dataset(&openlineage::DatasetRef {
                    namespace: d.namespace.clone(),
                    name: d.name.clone(),
                    symlinks: Vec::new(),
                })
            },
        );
        *self.resolver.write().expect("lineage lock") = Arc::new(resolver);
        *current = catalog.cloned();
    }

    fn resolver(&self) -> Arc<Resolver> {
        self.resolver.read().expect("lineage lock").clone()
    }

    /// The job a run event belongs to in olo's names, remembering its run when it is an olo
    /// job's (so the runs it parents reach the same job).
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

    /// An event's job and datasets in olo's names (`raw`: the event as received).
    fn sighting(
        &self,
        event: openlineage::Event,
        raw: &serde_json::Value,
        resolver: &Resolver,
    ) -> Sighting {
        use openlineage::Event;
        let (job, datasets) = match &event {
            Event::Run(e) => (
                Some(self.job_of(e, resolver)),
                e.inputs
                    .iter()
                    .chain(&e.outputs)
                    .map(|d| resolver.dataset(d))
                    .collect(),
            ),
            Event::Job(e) => (
                Some(resolver.job(&e.job_namespace, &e.job_name)),
                e.inputs
                    .iter()
                    .chain(&e.outputs)
                    .map(|d| resolver.dataset(d))
                    .collect(),
            ),
            Event::Dataset(e) => (None, vec![resolver.dataset(&e.dataset)]),
        };
        let outputs: &[NodeRef] = match &event {
            Event::Run(e) => &datasets[e.inputs.len()..],
            Event::Job(e) => &datasets[e.inputs.len()..],
            Event::Dataset(_) => &[],
        };
        let columns = column::output_facets(raw)
            .into_iter()
            .filter_map(|(i, facet)| {
                let fields = column::parse_facet(facet, |namespace, name| {
                    resolver.dataset(&openlineage::DatasetRef {
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                        symlinks: Vec::new(),
                    })
                });
                Some((outputs.get(i)?.clone(), fields))
            })
            .collect();
        Sighting {
            event,
            job,
            datasets,
            columns,
        }
    }

    /// What events said of runs and datasets.
    pub fn observed(&self) -> std::sync::RwLockReadGuard<'_, Observed> {
        self.observed.read().expect("lineage lock")
    }

    /// The node a Marquez node id names: one of the graph's, or a job by the name its events
    /// gave it (`job:default:sales__orders_daily.revenue` is `job:sales:orders_daily`).
    pub fn find(&self, id: &str) -> Option<NodeRef> {
        if let Some(node) = self.read().find(id) {
            return Some(node);
        }
        let rest = id.strip_prefix("job:")?;
        let observed = self.observed();
        rest.match_indices(':').find_map(|(i, _)| {
            observed
                .alias(&NodeRef::job(&rest[..i], &rest[i + 1..]))
                .cloned()
        })
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Graph> {
        self.graph.read().expect("lineage lock")
    }

    fn writer(self: &Arc<Self>, store: Arc<dyn Store>) -> mpsc::Sender<(Queued, Reply)> {
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

/// Commits queued events in batches; answers each sender; adds new events' edges to the graph
/// and what they say of runs and datasets to [`Observed`].
async fn write_loop(
    mut rx: mpsc::Receiver<(Queued, Reply)>,
    store: Arc<dyn Store>,
    lineage: Arc<Lineage>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let (queued, replies): (Vec<Queued>, Vec<Reply>) = batch.drain(..).unzip();
        let (events, sightings): (Vec<NewLineageEvent>, Vec<Sighting>) =
            queued.into_iter().map(|q| (q.record, q.sighting)).unzip();
        match store.record_lineage(&events).await {
            Ok(new) => {
                {
                    let mut graph = lineage.graph.write().expect("lineage lock");
                    let mut observed = lineage.observed.write().expect("lineage lock");
                    for ((event, s), _) in
                        events.iter().zip(&sightings).zip(&new).filter(|(_, n)| **n)
                    {
                        for e in &event.edges {
                            add_observed(&mut graph, e);
                        }
                        s.record(&mut observed, &event.raw);
                    }
                }
                for (reply, n) in replies.into_iter().zip(new) {
                    let _ = reply.send(Ok(n));
                }
            }
            Err(e) => {
                tracing::error!(
                    events = events.len(),
                    "error: recording lineage events: {e:#}"
                );
                let temporary = e.is_temporary();
                for reply in replies {
                    let _ = reply.send(Err(Failed { temporary }));
                }
            }
        }
    }
}

/// The edges an event shows: each input to its job, its job to each output (olo's names,
/// `datasets` being the inputs then the outputs). A `DatasetEvent` shows none.
fn edges_of(s: &Sighting) -> Vec<ObservedEdge> {
    let (Some(job), Some(inputs)) = (&s.job, s.event_inputs()) else {
        return Vec::new();
    };
    let mut edges: Vec<ObservedEdge> = s
        .datasets
        .iter()
        .enumerate()
        .map(|(i, dataset)| ObservedEdge {
            job_namespace: job.namespace.clone(),
            job_name: job.name.clone(),
            dataset_namespace: dataset.namespace.clone(),
            dataset_name: dataset.name.clone(),
            direction: if i < inputs { "in" } else { "out" }.into(),
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    edges.retain(|e| seen.insert(e.clone()));
    edges
}

impl Sighting {
    /// Records what the event says of runs, datasets and fields.
    fn record(&self, observed: &mut Observed, raw: &serde_json::Value) {
        observed.record(&self.event, raw, self.job.as_ref(), &self.datasets);
        let time = self.event.event_time().with_timezone(&Utc);
        for (output, fields) in &self.columns {
            observed.record_columns(output, time, fields.clone());
        }
    }

    /// How many of `datasets` are inputs, for the events that have inputs and outputs.
    fn event_inputs(&self) -> Option<usize> {
        match &self.event {
            openlineage::Event::Run(e) => Some(e.inputs.len()),
            openlineage::Event::Job(e) => Some(e.inputs.len()),
            openlineage::Event::Dataset(_) => None,
        }
    }
}

/// The body as sent, or gunzipped when `Content-Encoding: gzip` (openlineage-python's
/// `compression: gzip`); at most [`MAX_BODY`] bytes either way.
fn decoded(headers: &HeaderMap, body: Bytes) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") | Some("") => Ok(body),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::bad_request(format!("the body is not valid gzip: {e}")))?;
            if out.len() > MAX_BODY {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the event is more than {MAX_BODY} bytes once decompressed"),
                ));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Encoding {other:?} is not supported; send the event plain or gzip"),
        )),
    }
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
    let body = decoded(&headers, body).inspect_err(|_| {
        state.metrics.lineage_result("invalid");
    })?;
    let (event, raw) = openlineage::parse(&body).map_err(|message| {
        state.metrics.lineage_result("invalid");
        ApiError::bad_request(format!("not a valid OpenLineage event: {message}"))
    })?;
    state.lineage.sync(state.catalog().as_ref());
    let resolver = state.lineage.resolver();
    let sighting = state.lineage.sighting(event, &raw, &resolver);
    let (job_namespace, job_name) = match sighting.event.job() {
        Some((ns, name)) => (Some(ns.to_string()), Some(name.to_string())),
        None => (None, None),
    };
    let (run_id, event_type) = match &sighting.event {
        openlineage::Event::Run(e) => (Some(e.run_id.clone()), e.event_type.clone()),
        _ => (None, None),
    };
    let record = NewLineageEvent {
        dedupe_key: sighting.event.dedupe_key(),
        run_id,
        event_type,
        event_time: sighting.event.event_time().with_timezone(&Utc),
        job_namespace,
        job_name,
        raw,
        edges: edges_of(&sighting),
    };
    let (tx, rx) = oneshot::channel();
    let writer = state.lineage.writer(state.store.clone());
    writer
        .send((Queued { record, sighting }, tx))
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
    Ok(Json(lineage::marquez(&sub, &state.lineage.observed())))
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

    fn gzip(data: &[u8]) -> Bytes {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    fn encoded(encoding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_ENCODING,
            encoding.parse().unwrap(),
        );
        h
    }

    #[test]
    fn gzip_bodies_are_decompressed_within_the_limit() {
        let event = br#"{"eventTime": "2026-11-27T04:30:00Z"}"#;
        let plain = decoded(&HeaderMap::new(), Bytes::from_static(event)).unwrap();
        assert_eq!(&plain[..], event);
        for encoding in ["gzip", "GZIP", "x-gzip"] {
            let body = decoded(&encoded(encoding), gzip(event)).unwrap();
            assert_eq!(&body[..], event, "{encoding}");
        }
        // A small body that inflates past the limit is refused, not decompressed whole.
        let bomb = gzip(&vec![b' '; MAX_BODY + 1]);
        assert!(bomb.len() < 64 * 1024);
        let e = decoded(&encoded("gzip"), bomb).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        );
        let e = decoded(&encoded("gzip"), Bytes::from_static(b"not gzip")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = decoded(&encoded("br"), Bytes::from_static(event)).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

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
