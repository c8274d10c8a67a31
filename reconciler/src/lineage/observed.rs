//! What OpenLineage events say besides edges: each job's runs (state, times, error), each
//! dataset's fields (the `schema` facet) and facets, the names events give olo's jobs, and column
//! lineage (the `columnLineage` facets of outputs, [`super::column`]). Pure, and in Marquez's
//! shapes (`Job`, `Run`, `Dataset`) for its read API and the graph's nodes.
//!
//! Recording is idempotent and ordered by event time, not arrival: the same event recorded twice
//! (a replica reading back what it took in itself) changes nothing, and a `START` arriving after
//! the `COMPLETE` of the same run does not make it running again.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::column::{Columns, FacetFields, FieldRef};
use super::NodeRef;
use crate::openlineage::Event;

/// Most runs kept per job (the newest).
pub const RUNS_PER_JOB: usize = 100;

/// One run of a job, from its events.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: String,
    /// The earliest and latest event time of the run.
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Marquez's run states: `NEW`, `RUNNING`, `COMPLETED`, `FAILED`, `ABORTED`.
    pub state: &'static str,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// From the `nominalTime` run facet, as sent.
    pub nominal_start_time: Option<Value>,
    pub nominal_end_time: Option<Value>,
    /// From the `errorMessage` run facet of a failed run.
    pub error_message: Option<String>,
    pub facets: Map<String, Value>,
    /// The job facets the run's events carried (Marquez's job facets of a run: what the job
    /// was when this run ran, its SQL or documentation).
    pub job_facets: Map<String, Value>,
    /// The event time `state` was set from.
    state_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSeen {
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub facets: Map<String, Value>,
    /// Oldest first, at most [`RUNS_PER_JOB`].
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetSeen {
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// When a completed run last wrote it.
    pub last_modified_at: Option<DateTime<Utc>>,
    /// Marquez's fields (`name`, `type`, `tags`, `description`) from the latest `schema` facet.
    pub fields: Vec<Value>,
    fields_at: Option<DateTime<Utc>>,
    pub facets: Map<String, Value>,
}

/// Everything recorded, by node (in olo's names, as in the graph).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    jobs: HashMap<NodeRef, JobSeen>,
    datasets: HashMap<NodeRef, DatasetSeen>,
    /// A job as its events name it (`job:default:sales__orders_daily.revenue`) → the olo job
    /// they were attributed to (`job:sales:orders_daily`).
    aliases: HashMap<NodeRef, NodeRef>,
    /// Run id → its job.
    run_jobs: HashMap<String, NodeRef>,
    /// Column lineage, from the `columnLineage` facets of output datasets.
    columns: Columns,
}

fn utc(t: DateTime<chrono::FixedOffset>) -> DateTime<Utc> {
    t.with_timezone(&Utc)
}

fn earliest(a: Option<DateTime<Utc>>, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(t, |a| a.min(t)))
}

fn latest(a: Option<DateTime<Utc>>, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(t, |a| a.max(t)))
}

fn facets(v: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    v.and_then(Value::as_object).into_iter().flatten()
}

/// The fields of a `schema` dataset facet in Marquez's shape.
fn schema_fields(schema: &Value) -> Option<Vec<Value>> {
    let fields = schema.get("fields")?.as_array()?;
    Some(
        fields
            .iter()
            .filter_map(|f| {
                let name = f.get("name")?.as_str()?;
                Some(json!({
                    "name": name,
                    "type": f.get("type").and_then(Value::as_str),
                    "tags": [],
                    "description": f.get("description").and_then(Value::as_str),
                }))
            })
            .collect(),
    )
}

