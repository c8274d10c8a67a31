//! What olo reads from and sends to Airflow's REST API v2: DAG runs, task instances, DAGs,
//! import errors, and the bodies of a new run and a new backfill.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A DAG run, as Airflow reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagRun {
    pub dag_id: String,
    pub dag_run_id: String,
    /// `queued`, `running`, `success` or `failed`.
    pub state: String,
    pub logical_date: Option<DateTime<Utc>>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub conf: Option<Value>,
}

/// One task (one map index) of a DAG run, at its latest try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInstance {
    pub task_id: String,
    /// `-1` unless the task is mapped.
    pub map_index: i64,
    /// `0` until the task first runs.
    pub try_number: i64,
    /// `None` until the scheduler looks at the task.
    pub state: Option<String>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    /// Seconds.
    pub duration: Option<f64>,
}

/// A DAG Airflow has parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dag {
    pub dag_id: String,
    pub is_paused: bool,
    pub last_parsed_time: Option<DateTime<Utc>>,
    /// The file, relative to its DAG bundle's root.
    pub relative_fileloc: Option<String>,
    /// Airflow's signed name of the file, for [`Airflow::reparse_dag_file`].
    pub file_token: Option<String>,
}

/// A DAG file Airflow could not load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportError {
    /// Relative to its DAG bundle's root.
    pub filename: String,
    pub stack_trace: String,
    pub timestamp: Option<DateTime<Utc>>,
}

/// A run to start: its id, the logical date it stands for (templates' `{{ ds }}`,
/// `{{ logical_date }}`; Airflow gives a manual run with a null date no such variables), the conf
/// it carries and an optional note shown in Airflow's UI.
#[derive(Debug, Clone, Copy)]
pub struct NewDagRun<'a> {
    pub run_id: &'a str,
    pub logical_date: DateTime<Utc>,
    pub conf: &'a Value,
    pub note: Option<&'a str>,
}

/// A backfill to start: a run for each interval of the DAG's schedule from `from` to `to`
/// (`POST /api/v2/backfills`).
#[derive(Debug, Clone)]
pub struct NewBackfill<'a> {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Every run's conf.
    pub conf: &'a Value,
    pub reprocess: Reprocess,
    /// How many of its runs Airflow runs at once.
    pub max_active_runs: u32,
    /// The newest interval first.
    pub run_backwards: bool,
}

/// What a backfill does about an interval that already has a run (`ReprocessBehavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reprocess {
    /// Leave it alone.
    #[default]
    None,
    /// Run it again when it failed.
    Failed,
    /// Run it again whatever its state.
    Completed,
}

/// A backfill, as Airflow reports it (`BackfillResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backfill {
    pub id: i64,
    pub dag_id: String,
    pub from_date: DateTime<Utc>,
    pub to_date: DateTime<Utc>,
    pub reprocess_behavior: Reprocess,
    pub max_active_runs: u32,
    pub created_at: DateTime<Utc>,
}
