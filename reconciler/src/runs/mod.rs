//! Airflow DAG runs of olo's jobs: trigger (from the API or an `Olo-Run:` commit trailer),
//! backfill a date range, cancel or clear, and follow (state and task instances copied into the
//! state store). Logs are fetched from Airflow on demand by the server.
//!
//! Every refusal is a [`RunError`] variant; the server maps them to HTTP statuses.

mod follow;
pub mod trailers;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::catalog::Catalog;
use crate::store::{
    is_terminal_run_state, NewAudit, NewRun, Run, RunTrigger, RunUpdate, Store, StoreError,
};
use crate::targets::airflow::{Airflow, AirflowError, Backfill, NewBackfill, NewDagRun, Reprocess};
use crate::text::first_chars;

pub use follow::{follow, follow_once};

/// Airflow's limit on a run's note.
pub const MAX_NOTE_CHARS: usize = 1000;

/// Why a run was not triggered, cancelled, cleared or followed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("job {workspace}/{job} is not in the live configuration")]
    UnknownJob { workspace: String, job: String },
    #[error("`conf.olo` is olo's own (who triggered the run, and why): use another key")]
    ReservedConf,
    #[error("the conf does not match the params of {workspace}/{job} ({path}): {}", problems.join("; "))]
    InvalidConf {
        workspace: String,
        job: String,
        /// The job file.
        path: String,
        problems: Vec<String>,
    },
    #[error("`note` is longer than Airflow's limit of {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
    #[error(
        "Airflow is not configured: set [airflow] url, username and password_env in olo's settings"
    )]
    AirflowNotConfigured,
    #[error(
        "Airflow does not know DAG {dag_id} yet: it has not parsed the file olo wrote; \
         try again once `olo status` is Ready"
    )]
    DagNotInAirflow { dag_id: String },
    #[error(
        "job {workspace}/{job} is paused in Airflow, so a run would wait in `queued` until it \
         is unpaused; set `paused: false` in {path} (a Git change) and trigger again"
    )]
    JobPaused {
        workspace: String,
        job: String,
        path: String,
    },
    #[error("run {} of {}/{} has already finished ({}); nothing to cancel", run.id, run.workspace, run.job, run.state)]
    RunFinished { run: Box<Run> },
    #[error("run {} of {}/{} is still {}; re-run its failed tasks once it has finished", run.id, run.workspace, run.job, run.state)]
    RunNotFinished { run: Box<Run> },
    #[error("a backfill cannot start at {from} and end before, at {to}")]
    BackfillRange {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error(
        "job {workspace}/{job} has a backfill that has not finished; Airflow runs one at a time: {airflow}"
    )]
    BackfillRunning {
        workspace: String,
        job: String,
        /// What Airflow said.
        airflow: String,
    },
    #[error(transparent)]
    Airflow(#[from] AirflowError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who asked for a run, and why.
pub struct TriggeredBy<'a> {
    pub kind: RunTrigger,
    /// The API token's name, or the commit author.
    pub actor: &'a str,
    /// The commit (for trailers) or the live revision (for API calls).
    pub revision: Option<&'a str>,
}

/// What a caller asks of a new run besides the job.
#[derive(Debug, Default)]
pub struct RunRequest {
    /// The run's conf: declared params by name (checked against their types), and any other keys
    /// tasks read from `dag_run.conf`. `olo` is reserved for olo's own identity block.
    pub conf: Map<String, Value>,
    /// The logical date the run stands for (`{{ ds }}` in templates); now when not given.
    pub logical_date: Option<DateTime<Utc>>,
    /// A note shown beside the run in Airflow's UI.
    pub note: Option<String>,
}

/// A backfill a caller asks for.
#[derive(Debug)]
pub struct BackfillRequest {
    /// The first and last logical dates; Airflow runs every interval of the job's schedule
    /// between them.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Every run's conf, checked as a trigger's is.
    pub conf: Map<String, Value>,
    pub reprocess: Reprocess,
    pub max_active_runs: u32,
    pub run_backwards: bool,
}

