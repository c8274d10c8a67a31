//! OpenLineage events (spec 2-0-x) as olo receives them at `POST /api/v1/lineage`: parsed and
//! checked, with the parts olo keeps (the job, its input and output datasets). Pure.
//!
//! Three kinds, told apart as the spec's `oneOf` does: a `RunEvent` has `run` and `job`, a
//! `JobEvent` (static lineage, no run) has `job` and no `run`, a `DatasetEvent` has `dataset`.
//! The check follows the spec: `eventTime` (date-time), `producer` (URI), `run.runId` (UUID),
//! `job.namespace`/`job.name` and `dataset.namespace`/`dataset.name` are required where their
//! kind has them, `eventType` is one of the spec's values when present, and every dataset has a
//! `namespace` and a `name`. An `eventTime` without an offset (what Python's
//! `datetime.now().isoformat()` gives, which openlineage-python sends as is) is read as UTC.
//! Facets are kept in the raw event and not checked, except the `symlinks` dataset facet, whose
//! table identifiers olo uses to recognise its own tables.

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde_json::Value;

/// Largest event olo accepts (schema facets of wide tables can be large).
pub const MAX_EVENT_BYTES: usize = 5 * 1024 * 1024;
/// Most input or output datasets in one event.
pub const MAX_DATASETS: usize = 10_000;
/// Longest namespace or name olo keeps.
pub const MAX_NAME: usize = 1024;

pub const EVENT_TYPES: &[&str] = &["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"];

/// A dataset as an event names it, with the table identifiers of its `symlinks` facet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRef {
    pub namespace: String,
    pub name: String,
    /// `(namespace, name)` of each `symlinks` identifier.
    pub symlinks: Vec<(String, String)>,
}

/// A run of the `parent` run facet: its job and, when given, its run id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub namespace: String,
    pub name: String,
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub event_type: Option<String>,
    /// As sent (kept for the dedupe key).
    pub event_time_text: String,
    pub event_time: DateTime<FixedOffset>,
    pub run_id: String,
    pub job_namespace: String,
    pub job_name: String,
    pub producer: String,
    /// The `parent` run facet's runs: the parent, then its root when the facet names one.
    /// Airflow's provider passes them to Spark and dbt (`dbt-ol`), whose own job names differ
    /// from the DAG's.
    pub parents: Vec<Parent>,
    pub inputs: Vec<DatasetRef>,
    pub outputs: Vec<DatasetRef>,
}

/// A `DatasetEvent`: one dataset's metadata (its schema facet, say), no run, no job.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetEvent {
    pub event_time_text: String,
    pub event_time: DateTime<FixedOffset>,
    pub producer: String,
    pub dataset: DatasetRef,
}

/// A `JobEvent`: a job and the datasets it reads and writes, declared without a run.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    pub event_time_text: String,
    pub event_time: DateTime<FixedOffset>,
    pub producer: String,
    pub job_namespace: String,
    pub job_name: String,
    pub inputs: Vec<DatasetRef>,
    pub outputs: Vec<DatasetRef>,
}

/// One event of any of the spec's three kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Run(RunEvent),
    Dataset(DatasetEvent),
    Job(JobEvent),
}

impl Event {
    pub fn event_time(&self) -> DateTime<FixedOffset> {
        match self {
            Event::Run(e) => e.event_time,
            Event::Dataset(e) => e.event_time,
            Event::Job(e) => e.event_time,
        }
    }

    /// The job the event names (`namespace`, `name`), if its kind has one.
    pub fn job(&self) -> Option<(&str, &str)> {
        match self {
            Event::Run(e) => Some((&e.job_namespace, &e.job_name)),
            Event::Job(e) => Some((&e.job_namespace, &e.job_name)),
            Event::Dataset(_) => None,
        }
    }

    /// The same event sent twice has the same key: for a run event its run, type, time and job;
    /// for static lineage its kind, time and job or dataset.
    pub fn dedupe_key(&self) -> String {
        let text = match self {
            Event::Run(e) => return e.dedupe_key(),
            Event::Dataset(e) => format!(
                "DatasetEvent\n{}\n{}\n{}",
                e.event_time_text, e.dataset.namespace, e.dataset.name
            ),
            Event::Job(e) => format!(
                "JobEvent\n{}\n{}\n{}",
                e.event_time_text, e.job_namespace, e.job_name
            ),
        };
        olo_templates::render::sha256_hex(text.as_bytes())
    }
}