impl Observed {
    /// Records one event. `job` is the event's job in olo's names (`None` for a
    /// `DatasetEvent`); `datasets` the event's datasets in olo's names, inputs then outputs (or
    /// the one dataset of a `DatasetEvent`), in the order `raw` lists them.
    pub fn record(
        &mut self,
        event: &Event,
        raw: &Value,
        job: Option<&NodeRef>,
        datasets: &[NodeRef],
    ) {
        let time = utc(event.event_time());
        if let (Some(job), Some((ns, name))) = (job, event.job()) {
            let sent_as = NodeRef::job(ns, name);
            if &sent_as != job {
                self.aliases.insert(sent_as, job.clone());
            }
            self.record_job(job, time, raw);
        }
        let completed_run =
            matches!(event, Event::Run(e) if e.event_type.as_deref() == Some("COMPLETE"));
        let raw_datasets: Vec<(&Value, bool)> = match event {
            Event::Dataset(_) => raw.get("dataset").map(|d| (d, false)).into_iter().collect(),
            _ => ["inputs", "outputs"]
                .iter()
                .flat_map(|key| {
                    raw.get(*key)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(move |d| (d, *key == "outputs"))
                })
                .collect(),
        };
        for (node, (d, output)) in datasets.iter().zip(raw_datasets) {
            let seen = self.datasets.entry(node.clone()).or_default();
            seen.created_at = earliest(seen.created_at, time);
            seen.updated_at = latest(seen.updated_at, time);
            if output && completed_run {
                seen.last_modified_at = latest(seen.last_modified_at, time);
            }
            // Output datasets carry their own facets, inputs theirs and `inputFacets`.
            let own = d.get("facets");
            if let Some(fields) = own.and_then(|f| f.get("schema")).and_then(schema_fields) {
                if seen.fields_at.is_none_or(|at| at <= time) {
                    seen.fields = fields;
                    seen.fields_at = Some(time);
                }
            }
            for (k, v) in facets(own) {
                seen.facets.insert(k.clone(), v.clone());
            }
        }
        if let (Event::Run(e), Some(job)) = (event, job) {
            self.record_run(job, &e.run_id, e.event_type.as_deref(), time, raw);
        }
    }

    /// Records the `columnLineage` facet of an output dataset of an event at `time` (its input
    /// fields' datasets already in olo's names, see [`super::column::parse_facet`]).
    pub fn record_columns(&mut self, output: &NodeRef, time: DateTime<Utc>, facet: FacetFields) {
        self.columns.record(output, time, facet);
    }

    fn record_job(&mut self, job: &NodeRef, time: DateTime<Utc>, raw: &Value) {
        let seen = self.jobs.entry(job.clone()).or_default();
        seen.created_at = earliest(seen.created_at, time);
        seen.updated_at = latest(seen.updated_at, time);
        for (k, v) in facets(raw.pointer("/job/facets")) {
            seen.facets.insert(k.clone(), v.clone());
        }
    }

    fn record_run(
        &mut self,
        job: &NodeRef,
        run_id: &str,
        event_type: Option<&str>,
        time: DateTime<Utc>,
        raw: &Value,
    ) {
        let seen = self.jobs.entry(job.clone()).or_default();
        let i = match seen.runs.iter().position(|r| r.id == run_id) {
            Some(i) => i,
            None => {
                seen.runs.push(Run {
                    id: run_id.to_string(),
                    created_at: time,
                    updated_at: time,
                    state: "NEW",
                    started_at: None,
                    ended_at: None,
                    nominal_start_time: None,
                    nominal_end_time: None,
                    error_message: None,
                    facets: Map::new(),
                    job_facets: Map::new(),
                    state_at: None,
                });
                self.run_jobs.insert(run_id.to_string(), job.clone());
                seen.runs.len() - 1
            }
        };
        let run = &mut seen.runs[i];
        run.created_at = run.created_at.min(time);
        run.updated_at = run.updated_at.max(time);
        let state = match event_type {
            Some("START") | Some("RUNNING") => Some("RUNNING"),
            Some("COMPLETE") => Some("COMPLETED"),
            Some("FAIL") => Some("FAILED"),
            Some("ABORT") => Some("ABORTED"),
            _ => None,
        };
        if let Some(state) = state {
            if run.state_at.is_none_or(|at| at <= time) {
                run.state = state;
                run.state_at = Some(time);
            }
            if state == "RUNNING" {
                run.started_at = earliest(run.started_at, time);
            } else {
                run.ended_at = latest(run.ended_at, time);
            }
        }
        let run_facets = raw.pointer("/run/facets");
        if let Some(nominal) = run_facets.and_then(|f| f.get("nominalTime")) {
            run.nominal_start_time = nominal.get("nominalStartTime").cloned();
            run.nominal_end_time = nominal.get("nominalEndTime").cloned();
        }
        if let Some(message) = run_facets
            .and_then(|f| f.pointer("/errorMessage/message"))
            .and_then(Value::as_str)
        {
            run.error_message = Some(message.to_string());
        }
        for (k, v) in facets(run_facets) {
            run.facets.insert(k.clone(), v.clone());
        }
        for (k, v) in facets(raw.pointer("/job/facets")) {
            run.job_facets.insert(k.clone(), v.clone());
        }
        seen.runs.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        if seen.runs.len() > RUNS_PER_JOB {
            for old in seen.runs.drain(..seen.runs.len() - RUNS_PER_JOB) {
                self.run_jobs.remove(&old.id);
            }
        }
    }

