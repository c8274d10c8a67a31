//! The lineage graph as olo serves it: declared edges from the live catalog, observed edges and
//! what events said of runs and datasets ([`Observed`]), in memory (read from the state store at
//! start, then kept up to date by each recorded event and each new live commit), so a query never
//! touches the database. Events are written by one task that commits whatever has queued up in
//! one transaction (group commit): each [`Lineage::record`] returns once its event is durable.
//!
//! Not pure like the rest of [`crate::lineage`]: it reads and writes the state store.

use std::sync::{Arc, Mutex, OnceLock, RwLock};

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use super::{column, declared_edges, Graph, NodeRef, Observed, Resolver, RunIndex, OBSERVED};
use crate::catalog::Catalog;
use crate::openlineage;
use crate::store::{NewLineageEvent, ObservedEdge, Store, StoreError};

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

/// Why an event was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Failed {
    /// The state store did not answer (send the event again).
    #[error("the state store is not reachable")]
    Unavailable,
    /// The state store refused the event (logged).
    #[error("the state store refused the event")]
    Refused,
    /// The writer task is gone (the server is stopping).
    #[error("the lineage writer stopped")]
    Stopped,
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
    /// Whether any stored events were read into [`Observed`] (with or without a catalog's
    /// names): until then [`Lineage::load`] reads only edges, and the first read is the replay.
    read_any: std::sync::atomic::AtomicBool,
    /// Stored events read back since start (each read of each event counts).
    events_read: std::sync::atomic::AtomicU64,
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
    /// last call say of runs and datasets (every few seconds on replicas that share a store).
    /// Reading an event twice changes nothing. At start only the edges are read: the events
    /// are read once, by [`Lineage::replay_with`] after the first reconcile, in the live
    /// catalog's names (a read without them would be read again).
    pub async fn load(&self, store: &dyn Store) -> Result<usize, StoreError> {
        use std::sync::atomic::Ordering;
        let edges = store.observed_edges().await?;
        {
            let mut graph = self.graph.write().expect("lineage lock");
            for e in &edges {
                add_observed(&mut graph, e);
            }
        }
        if !self.read_any.load(Ordering::Acquire) {
            return Ok(edges.len());
        }
        let mut read_up_to = self.read_up_to.lock().await;
        self.read_events(store, &mut read_up_to, |event, raw, s| {
            let s = s.sighting(event, raw, &s.resolver());
            s.record(&mut self.observed.write().expect("lineage lock"), raw);
        })
        .await?;
        Ok(edges.len())
    }

    /// Reads every stored event, once, when a live catalog is first known: a run attributed to
    /// an olo job only through its parent run (openlineage-spark, dbt-ol) needs the parent's
    /// event read with the catalog's names first. The answer is built aside and swapped in.
    /// Without a catalog (the first commit is invalid, or the branch unreadable) the events are
    /// read under the names they were sent with, and read again once a catalog comes.
    pub async fn replay_with(
        &self,
        catalog: Option<&Arc<Catalog>>,
        store: &dyn Store,
    ) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.replayed.load(Ordering::Acquire) {
            return Ok(());
        }
        if catalog.is_none() {
            if !self.read_any.load(Ordering::Acquire) {
                let mut read_up_to = self.read_up_to.lock().await;
                self.read_events(store, &mut read_up_to, |event, raw, s| {
                    let s = s.sighting(event, raw, &s.resolver());
                    s.record(&mut self.observed.write().expect("lineage lock"), raw);
                })
                .await?;
                self.read_any.store(true, Ordering::Release);
            }
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
        self.read_any.store(true, Ordering::Release);
        Ok(())
    }

    /// Stored events read back since start (each read of each event counts: at start every
    /// event once).
    pub fn events_read_back(&self) -> u64 {
        self.events_read.load(std::sync::atomic::Ordering::Relaxed)
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
            self.events_read
                .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
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
            Some(c) => (declared_edges(c), Resolver::new(c)),
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

    /// Records one checked event (`raw`: as received) in the store and, once it is durable, in
    /// the graph and [`Observed`]; `Ok(false)` when the store had it already (a resend).
    pub async fn record(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        catalog: Option<&Arc<Catalog>>,
        event: openlineage::Event,
        raw: serde_json::Value,
    ) -> Result<bool, Failed> {
        self.sync(catalog);
        let sighting = self.sighting(event, &raw, &self.resolver());
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
        self.writer(store.clone())
            .send((Queued { record, sighting }, tx))
            .await
            .map_err(|_| Failed::Stopped)?;
        rx.await.map_err(|_| Failed::Stopped)?
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
                let failed = if e.is_temporary() {
                    Failed::Unavailable
                } else {
                    Failed::Refused
                };
                for reply in replies {
                    let _ = reply.send(Err(failed));
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