/// An `eventTime`: an RFC 3339 date-time, or one without an offset, read as UTC.
pub fn event_time(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|t| t.and_utc().fixed_offset())
    })
}

impl RunEvent {
    /// The same event sent twice has the same key: run, type, time and job.
    pub fn dedupe_key(&self) -> String {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}",
            self.run_id,
            self.event_type.as_deref().unwrap_or(""),
            self.event_time_text,
            self.job_namespace,
            self.job_name
        );
        olo_templates::render::sha256_hex(text.as_bytes())
    }
}

/// Parses and checks one event. The error says what is wrong in words for the sender.
pub fn parse(body: &[u8]) -> Result<(Event, Value), String> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(format!(
            "the event is {} bytes; olo accepts at most {MAX_EVENT_BYTES}",
            body.len()
        ));
    }
    let raw: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let event = check(&raw)?;
    Ok((event, raw))
}

/// Checks an event already read as JSON (one the state store kept, say).
pub fn check(v: &Value) -> Result<Event, String> {
    let obj = v
        .as_object()
        .ok_or("an OpenLineage event is a JSON object")?;
    let event_time_text = string(v, &["eventTime"])?;
    let event_time = event_time(&event_time_text).ok_or_else(|| {
        format!("`eventTime` must be an ISO 8601 date-time, not {event_time_text:?}")
    })?;
    let producer = string(v, &["producer"])?;
    if !producer.contains(':') {
        return Err(format!("`producer` must be a URI, not {producer:?}"));
    }
    if !matches!(
        v.get("schemaURL"),
        None | Some(Value::Null | Value::String(_))
    ) {
        return Err("`schemaURL` must be a string (the URI of the OpenLineage schema)".into());
    }
    facets_are_objects(v)?;
    // Whatever an event carries is checked, also the parts its kind does not read (a DatasetEvent's
    // `job`, a RunEvent's `dataset`): olo keeps the event as sent and serves it back.
    if obj.contains_key("job") {
        string(v, &["job", "namespace"])?;
        string(v, &["job", "name"])?;
    }
    if obj.contains_key("dataset") {
        dataset(&v["dataset"], "dataset")?;
    }
    let inputs = datasets(v, "inputs")?;
    let outputs = datasets(v, "outputs")?;
    if !obj.contains_key("run") {
        if obj.contains_key("dataset") {
            return Ok(Event::Dataset(DatasetEvent {
                event_time_text,
                event_time,
                producer,
                dataset: dataset(&v["dataset"], "dataset")?,
            }));
        }
        if obj.contains_key("job") {
            return Ok(Event::Job(JobEvent {
                event_time_text,
                event_time,
                producer,
                job_namespace: string(v, &["job", "namespace"])?,
                job_name: string(v, &["job", "name"])?,
                inputs,
                outputs,
            }));
        }
    }
    let event_type = match v.get("eventType") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if EVENT_TYPES.contains(&t.as_str()) => Some(t.clone()),
        Some(other) => {
            return Err(format!(
                "`eventType` must be one of {}, not {other}",
                EVENT_TYPES.join(", ")
            ))
        }
    };
    let run_id = string(v, &["run", "runId"])?;
    if uuid::Uuid::parse_str(&run_id).is_err() {
        return Err(format!("`run.runId` must be a UUID, not {run_id:?}"));
    }
    let job_namespace = string(v, &["job", "namespace"])?;
    let job_name = string(v, &["job", "name"])?;
    Ok(Event::Run(RunEvent {
        event_type,
        event_time_text,
        event_time,
        run_id,
        job_namespace,
        job_name,
        producer,
        parents: parents(v),
        inputs,
        outputs,
    }))
}

