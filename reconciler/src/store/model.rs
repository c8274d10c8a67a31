//! What the store holds, as the rest of olo sees it: plain values, the same on both backends.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A git identity with its timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub time: DateTime<Utc>,
}

/// A commit olo has seen on a tracked branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub sha: String,
    pub branch: String,
    pub author: Person,
    pub committer: Person,
    pub message: String,
    /// Whether the commit carries a signature (gpgsig header); not whether it verifies.
    pub signed: bool,
    /// Whether the signature verifies with a trusted key (`None`: not checked, verify.policy
    /// = "off"); the latest check when the commit was reconciled again.
    #[serde(default)]
    pub signature: Option<crate::signature::Verification>,
}

/// What happened to a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevisionStatus {
    /// Seen, not yet judged.
    Seen,
    /// Failed validation: never applied.
    Invalid,
    /// Valid; its plan is being applied.
    Applying,
    /// Its plan was applied completely.
    Applied,
    /// Applying failed part-way; the next reconcile retries.
    Failed,
    /// Superseded by a newer commit before it was applied.
    Skipped,
}

impl RevisionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionStatus::Seen => "seen",
            RevisionStatus::Invalid => "invalid",
            RevisionStatus::Applying => "applying",
            RevisionStatus::Applied => "applied",
            RevisionStatus::Failed => "failed",
            RevisionStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<RevisionStatus> {
        Some(match s {
            "seen" => RevisionStatus::Seen,
            "invalid" => RevisionStatus::Invalid,
            "applying" => RevisionStatus::Applying,
            "applied" => RevisionStatus::Applied,
            "failed" => RevisionStatus::Failed,
            "skipped" => RevisionStatus::Skipped,
            _ => return None,
        })
    }
}

/// A stored revision with its status and, for invalid ones, the diagnostics (JSON array).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionRow {
    pub revision: Revision,
    pub status: RevisionStatus,
    pub diagnostics: Value,
    pub seen_at: DateTime<Utc>,
}

/// The counts and outcome of a revision's newest plan (the revisions list shows them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanBrief {
    pub sha: String,
    /// As [`PlanRow::summary`].
    pub summary: Value,
    pub outcome: Option<String>,
}

/// A plan computed for a revision, and (once applied) its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRow {
    pub id: i64,
    pub branch: String,
    pub sha: String,
    /// Counts per action, e.g. `{"create": 2, "update": 1, "delete": 0, "unchanged": 40}`.
    pub summary: Value,
    /// The whole plan (JSON form of `plan::Plan`).
    pub body: Value,
    pub created_at: DateTime<Utc>,
    /// `None` while not applied; then "applied" or "failed".
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A resource olo created and owns in a target (only these are ever pruned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryItem {
    /// The target, e.g. "dags" (the DAG folder) or "files".
    pub target: String,
    /// Resource id inside the target, e.g. "dags/sales__orders_daily.py".
    pub name: String,
    /// Content hash last applied.
    pub hash: String,
    /// The revision that last wrote it.
    pub revision: String,
}

/// One entry of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// Who: "Ada Lovelace <ada@example.com>" (commit author) or an API identity.
    pub actor: String,
    /// What: "apply", "invalid_commit", "run_trigger", "reconcile_request", "denied", ...
    pub action: String,
    /// On what: a branch, a job, ...
    pub target: String,
    pub revision: Option<String>,
    pub details: Value,
}

/// An audit entry to append (id and time are assigned by the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAudit {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub revision: Option<String>,
    pub details: Value,
}

/// Ready / Reconciling / Stalled, per tracked branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncState {
    Ready,
    Reconciling,
    Stalled,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Ready => "Ready",
            SyncState::Reconciling => "Reconciling",
            SyncState::Stalled => "Stalled",
        }
    }

    pub fn parse(s: &str) -> Option<SyncState> {
        Some(match s {
            "Ready" => SyncState::Ready,
            "Reconciling" => SyncState::Reconciling,
            "Stalled" => SyncState::Stalled,
            _ => return None,
        })
    }
}

/// An after-apply check its target did not answer, kept until it is run again and answered:
/// the commit, the plan that wrote its files (as JSON) and when that apply began.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCheck {
    pub sha: String,
    pub plan: serde_json::Value,
    pub since: chrono::DateTime<chrono::Utc>,
}

