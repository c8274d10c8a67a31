//! MLflow's tracking server over its REST API 2.0: the MLflow runs of an olo run. Tasks with
//! `mlflow` get `OLO_MLFLOW_TAGS` (`{"olo.run_id": <Airflow run id>}`) and tag their MLflow runs
//! with it; olo finds them with `runs/search` in the job's declared experiments.
//!
//! The dashboard and the API see the small [`Mlflow`] trait; [`MlflowClient`] implements it.

use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;

/// The tag that links an MLflow run to the Airflow run (and so to olo's run).
pub const RUN_TAG: &str = "olo.run_id";
/// Most MLflow runs listed for one olo run.
pub const MAX_RUNS: usize = 50;
/// Most metrics shown per MLflow run (by name).
pub const MAX_METRICS: usize = 12;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlflowRun {
    pub run_id: String,
    pub run_name: Option<String>,
    pub experiment_id: String,
    pub experiment: String,
    /// RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.
    pub status: String,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// Latest value of each metric, sorted by name.
    pub metrics: Vec<(String, f64)>,
    /// The run's page in MLflow's UI.
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    #[error("`{0}` cannot be the base URL of MLflow (expected http:// or https://)")]
    BaseUrl(String),
    #[error("could not set up the HTTP client for MLflow")]
    Client(#[source] reqwest::Error),
    #[error("could not {operation}: the request to MLflow failed")]
    Transport {
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("could not {operation}: MLflow answered HTTP {status}: {body}")]
    Status {
        operation: &'static str,
        status: u16,
        body: String,
    },
    #[error("could not {operation}: unexpected response from MLflow: {message}")]
    Decode {
        operation: &'static str,
        message: String,
    },
}

impl MlflowError {
    /// No answer, a timeout, 5xx, 429: may pass on retry.
    pub fn is_temporary(&self) -> bool {
        match self {
            MlflowError::Transport { .. } => true,
            MlflowError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

#[async_trait::async_trait]
pub trait Mlflow: Send + Sync {
    /// MLflow runs tagged `olo.run_id = run_id` in the named experiments, newest first.
    async fn runs_for(
        &self,
        run_id: &str,
        experiments: &[String],
    ) -> Result<Vec<MlflowRun>, MlflowError>;
}

pub struct MlflowClient {
    http: reqwest::Client,
    base: Url,
    ui: Url,
}

impl MlflowClient {
    /// `url`: where olo reaches the tracking server; `ui`: where people do (links).
    pub fn new(
        url: &str,
        ui: Option<&str>,
        timeout: Duration,
    ) -> Result<MlflowClient, MlflowError> {
        let parse = |u: &str| {
            Url::parse(u)
                .ok()
                .filter(|p| matches!(p.scheme(), "http" | "https") && !p.cannot_be_a_base())
                .ok_or_else(|| MlflowError::BaseUrl(u.to_string()))
        };
        let base = parse(url)?;
        let ui = parse(ui.unwrap_or(url))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(MlflowError::Client)?;
        Ok(MlflowClient { http, base, ui })
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        {
            let mut segments = url.path_segments_mut().expect("checked: can be a base");
            segments.pop_if_empty();
            segments.extend(path.split('/'));
        }
        url
    }

    /// One request, in an `mlflow` span (the operation, the status MLflow answered).
    #[tracing::instrument(
        name = "mlflow",
        skip_all,
        fields(operation = operation, status = tracing::field::Empty)
    )]
    async fn call(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Option<Value>, MlflowError> {
        let response = request
            .send()
            .await
            .map_err(|source| MlflowError::Transport { operation, source })?;
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let text = response
            .text()
            .await
            .map_err(|source| MlflowError::Transport { operation, source })?;
        // MLflow answers a missing experiment with 404 RESOURCE_DOES_NOT_EXIST.
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(MlflowError::Status {
                operation,
                status: status.as_u16(),
                body: text.chars().take(2000).collect(),
            });
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| MlflowError::Decode {
                operation,
                message: e.to_string(),
            })
    }

    fn run_url(&self, experiment_id: &str, run_id: &str) -> String {
        let base = self.ui.as_str().trim_end_matches('/');
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "{base}/#/experiments/{}/runs/{}",
            enc(experiment_id),
            enc(run_id)
        )
    }
}

/// An MLflow search filter matching runs tagged with this olo run, or `None` for an id that
/// cannot be quoted in MLflow's filter grammar (Airflow run ids never contain quotes).
pub fn run_filter(run_id: &str) -> Option<String> {
    (!run_id.contains(['\'', '"', '\\', '`']) && !run_id.is_empty())
        .then(|| format!("tags.`{RUN_TAG}` = '{run_id}'"))
}

fn millis(v: &Value) -> Option<DateTime<Utc>> {
    let ms = v.as_i64().or_else(|| v.as_str()?.parse().ok())?;
    Utc.timestamp_millis_opt(ms).single()
}

/// The runs of a `runs/search` answer.
pub fn parse_runs(
    body: &Value,
    experiment: &str,
    url: impl Fn(&str, &str) -> String,
) -> Result<Vec<MlflowRun>, String> {
    let Some(runs) = body.get("runs") else {
        return Ok(Vec::new()); // MLflow leaves the key out when nothing matches
    };
    let runs = runs.as_array().ok_or("`runs` is not a list")?;
    runs.iter()
        .map(|r| {
            let info = r.get("info").ok_or("a run without `info`")?;
            let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_string);
            let run_id = text("run_id").ok_or("a run without `info.run_id`")?;
            let experiment_id = text("experiment_id").unwrap_or_default();
            let mut metrics: Vec<(String, f64)> = r
                .pointer("/data/metrics")
                .and_then(Value::as_array)
                .map(|ms| {
                    ms.iter()
                        .filter_map(|m| {
                            Some((
                                m.get("key")?.as_str()?.to_string(),
                                m.get("value")?.as_f64()?,
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            metrics.sort_by(|a, b| a.0.cmp(&b.0));
            metrics.dedup_by(|a, b| a.0 == b.0);
            metrics.truncate(MAX_METRICS);
            Ok(MlflowRun {
                url: url(&experiment_id, &run_id),
                run_id,
                run_name: text("run_name"),
                experiment_id,
                experiment: experiment.to_string(),
                status: text("status").unwrap_or_else(|| "UNKNOWN".into()),
                start_time: info.get("start_time").and_then(millis),
                end_time: info.get("end_time").and_then(millis),
                metrics,
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl Mlflow for MlflowClient {
    async fn runs_for(
        &self,
        run_id: &str,
        experiments: &[String],
    ) -> Result<Vec<MlflowRun>, MlflowError> {
        let Some(filter) = run_filter(run_id) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for name in experiments {
            let mut url = self.endpoint("api/2.0/mlflow/experiments/get-by-name");
            url.query_pairs_mut().append_pair("experiment_name", name);
            let Some(found) = self
                .call("find an MLflow experiment", self.http.get(url))
                .await?
            else {
                continue; // the experiment does not exist (yet): no runs
            };
            let Some(id) = found
                .pointer("/experiment/experiment_id")
                .and_then(Value::as_str)
            else {
                continue;
            };
            let body = json!({
                "experiment_ids": [id],
                "filter": filter,
                "max_results": MAX_RUNS,
                "order_by": ["attributes.start_time DESC"],
            });
            let answer = self
                .call(
                    "search MLflow runs",
                    self.http
                        .post(self.endpoint("api/2.0/mlflow/runs/search"))
                        .json(&body),
                )
                .await?
                .unwrap_or(Value::Null);
            let runs = parse_runs(&answer, name, |e, r| self.run_url(e, r)).map_err(|message| {
                MlflowError::Decode {
                    operation: "search MLflow runs",
                    message,
                }
            })?;
            out.extend(runs);
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.start_time));
        out.truncate(MAX_RUNS);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_quotes_the_run_id_or_refuses_it() {
        assert_eq!(
            run_filter("manual__2026-11-27T04:30:00+00:00").as_deref(),
            Some("tags.`olo.run_id` = 'manual__2026-11-27T04:30:00+00:00'")
        );
        for bad in ["", "x' OR '1'='1", "a`b", "a\\b", "a\"b"] {
            assert_eq!(run_filter(bad), None, "{bad}");
        }
    }

    #[test]
    fn search_answers_become_runs_with_their_latest_metrics() {
        let body = json!({"runs": [{
            "info": {"run_id": "abc", "run_name": "train", "experiment_id": "7",
                     "status": "FINISHED", "start_time": 1764217800000i64, "end_time": "1764217860000"},
            "data": {"metrics": [
                {"key": "rmse", "value": 0.25, "timestamp": 1, "step": 0},
                {"key": "mae", "value": 0.5, "timestamp": 1, "step": 0}
            ], "tags": [{"key": "olo.run_id", "value": "r1"}]}
        }]});
        let runs = parse_runs(&body, "forecast", |e, r| format!("ui/{e}/{r}")).unwrap();
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(
            (r.run_id.as_str(), r.status.as_str(), r.url.as_str()),
            ("abc", "FINISHED", "ui/7/abc")
        );
        assert_eq!(r.metrics, vec![("mae".into(), 0.5), ("rmse".into(), 0.25)]);
        assert_eq!(
            r.start_time.unwrap().to_rfc3339(),
            "2025-11-27T04:30:00+00:00"
        );
        assert_eq!(
            r.end_time.unwrap().to_rfc3339(),
            "2025-11-27T04:31:00+00:00"
        );
        assert_eq!(
            parse_runs(&json!({}), "x", |_, _| String::new()).unwrap(),
            vec![]
        );
        assert!(parse_runs(&json!({"runs": [{}]}), "x", |_, _| String::new()).is_err());
    }
}