/// Facets are objects, as OpenLineage's schema has them, or absent or null: olo keeps them as
/// sent and serves them back (`GET /api/v1/events/lineage`), so one that is a list or a number is
/// refused here rather than served against the documented shape.
fn facets_are_objects(v: &Value) -> Result<(), String> {
    let fine =
        |facets: Option<&Value>| matches!(facets, None | Some(Value::Null | Value::Object(_)));
    let refuse = |at: &str| Err(format!("`{at}` must be an object of facets"));
    for part in ["run", "job", "dataset"] {
        if !fine(v.get(part).and_then(|p| p.get("facets"))) {
            return refuse(&format!("{part}.facets"));
        }
    }
    for key in ["inputs", "outputs"] {
        let list = v.get(key).and_then(Value::as_array).into_iter().flatten();
        for (i, d) in list.enumerate() {
            if !fine(d.get("facets")) {
                return refuse(&format!("{key}.{i}.facets"));
            }
        }
    }
    Ok(())
}

/// A required, non-empty string at `path`, at most [`MAX_NAME`] characters.
fn string(v: &Value, path: &[&str]) -> Result<String, String> {
    let mut at = v;
    for key in path {
        at = at
            .get(key)
            .ok_or_else(|| format!("`{}` is missing", path.join(".")))?;
    }
    let s = at
        .as_str()
        .ok_or_else(|| format!("`{}` must be a string", path.join(".")))?;
    // Blank as JSON Schema's `\S` sees it: Unicode white space, and the byte order mark.
    if s.chars().all(|c| c.is_whitespace() || c == '\u{feff}') {
        return Err(format!("`{}` is empty", path.join(".")));
    }
    if s.chars().count() > MAX_NAME {
        return Err(format!(
            "`{}` is longer than {MAX_NAME} characters",
            path.join(".")
        ));
    }
    Ok(s.to_string())
}

/// The runs of the `parent` run facet (spec `ParentRunFacet` 1-1-0: `job` and `run`, and the same
/// under `root`); a malformed facet names none (facets are not checked).
fn parents(v: &Value) -> Vec<Parent> {
    ["/run/facets/parent", "/run/facets/parent/root"]
        .iter()
        .filter_map(|at| {
            let parent = v.pointer(at)?;
            let ns = parent.pointer("/job/namespace")?.as_str()?;
            let name = parent.pointer("/job/name")?.as_str()?;
            let fits = |s: &str| !s.trim().is_empty() && s.len() <= MAX_NAME;
            let run_id = parent
                .pointer("/run/runId")
                .and_then(Value::as_str)
                .filter(|id| fits(id))
                .map(str::to_string);
            (fits(ns) && fits(name)).then(|| Parent {
                namespace: ns.to_string(),
                name: name.to_string(),
                run_id,
            })
        })
        .collect()
}

fn datasets(v: &Value, key: &str) -> Result<Vec<DatasetRef>, String> {
    let list = match v.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(format!("`{key}` must be an array of datasets")),
    };
    if list.len() > MAX_DATASETS {
        return Err(format!(
            "`{key}` lists {} datasets; olo accepts at most {MAX_DATASETS}",
            list.len()
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, d)| dataset(d, &format!("{key}[{i}]")))
        .collect()
}