    /// Moves what was recorded under one name to the name `job` or `dataset` gives it now, when
    /// they differ (events read back at start, before the live catalog said which jobs and
    /// tables are olo's, were recorded under the names they were sent with). The old name of a
    /// job becomes an alias.
    pub fn rename(
        &mut self,
        job: impl Fn(&NodeRef) -> NodeRef,
        dataset: impl Fn(&NodeRef) -> NodeRef,
    ) {
        let moves: Vec<(NodeRef, NodeRef)> = self
            .jobs
            .keys()
            .map(|k| (k.clone(), job(k)))
            .filter(|(from, to)| from != to)
            .collect();
        for (from, to) in moves {
            let Some(seen) = self.jobs.remove(&from) else {
                continue;
            };
            for run in &seen.runs {
                self.run_jobs.insert(run.id.clone(), to.clone());
            }
            self.aliases.insert(from, to.clone());
            let into = self.jobs.entry(to).or_default();
            into.created_at = seen.created_at.into_iter().chain(into.created_at).min();
            into.updated_at = seen.updated_at.into_iter().chain(into.updated_at).max();
            for (k, v) in seen.facets {
                into.facets.entry(k).or_insert(v);
            }
            for run in seen.runs {
                if !into.runs.iter().any(|r| r.id == run.id) {
                    into.runs.push(run);
                }
            }
            into.runs.sort_by(|a, b| {
                a.created_at
                    .cmp(&b.created_at)
                    .then_with(|| a.id.cmp(&b.id))
            });
            if into.runs.len() > RUNS_PER_JOB {
                for old in into.runs.drain(..into.runs.len() - RUNS_PER_JOB) {
                    self.run_jobs.remove(&old.id);
                }
            }
        }
        let moves: Vec<(NodeRef, NodeRef)> = self
            .datasets
            .keys()
            .map(|k| (k.clone(), dataset(k)))
            .filter(|(from, to)| from != to)
            .collect();
        for (from, to) in moves {
            let Some(seen) = self.datasets.remove(&from) else {
                continue;
            };
            let into = self.datasets.entry(to).or_default();
            into.created_at = seen.created_at.into_iter().chain(into.created_at).min();
            into.updated_at = seen.updated_at.into_iter().chain(into.updated_at).max();
            into.last_modified_at = seen
                .last_modified_at
                .into_iter()
                .chain(into.last_modified_at)
                .max();
            if seen.fields_at > into.fields_at {
                into.fields = seen.fields;
                into.fields_at = seen.fields_at;
            }
            for (k, v) in seen.facets {
                into.facets.entry(k).or_insert(v);
            }
        }
        self.columns.rename(&dataset);
    }

    pub fn job(&self, node: &NodeRef) -> Option<&JobSeen> {
        self.jobs.get(node)
    }

    pub fn dataset(&self, node: &NodeRef) -> Option<&DatasetSeen> {
        self.datasets.get(node)
    }

    /// The olo job a job of the events' names was attributed to.
    pub fn alias(&self, sent_as: &NodeRef) -> Option<&NodeRef> {
        self.aliases.get(sent_as)
    }

    /// A run by id, with its job.
    pub fn run(&self, id: &str) -> Option<(&NodeRef, &Run)> {
        let job = self.run_jobs.get(id)?;
        let run = self.jobs.get(job)?.runs.iter().find(|r| r.id == id)?;
        Some((job, run))
    }

    /// Column lineage.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The fields of a dataset that events named: in its latest `schema` facet, or in a
    /// `columnLineage` facet.
    pub fn known_fields(&self, dataset: &NodeRef) -> BTreeSet<String> {
        let schema = self
            .datasets
            .get(dataset)
            .into_iter()
            .flat_map(|d| &d.fields)
            .filter_map(|f| f.get("name").and_then(Value::as_str))
            .map(str::to_string);
        schema
            .chain(self.columns.fields_of(dataset).cloned())
            .collect()
    }

    /// A field's type in its dataset's latest `schema` facet.
    pub fn field_type(&self, field: &FieldRef) -> Option<String> {
        self.datasets
            .get(&field.dataset)?
            .fields
            .iter()
            .find(|f| f.get("name").and_then(Value::as_str) == Some(field.field.as_str()))?
            .get("type")?
            .as_str()
            .map(str::to_string)
    }