/// A backfill Airflow started, and the runs olo recorded for it (oldest logical date first).
#[derive(Debug, serde::Serialize)]
pub struct Backfilled {
    pub backfill: Backfill,
    pub runs: Vec<Run>,
}

/// What an operator may do to a run olo triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop a run that has not finished: Airflow marks it failed (running tasks fail, the rest
    /// are skipped).
    Cancel,
    /// Re-run the failed (and upstream-failed) tasks of a finished run: Airflow clears them and
    /// queues the run again, which olo then follows like a new one.
    ClearFailed,
}

/// Runs in Airflow (when configured), recorded and audited in the state store.
#[derive(Clone, Copy)]
pub struct Runs<'a> {
    pub store: &'a dyn Store,
    pub airflow: Option<&'a dyn Airflow>,
}

impl<'a> Runs<'a> {
    pub fn new(store: &'a dyn Store, airflow: Option<&'a dyn Airflow>) -> Runs<'a> {
        Runs { store, airflow }
    }

    fn airflow(&self) -> Result<&'a dyn Airflow, RunError> {
        self.airflow.ok_or(RunError::AirflowNotConfigured)
    }

    /// Triggers a run of job `workspace/job` of the live `catalog` in Airflow and records it.
    ///
    /// Refused before Airflow is asked: a conf that sets `olo` or gives a declared param a value
    /// of the wrong type, a note over 1,000 characters, a job Airflow has not parsed or has
    /// paused (a paused DAG's run would wait in `queued` forever).
    pub async fn trigger(
        &self,
        catalog: Option<&Catalog>,
        workspace: &str,
        job: &str,
        request: RunRequest,
        by: TriggeredBy<'_>,
    ) -> Result<Run, RunError> {
        let dag_id = self
            .checked_job(
                catalog,
                workspace,
                job,
                &request.conf,
                request.note.as_deref(),
            )
            .await?;
        let airflow = self.airflow()?;
        let logical_date = request.logical_date.unwrap_or_else(Utc::now);
        let run_id = format!(
            "olo__{}__{}",
            Utc::now().format("%Y%m%dT%H%M%SZ"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let conf = Value::Object(request.conf);
        // The trigger's identity travels with the run in Airflow too (`dag_run.conf["olo"]`);
        // olo's own record keeps the caller's conf as given.
        let mut sent = conf.clone();
        sent["olo"] = json!({
            "triggered_by": by.actor,
            "trigger": by.kind.as_str(),
            "revision": by.revision,
        });
        // Recorded before Airflow is asked: a run olo cannot record (the state store is down) is
        // not triggered, so a caller that retries does not start it twice.
        let mut run = self
            .store
            .insert_run(&NewRun {
                workspace: workspace.to_string(),
                job: job.to_string(),
                dag_id: dag_id.clone(),
                airflow_run_id: run_id.clone(),
                state: "queued".into(),
                trigger: by.kind,
                triggered_by: Some(by.actor.to_string()),
                revision: by.revision.map(str::to_string),
                conf: conf.clone(),
            })
            .await?;
        let triggered = airflow
            .trigger_run(
                &dag_id,
                &NewDagRun {
                    run_id: &run_id,
                    logical_date,
                    conf: &sent,
                    note: request.note.as_deref(),
                },
            )
            .await;
        let dag_run = match triggered {
            Ok(dag_run) => dag_run,
            Err(e) => {
                if let Err(gone) = self.store.delete_run(run.id).await {
                    tracing::warn!(
                        run = run.id,
                        "could not remove the run Airflow refused: {gone}"
                    );
                }
                return Err(e.into());
            }
        };
        run.state = dag_run.state.clone();
        let update = RunUpdate {
            state: dag_run.state.clone(),
            logical_date: dag_run.logical_date.or(Some(logical_date)),
            started_at: dag_run.start_date,
            ended_at: dag_run.end_date,
        };
        self.store.update_run(run.id, &update).await?;
        run.logical_date = update.logical_date;
        self.store
            .append_audit(&NewAudit {
                actor: by.actor.to_string(),
                action: "run_trigger".into(),
                target: format!("{workspace}/{job}"),
                revision: by.revision.map(str::to_string),
                details: json!({
                    "run": run.id,
                    "dag_id": dag_id,
                    "airflow_run_id": run_id,
                    "trigger": by.kind.as_str(),
                    "logical_date": run.logical_date,
                    "conf": conf,
                }),
            })
            .await?;
        Ok(run)
    }

    /// What a trigger and a backfill check before Airflow is asked: the job is live, the conf
    /// leaves `olo` alone and matches the declared params, the note fits, and Airflow knows the
    /// DAG and has not paused it. The job's DAG id.
    async fn checked_job(
        &self,
        catalog: Option<&Catalog>,
        workspace: &str,
        job: &str,
        conf: &Map<String, Value>,
        note: Option<&str>,
    ) -> Result<String, RunError> {
        let Some(view) = catalog.and_then(|c| c.job(workspace, job)) else {
            return Err(RunError::UnknownJob {
                workspace: workspace.to_string(),
                job: job.to_string(),
            });
        };
        if conf.contains_key("olo") {
            return Err(RunError::ReservedConf);
        }
        let problems = view.check_conf(conf);
        if !problems.is_empty() {
            return Err(RunError::InvalidConf {
                workspace: workspace.to_string(),
                job: job.to_string(),
                path: view.path.clone(),
                problems,
            });
        }
        if note.is_some_and(|note| note.chars().count() > MAX_NOTE_CHARS) {
            return Err(RunError::NoteTooLong);
        }
        let dag_id = view.dag_id.clone();
        match self.airflow()?.dag(&dag_id).await? {
            None => Err(RunError::DagNotInAirflow { dag_id }),
            Some(dag) if dag.is_paused => Err(RunError::JobPaused {
                workspace: workspace.to_string(),
                job: job.to_string(),
                path: view.path.clone(),
            }),
            Some(_) => Ok(dag_id),
        }
    }

    /// Starts a backfill of job `workspace/job` in Airflow (a run for each interval of its
    /// schedule from `request.from` to `request.to`), then records each run Airflow created, so
    /// they are followed like any run, and audits it (`run_backfill`). Refused as a trigger is
    /// (see [`Runs::trigger`]), and when `from` is after `to`. The runs carry the caller's conf
    /// plus olo's identity block, and are recorded as triggered through the API.
    pub async fn backfill(
        &self,
        catalog: Option<&Catalog>,
        workspace: &str,
        job: &str,
        request: BackfillRequest,
        by: TriggeredBy<'_>,
    ) -> Result<Backfilled, RunError> {
        if request.from > request.to {
            return Err(RunError::BackfillRange {
                from: request.from,
                to: request.to,
            });
        }
        let dag_id = self
            .checked_job(catalog, workspace, job, &request.conf, None)
            .await?;
        let airflow = self.airflow()?;
        let conf = Value::Object(request.conf);
        let mut sent = conf.clone();
        sent["olo"] = json!({
            "triggered_by": by.actor,
            "trigger": "backfill",
            "revision": by.revision,
        });
        let backfill = airflow
            .create_backfill(
                &dag_id,
                &NewBackfill {
                    from: request.from,
                    to: request.to,
                    conf: &sent,
                    reprocess: request.reprocess,
                    max_active_runs: request.max_active_runs,
                    run_backwards: request.run_backwards,
                },
            )
            .await
            .map_err(|e| match e {
                AirflowError::Status {
                    status: 409, body, ..
                } => RunError::BackfillRunning {
                    workspace: workspace.to_string(),
                    job: job.to_string(),
                    airflow: body,
                },
                e => e.into(),
            })?;
        // Airflow made the backfill's runs with it, queued. A DAG has one unfinished backfill at
        // a time, so the unfinished backfill runs in its range are this one's; finished ones are
        // earlier backfills' runs it left alone (`reprocess`). A run Airflow queued again is
        // recorded anew or, when olo knows it, takes its new state (the insert is idempotent).
        let mut runs = Vec::new();
        for dag_run in airflow
            .backfill_runs(&dag_id, backfill.from_date, backfill.to_date)
            .await?
        {
            if is_terminal_run_state(&dag_run.state) {
                continue;
            }
            let mut run = self
                .store
                .insert_run(&NewRun {
                    workspace: workspace.to_string(),
                    job: job.to_string(),
                    dag_id: dag_id.clone(),
                    airflow_run_id: dag_run.dag_run_id.clone(),
                    state: dag_run.state.clone(),
                    trigger: by.kind,
                    triggered_by: Some(by.actor.to_string()),
                    revision: by.revision.map(str::to_string),
                    conf: conf.clone(),
                })
                .await?;
            let update = RunUpdate {
                state: dag_run.state.clone(),
                logical_date: dag_run.logical_date,
                started_at: dag_run.start_date,
                ended_at: dag_run.end_date,
            };
            self.store.update_run(run.id, &update).await?;
            run.state = update.state;
            run.logical_date = update.logical_date;
            run.started_at = update.started_at;
            run.ended_at = update.ended_at;
            runs.push(run);
        }
        self.store
            .append_audit(&NewAudit {
                actor: by.actor.to_string(),
                action: "run_backfill".into(),
                target: format!("{workspace}/{job}"),
                revision: by.revision.map(str::to_string),
                details: json!({
                    "backfill": backfill.id,
                    "dag_id": dag_id,
                    "from": backfill.from_date,
                    "to": backfill.to_date,
                    "reprocess": backfill.reprocess_behavior,
                    "max_active_runs": backfill.max_active_runs,
                    "runs": runs.iter().map(|r| r.id).collect::<Vec<_>>(),
                    "conf": conf,
                }),
            })
            .await?;
        Ok(Backfilled { backfill, runs })
    }

    /// Cancels or clears a run in Airflow, with a note naming the caller; records the state
    /// Airflow reports and audits it (`run_cancel`, `run_clear`). Cancelling a finished run, or
    /// clearing one that goes on, is refused and changes nothing.
    pub async fn control(&self, run: &Run, actor: &str, control: Control) -> Result<Run, RunError> {
        let finished = is_terminal_run_state(&run.state);
        let who = first_chars(actor, 200);
        let (action, note) = match control {
            Control::Cancel if finished => {
                return Err(RunError::RunFinished {
                    run: Box::new(run.clone()),
                })
            }
            Control::ClearFailed if !finished => {
                return Err(RunError::RunNotFinished {
                    run: Box::new(run.clone()),
                })
            }
            Control::Cancel => ("run_cancel", format!("cancelled through olo by {who}")),
            Control::ClearFailed => (
                "run_clear",
                format!("failed tasks cleared through olo by {who}"),
            ),
        };
        let airflow = self.airflow()?;
        let dag_run = match control {
            Control::Cancel => {
                airflow
                    .cancel_run(&run.dag_id, &run.airflow_run_id, &note)
                    .await
            }
            Control::ClearFailed => {
                airflow
                    .clear_failed_tasks(&run.dag_id, &run.airflow_run_id, &note)
                    .await
            }
        }?;
        let update = RunUpdate {
            state: dag_run.state,
            logical_date: dag_run.logical_date.or(run.logical_date),
            started_at: dag_run.start_date,
            ended_at: dag_run.end_date,
        };
        self.store.update_run(run.id, &update).await?;
        self.store
            .append_audit(&NewAudit {
                actor: actor.to_string(),
                action: action.into(),
                target: format!("{}/{}", run.workspace, run.job),
                revision: run.revision.clone(),
                details: json!({
                    "run": run.id,
                    "dag_id": run.dag_id,
                    "airflow_run_id": run.airflow_run_id,
                    "state_before": run.state,
                    "state": update.state,
                }),
            })
            .await?;
        Ok(Run {
            state: update.state,
            logical_date: update.logical_date,
            started_at: update.started_at,
            ended_at: update.ended_at,
            ..run.clone()
        })
    }
}