/// One dataset at `at` (`inputs[0]`, `dataset`): its `namespace`, `name` and symlinks.
fn dataset(d: &Value, at: &str) -> Result<DatasetRef, String> {
    let field =
        |field: &str| string(d, &[field]).map_err(|e| e.replacen('`', &format!("`{at}."), 1));
    if !d.is_object() {
        return Err(format!("`{at}` must be a dataset (an object)"));
    }
    let symlinks = d
        .pointer("/facets/symlinks/identifiers")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| {
                    let ns = id.get("namespace")?.as_str()?;
                    let name = id.get("name")?.as_str()?;
                    (ns.len() <= MAX_NAME && name.len() <= MAX_NAME)
                        .then(|| (ns.to_string(), name.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DatasetRef {
        namespace: field("namespace")?,
        name: field("name")?,
        symlinks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "eventType": "COMPLETE",
            "eventTime": "2026-11-27T04:30:00.123Z",
            "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.0.0",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": "01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11", "facets": {}},
            "job": {"namespace": "default", "name": "sales__orders.load"},
            "inputs": [{"namespace": "sales", "name": "raw.orders"}],
            "outputs": [{
                "namespace": "s3://lake",
                "name": "warehouse/sales/gold/orders",
                "facets": {"symlinks": {"identifiers": [
                    {"namespace": "http://catalog:8181", "name": "gold.orders", "type": "TABLE"}
                ]}}
            }]
        })
    }

    fn parse_any(v: &Value) -> Result<Event, String> {
        parse(&serde_json::to_vec(v).unwrap()).map(|(e, _)| e)
    }

    fn parse_value(v: &Value) -> Result<RunEvent, String> {
        match parse_any(v)? {
            Event::Run(e) => Ok(e),
            other => panic!("not a RunEvent: {other:?}"),
        }
    }

    #[test]
    fn a_run_event_is_parsed_with_its_datasets_and_symlinks() {
        let e = parse_value(&event()).unwrap();
        assert_eq!(e.event_type.as_deref(), Some("COMPLETE"));
        assert_eq!(
            (e.job_namespace.as_str(), e.job_name.as_str()),
            ("default", "sales__orders.load")
        );
        assert_eq!(e.inputs[0].name, "raw.orders");
        assert_eq!(
            e.outputs[0].symlinks,
            vec![("http://catalog:8181".to_string(), "gold.orders".to_string())]
        );
        assert_eq!(e.event_time.to_rfc3339(), "2026-11-27T04:30:00.123+00:00");
    }

    #[test]
    fn the_parent_run_facet_gives_the_parent_and_root_jobs() {
        let mut v = event();
        assert!(parse_value(&v).unwrap().parents.is_empty());
        // As Spark's listener sends it with the parent Airflow's provider passed in its conf.
        v["run"]["facets"]["parent"] = json!({
            "_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.37.0/integration/spark",
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet",
            "run": {"runId": "01930f5e-0000-7c4c-9a52-4c1a5e0f2b11"},
            "job": {"namespace": "default", "name": "sales__orders_daily.ingest"},
            "root": {
                "run": {"runId": "01930f5e-1111-7c4c-9a52-4c1a5e0f2b11"},
                "job": {"namespace": "default", "name": "sales__orders_daily"}
            }
        });
        let parent = |name: &str, run: &str| Parent {
            namespace: "default".into(),
            name: name.into(),
            run_id: Some(run.into()),
        };
        assert_eq!(
            parse_value(&v).unwrap().parents,
            vec![
                parent(
                    "sales__orders_daily.ingest",
                    "01930f5e-0000-7c4c-9a52-4c1a5e0f2b11"
                ),
                parent(
                    "sales__orders_daily",
                    "01930f5e-1111-7c4c-9a52-4c1a5e0f2b11"
                )
            ]
        );
        // A malformed facet is ignored, never a refusal: facets are not checked.
        v["run"]["facets"]["parent"] = json!({"job": {"namespace": 7, "name": ""}});
        assert!(parse_value(&v).unwrap().parents.is_empty());
    }

    #[test]
    fn the_dedupe_key_names_run_type_time_and_job() {
        let a = parse_value(&event()).unwrap();
        let mut other = event();
        other["outputs"] = json!([]);
        // The same event sent again (even re-serialised) is the same event.
        assert_eq!(a.dedupe_key(), parse_value(&other).unwrap().dedupe_key());
        other["eventType"] = json!("START");
        assert_ne!(a.dedupe_key(), parse_value(&other).unwrap().dedupe_key());
    }

    #[test]
    fn malformed_events_are_refused_with_what_is_wrong() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "a JSON object"),
            (
                {
                    let mut e = event();
                    e.as_object_mut().unwrap().remove("eventTime");
                    e
                },
                "`eventTime` is missing",
            ),
            (
                {
                    let mut e = event();
                    e["eventTime"] = json!("yesterday");
                    e
                },
                "`eventTime` must be an ISO 8601 date-time",
            ),
            (
                {
                    let mut e = event();
                    e["eventType"] = json!("DONE");
                    e
                },
                "`eventType` must be one of START, RUNNING",
            ),
            (
                {
                    let mut e = event();
                    e["run"]["runId"] = json!("run-1");
                    e
                },
                "`run.runId` must be a UUID",
            ),
            (
                {
                    let mut e = event();
                    e["job"]["name"] = json!("");
                    e
                },
                "`job.name` is empty",
            ),
            (
                {
                    let mut e = event();
                    e["job"]["namespace"] = json!(7);
                    e
                },
                "`job.namespace` must be a string",
            ),
            (
                {
                    let mut e = event();
                    e["inputs"] = json!([{"namespace": "x"}]);
                    e
                },
                "`inputs[0].name` is missing",
            ),
            (
                {
                    let mut e = event();
                    e["outputs"] = json!({"namespace": "x"});
                    e
                },
                "`outputs` must be an array",
            ),
            (
                {
                    let mut e = event();
                    e["dataset"] = json!({"namespace": "x", "name": "\u{c}"});
                    e
                },
                "`dataset.name` is empty",
            ),
            (
                {
                    let mut e = event();
                    e["job"]["facets"] = json!(true);
                    e
                },
                "`job.facets` must be an object of facets",
            ),
            (
                {
                    let mut e = event();
                    e["inputs"] = json!([{"namespace": "x", "name": "y", "facets": [null, null]}]);
                    e
                },
                "`inputs.0.facets` must be an object of facets",
            ),
            (
                {
                    let mut e = event();
                    e["producer"] = json!("airflow");
                    e
                },
                "`producer` must be a URI",
            ),
            (
                json!({"eventTime": "2026-11-27T04:30:00Z", "producer": "https://x", "dataset": {"namespace": "a"}}),
                "`dataset.name` is missing",
            ),
            (
                json!({"eventTime": "2026-11-27T04:30:00Z", "producer": "https://x", "job": {"namespace": "a"}}),
                "`job.name` is missing",
            ),
        ];
        for (value, expected) in cases {
            let err = parse_value(&value).unwrap_err();
            assert!(err.contains(expected), "{err:?} should say {expected:?}");
        }
        assert!(parse(b"{not json").unwrap_err().contains("not JSON"));
        let huge = vec![b' '; MAX_EVENT_BYTES + 1];
        assert!(parse(&huge).unwrap_err().contains("at most"));
    }

    #[test]
    fn an_event_time_without_an_offset_is_utc() {
        let mut v = event();
        // What `datetime.now().isoformat()` gives.
        v["eventTime"] = json!("2026-11-27T04:30:00.123456");
        let e = parse_value(&v).unwrap();
        assert_eq!(
            e.event_time.to_rfc3339(),
            "2026-11-27T04:30:00.123456+00:00"
        );
        v["eventTime"] = json!("2026-11-27T04:30:00");
        assert_eq!(
            parse_value(&v).unwrap().event_time.to_rfc3339(),
            "2026-11-27T04:30:00+00:00"
        );
        // An offset is kept as sent.
        v["eventTime"] = json!("2026-11-27T05:30:00+01:00");
        assert_eq!(
            parse_value(&v).unwrap().event_time.to_rfc3339(),
            "2026-11-27T05:30:00+01:00"
        );
        v["eventTime"] = json!("2026-11-27");
        assert!(parse_value(&v).is_err());
    }

    #[test]
    fn dataset_and_job_events_are_static_lineage() {
        let dataset = json!({
            "eventTime": "2026-11-27T04:30:00Z",
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {"namespace": "sales", "name": "gold.revenue", "facets": {}}
        });
        let Event::Dataset(d) = parse_any(&dataset).unwrap() else {
            panic!("a DatasetEvent")
        };
        assert_eq!(
            (d.dataset.namespace.as_str(), d.dataset.name.as_str()),
            ("sales", "gold.revenue")
        );
        let job = json!({
            "eventTime": "2026-11-27T04:30:00Z",
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
            "job": {"namespace": "default", "name": "report"},
            "inputs": [{"namespace": "sales", "name": "gold.revenue"}],
            "outputs": []
        });
        let parsed = parse_any(&job).unwrap();
        assert_eq!(parsed.job(), Some(("default", "report")));
        let Event::Job(j) = &parsed else {
            panic!("a JobEvent")
        };
        assert_eq!(j.inputs[0].name, "gold.revenue");
        // Sent again, the same event; the other kind at the same time is another.
        assert_eq!(parsed.dedupe_key(), parse_any(&job).unwrap().dedupe_key());
        assert_ne!(
            parsed.dedupe_key(),
            parse_any(&dataset).unwrap().dedupe_key()
        );
    }
}
