//! OpenLineage RunEvents (spec 2-0-x) as olo receives them at `POST /api/v1/lineage`: parsed and
//! checked, with the parts olo keeps (the job, its input and output datasets). Pure.
//!
//! The check follows the spec's `RunEvent`: `eventTime` (date-time), `producer` (URI), `run.runId`
//! (UUID) and `job.namespace`/`job.name` are required, `eventType` is one of the spec's values when
//! present, and every dataset has a `namespace` and a `name`. Facets are kept in the raw event and
//! not checked, except the `symlinks` dataset facet, whose table identifiers olo uses to recognise
//! its own tables.

use chrono::{DateTime, FixedOffset};
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
pub fn parse(body: &[u8]) -> Result<(RunEvent, Value), String> {
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

fn check(v: &Value) -> Result<RunEvent, String> {
    let obj = v
        .as_object()
        .ok_or("an OpenLineage event is a JSON object")?;
    if !obj.contains_key("run") && (obj.contains_key("dataset") || obj.contains_key("job")) {
        return Err(
            "this is a DatasetEvent or JobEvent; olo accepts RunEvents (with `run` and `job`)"
                .into(),
        );
    }
    let event_time_text = string(v, &["eventTime"])?;
    let event_time = DateTime::parse_from_rfc3339(&event_time_text).map_err(|_| {
        format!("`eventTime` must be an ISO 8601 date-time with an offset, not {event_time_text:?}")
    })?;
    let producer = string(v, &["producer"])?;
    if !producer.contains(':') {
        return Err(format!("`producer` must be a URI, not {producer:?}"));
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
    Ok(RunEvent {
        event_type,
        event_time_text,
        event_time,
        run_id,
        job_namespace,
        job_name,
        producer,
        parents: parents(v),
        inputs: datasets(v, "inputs")?,
        outputs: datasets(v, "outputs")?,
    })
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
    if s.trim().is_empty() {
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
        .map(|(i, d)| {
            let at = |field: &str| {
                string(d, &[field]).map_err(|e| e.replacen('`', &format!("`{key}[{i}]."), 1))
            };
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
                namespace: at("namespace")?,
                name: at("name")?,
                symlinks,
            })
        })
        .collect()
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

    fn parse_value(v: &Value) -> Result<RunEvent, String> {
        parse(&serde_json::to_vec(v).unwrap()).map(|(e, _)| e)
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
                    e["producer"] = json!("airflow");
                    e
                },
                "`producer` must be a URI",
            ),
            (
                json!({"eventTime": "2026-11-27T04:30:00Z", "producer": "https://x", "job": {"namespace": "a", "name": "b"}}),
                "olo accepts RunEvents",
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
}