    /// Every job and dataset recorded.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeRef> {
        self.jobs.keys().chain(self.datasets.keys())
    }

    /// A job's node in Marquez's `Job` shape, with the datasets it reads and writes.
    pub fn job_json(&self, node: &NodeRef, inputs: &[&NodeRef], outputs: &[&NodeRef]) -> Value {
        let seen = self.jobs.get(node);
        let ids = |list: &[&NodeRef]| -> Vec<Value> {
            let set: BTreeSet<&NodeRef> = list.iter().copied().collect();
            set.into_iter()
                .map(|d| json!({ "namespace": d.namespace, "name": d.name }))
                .collect()
        };
        let runs: Vec<Value> = seen
            .map(|s| s.runs.iter().rev().take(10).map(run_json).collect())
            .unwrap_or_default();
        let facets = seen.map(|s| Value::Object(s.facets.clone()));
        json!({
            "id": { "namespace": node.namespace, "name": node.name },
            "type": "BATCH",
            "name": node.name,
            "simpleName": node.name.rsplit('.').next().unwrap_or(&node.name),
            "parentJobName": null,
            "createdAt": seen.and_then(|s| s.created_at).map(time),
            "updatedAt": seen.and_then(|s| s.updated_at).map(time),
            "namespace": node.namespace,
            "inputs": ids(inputs),
            "outputs": ids(outputs),
            "location": null,
            "description": null,
            "latestRun": runs.first(),
            "latestRuns": runs,
            "facets": facets.unwrap_or_else(|| json!({})),
            "currentVersion": null,
            // olo keeps no tags or labels; Marquez's web UI reads both as lists.
            "tags": [],
            "labels": [],
            "parentJobUuid": null,
        })
    }

    /// The id of a dataset's current version: olo keeps one version of a dataset, the current
    /// (its latest fields and facets), and names it by what it holds, so the id changes when
    /// its schema does (as Marquez's version ids do) and is the same in every olo.
    pub fn dataset_version(&self, node: &NodeRef) -> String {
        let fields = self
            .datasets
            .get(node)
            .map(|s| Value::from(s.fields.clone()))
            .unwrap_or_default();
        let digest = olo_templates::render::sha256_hex(
            format!("{}\0{}\0{fields}", node.namespace, node.name).as_bytes(),
        );
        let mut bytes = [0u8; 16];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        uuid::Builder::from_custom_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// Marquez's `DatasetVersion` of a dataset's current version ([`Observed::dataset_version`]),
    /// `created_by` the latest run of a job that writes it.
    pub fn dataset_version_json(&self, node: &NodeRef, created_by: Option<&Run>) -> Value {
        let mut v = self.dataset_json(node);
        let seen = self.datasets.get(node);
        let version = self.dataset_version(node);
        v["id"]["version"] = json!(version);
        v["version"] = json!(version);
        v["createdAt"] = json!(seen
            .and_then(|s| s.last_modified_at.or(s.updated_at))
            .map(time));
        v["createdByRun"] = created_by.map(run_json).unwrap_or(Value::Null);
        v["lifecycleState"] = Value::Null;
        if let Some(o) = v.as_object_mut() {
            for key in [
                "currentVersion",
                "deleted",
                "columnLineage",
                "lastLifecycleState",
            ] {
                o.remove(key);
            }
        }
        v
    }

    /// A dataset's node in Marquez's `Dataset` shape.
    pub fn dataset_json(&self, node: &NodeRef) -> Value {
        let seen = self.datasets.get(node);
        json!({
            "id": { "namespace": node.namespace, "name": node.name },
            "type": "DB_TABLE",
            "name": node.name,
            "physicalName": node.name,
            "createdAt": seen.and_then(|s| s.created_at).map(time),
            "updatedAt": seen.and_then(|s| s.updated_at).map(time),
            "namespace": node.namespace,
            "sourceName": node.namespace,
            "fields": seen.map(|s| s.fields.clone()).unwrap_or_default(),
            "tags": [],
            "lastModifiedAt": seen.and_then(|s| s.last_modified_at).map(time),
            "lastLifecycleState": null,
            "description": null,
            "facets": seen.map(|s| Value::Object(s.facets.clone())).unwrap_or_else(|| json!({})),
            "currentVersion": self.dataset_version(node),
            "deleted": false,
            "columnLineage": self.columns.of_dataset(node),
        })
    }
}

/// An ISO 8601 time as Marquez writes it (UTC, `Z`).
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A run in Marquez's `Run` shape.
pub fn run_json(run: &Run) -> Value {
    let duration = match (run.started_at, run.ended_at) {
        (Some(s), Some(e)) if e >= s => Some((e - s).num_milliseconds()),
        _ => None,
    };
    json!({
        "id": run.id,
        "createdAt": time(run.created_at),
        "updatedAt": time(run.updated_at),
        "nominalStartTime": run.nominal_start_time,
        "nominalEndTime": run.nominal_end_time,
        "state": run.state,
        "startedAt": run.started_at.map(time),
        "endedAt": run.ended_at.map(time),
        "durationMs": duration,
        "args": {},
        "errorMessage": run.error_message,
        "facets": run.facets,
    })
}