/// The status of a tracked branch: what was last attempted and what is live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchStatus {
    pub branch: String,
    pub state: SyncState,
    pub last_attempted: Option<String>,
    pub last_applied: Option<String>,
    /// Why it is Stalled (or the last error), for people.
    pub message: Option<String>,
    /// Diagnostics of the last attempted revision when it was invalid (JSON array).
    pub diagnostics: Value,
    pub updated_at: DateTime<Utc>,
}

/// What started an Airflow DAG run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// Someone asked for it through the REST API.
    Api,
    /// A commit asked for it (a job set to run on deploy).
    Commit,
    /// Airflow's scheduler started it.
    Schedule,
}

impl RunTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Api => "api",
            RunTrigger::Commit => "commit",
            RunTrigger::Schedule => "schedule",
        }
    }

    pub fn parse(s: &str) -> Option<RunTrigger> {
        Some(match s {
            "api" => RunTrigger::Api,
            "commit" => RunTrigger::Commit,
            "schedule" => RunTrigger::Schedule,
            _ => return None,
        })
    }
}

/// Whether an Airflow DAG run state is final: "success" and "failed" are; "queued", "running"
/// and a state Airflow has not reported yet ("") are not. The runs migrations hold the same
/// list (the index behind `Store::active_runs`).
pub fn is_terminal_run_state(state: &str) -> bool {
    matches!(state, "success" | "failed")
}

/// A DAG run to record (id and timestamps are assigned by the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRun {
    pub workspace: String,
    pub job: String,
    pub dag_id: String,
    pub airflow_run_id: String,
    /// Airflow's DAG run state as last seen.
    pub state: String,
    pub trigger: RunTrigger,
    /// Who asked for it (an API identity or a commit author), when someone did.
    pub triggered_by: Option<String>,
    /// The revision live when it was triggered.
    pub revision: Option<String>,
    /// The run's `conf` (a JSON object).
    pub conf: Value,
}

/// A DAG run of an olo job, as olo last saw it in Airflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: i64,
    pub workspace: String,
    pub job: String,
    pub dag_id: String,
    pub airflow_run_id: String,
    pub state: String,
    pub trigger: RunTrigger,
    pub triggered_by: Option<String>,
    pub revision: Option<String>,
    pub conf: Value,
    pub logical_date: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What Airflow reports about a run; replaces the stored values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunUpdate {
    pub state: String,
    pub logical_date: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// Which runs to list: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    pub workspace: Option<String>,
    /// Runs of any of these workspaces (the caller's, when it may not see all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<Vec<String>>,
    pub job: Option<String>,
    pub state: Option<String>,
    /// Runs created at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

impl RunFilter {
    /// The runs of one job.
    pub fn job(workspace: &str, job: &str) -> RunFilter {
        RunFilter {
            workspace: Some(workspace.to_string()),
            job: Some(job.to_string()),
            ..RunFilter::default()
        }
    }
}

/// An OpenLineage event to record, with the job → dataset edges it shows (olo's names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewLineageEvent {
    /// The same event sent again has the same key (see `openlineage::Event::dedupe_key`).
    pub dedupe_key: String,
    /// A `RunEvent`'s run; none for static lineage (`DatasetEvent`, `JobEvent`).
    pub run_id: Option<String>,
    pub event_type: Option<String>,
    pub event_time: DateTime<Utc>,
    /// The job as the event names it; none for a `DatasetEvent`.
    pub job_namespace: Option<String>,
    pub job_name: Option<String>,
    /// The event as received.
    pub raw: Value,
    pub edges: Vec<ObservedEdge>,
}

/// Which `RunEvent`s to list, and which page of them: event times in `[after, before)`, by event
/// time (then order of arrival), oldest or newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineageEventPage {
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
    pub newest_first: bool,
    pub limit: u32,
    pub offset: u64,
}

/// A job read (`in`) or wrote (`out`) a dataset, as lineage events showed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObservedEdge {
    pub job_namespace: String,
    pub job_name: String,
    pub dataset_namespace: String,
    pub dataset_name: String,
    /// `in` or `out`.
    pub direction: String,
}

/// One try of one task instance of a run (`map_index` -1 for an unmapped task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInstanceRow {
    pub task_id: String,
    pub map_index: i64,
    pub try_number: i64,
    pub state: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
}
