//! The Airflow side of the DAG sink: after olo wrote DAG files, Airflow must parse them. This
//! check waits until Airflow has parsed every created or updated DAG file since the apply; an
//! import error fails the apply with Airflow's stack trace, and a parsed DAG gets the pause
//! state its job declares (`paused:`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::engine::AfterApply;
use crate::plan::{Action, Plan};
use crate::targets::airflow::{Airflow, ImportError};

pub struct AirflowDags {
    airflow: Arc<dyn Airflow>,
    /// How long to wait for Airflow to parse the files.
    timeout: Duration,
    /// Time between looks.
    every: Duration,
}

impl AirflowDags {
    pub fn new(airflow: Arc<dyn Airflow>, timeout: Duration) -> AirflowDags {
        AirflowDags {
            airflow,
            timeout,
            every: Duration::from_secs(1),
        }
    }
}

/// DAG ids of the DAG files a plan creates or updates (not assets, not deletes).
pub fn changed_dags(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update))
        .filter_map(|c| {
            let file = c.name.strip_prefix("dags/")?;
            (!file.contains('/')).then_some(file.strip_suffix(".py")?.to_string())
        })
        .collect()
}

/// The import error of a DAG file, if Airflow reported one after `since`.
fn import_error_of<'e>(
    errors: &'e [ImportError],
    dag_id: &str,
    since: DateTime<Utc>,
) -> Option<&'e ImportError> {
    let file = format!("{dag_id}.py");
    errors.iter().find(|e| {
        let name = e.filename.rsplit('/').next().unwrap_or(&e.filename);
        name == file && e.timestamp.is_none_or(|t| t >= since)
    })
}

enum Seen {
    Parsed { paused: bool },
    Broken(String),
}

impl AirflowDags {
    async fn look(
        &self,
        dag_id: &str,
        since: DateTime<Utc>,
        errors: &[ImportError],
        unreachable: &mut Option<String>,
    ) -> Result<Option<Seen>, String> {
        if let Some(e) = import_error_of(errors, dag_id, since) {
            return Ok(Some(Seen::Broken(e.stack_trace.clone())));
        }
        match self.airflow.dag(dag_id).await {
            Ok(Some(dag)) if dag.last_parsed_time.is_some_and(|t| t >= since) => {
                Ok(Some(Seen::Parsed {
                    paused: dag.is_paused,
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.is_temporary() => {
                *unreachable = Some(e.to_string());
                Ok(None)
            }
            Err(e) => Err(format!("Airflow refused to describe DAG {dag_id}: {e}")),
        }
    }

    async fn check(
        &self,
        plan: &Plan,
        catalog: &Catalog,
        since: DateTime<Utc>,
    ) -> Result<(), String> {
        let mut waiting = changed_dags(plan);
        let mut broken: Vec<(String, String)> = Vec::new();
        let deadline = tokio::time::Instant::now() + self.timeout;
        // The last temporary error, if Airflow did not answer.
        let mut unreachable: Option<String> = None;
        while !waiting.is_empty() {
            let errors = match self.airflow.import_errors().await {
                Ok(e) => e,
                Err(e) if e.is_temporary() => {
                    unreachable = Some(e.to_string());
                    Vec::new()
                }
                Err(e) => return Err(format!("Airflow refused to list import errors: {e}")),
            };
            let mut still = Vec::new();
            for dag_id in waiting {
                match self.look(&dag_id, since, &errors, &mut unreachable).await? {
                    None => still.push(dag_id),
                    Some(Seen::Broken(trace)) => broken.push((dag_id, trace)),
                    Some(Seen::Parsed { paused }) => {
                        let want = catalog.job_by_dag_id(&dag_id).map(|j| j.paused);
                        if let Some(want) = want.filter(|w| *w != paused) {
                            self.airflow.set_paused(&dag_id, want).await.map_err(|e| {
                                format!("could not set DAG {dag_id} paused={want}: {e}")
                            })?;
                        }
                    }
                }
            }
            waiting = still;
            if waiting.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(self.every).await;
        }
        let mut out = String::new();
        for (dag_id, trace) in &broken {
            out.push_str(&format!(
                "Airflow could not import DAG {dag_id} (dags/{dag_id}.py):\n{}\n",
                trace.trim_end()
            ));
        }
        if !waiting.is_empty() {
            let why = match &unreachable {
                Some(e) => format!("Airflow did not answer: {e}"),
                None => "is its DAG processor running and reading this DAG folder?".to_string(),
            };
            out.push_str(&format!(
                "Airflow did not parse {} within {} s: {} ({why})\n",
                if waiting.len() == 1 {
                    "this DAG"
                } else {
                    "these DAGs"
                },
                self.timeout.as_secs(),
                waiting.join(", ")
            ));
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }
}

#[async_trait::async_trait]
impl AfterApply for AirflowDags {
    async fn after_apply(
        &self,
        plan: &Plan,
        catalog: &Catalog,
        applied_since: DateTime<Utc>,
    ) -> Result<(), String> {
        self.check(plan, catalog, applied_since).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Change;

    fn change(name: &str, action: Action) -> Change {
        Change {
            name: name.into(),
            action,
            hash: String::new(),
            diff: None,
            reason: None,
        }
    }

    #[test]
    fn only_created_or_updated_dag_files_are_checked() {
        let plan = Plan {
            revision: None,
            changes: vec![
                change("dags/a__b.py", Action::Create),
                change("dags/c__d.py", Action::Update),
                change("dags/e__f.py", Action::Delete),
                change("dags/olo_assets/a/q.sql", Action::Create),
                change("trino/rules.json", Action::Update),
            ],
            unchanged: 0,
        };
        assert_eq!(changed_dags(&plan), ["a__b", "c__d"]);
    }

    #[test]
    fn import_errors_match_by_file_name_and_time() {
        let t0 = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let errors = vec![ImportError {
            filename: "/opt/airflow/dags/a__b.py".into(),
            stack_trace: "Traceback ...".into(),
            timestamp: Some(t0),
        }];
        assert!(import_error_of(&errors, "a__b", t0).is_some());
        assert!(import_error_of(&errors, "b", t0).is_none());
        let later = t0 + chrono::Duration::seconds(1);
        assert!(
            import_error_of(&errors, "a__b", later).is_none(),
            "an error older than the apply is about the previous file"
        );
    }
}
