//! The state store: what olo remembers between reconciles. Two backends behind one trait:
//! SQLite (the embedded default, one file) and PostgreSQL (production, several replicas), each
//! with its own migrations under `reconciler/migrations/<backend>/`. One contract test suite
//! (`reconciler/tests/store_contract/`) runs against both.
//!
//! The repository is the source of truth for desired state: losing the store loses history
//! (revisions, plans, audit), never configuration.

pub mod backup;
mod postgres;
mod sqlite;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not open the state store at {url}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not migrate the state store")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("state store query failed: {what}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("unsupported state store URL `{0}` (expected sqlite:… or postgres://…)")]
    Url(String),
}

impl StoreError {
    /// Temporary errors (connection lost, pool timeout) are retried; the rest are not.
    pub fn is_temporary(&self) -> bool {
        match self {
            StoreError::Open { source, .. } | StoreError::Query { source, .. } => matches!(
                source,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
            ),
            _ => false,
        }
    }
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

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
/// The items of one `upsert_inventory_many` call, the last of each (target, name) only: what
/// upserting them one by one would leave, in a form one multi-row statement accepts (PostgreSQL
/// refuses to update a row twice in one statement).
pub(crate) fn last_of_each(items: &[InventoryItem]) -> Vec<&InventoryItem> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut last: Vec<&InventoryItem> = items
        .iter()
        .rev()
        .filter(|i| seen.insert((i.target.as_str(), i.name.as_str())))
        .collect();
    last.reverse();
    last
}

/// Rows per multi-row statement on SQLite (5 parameters each, far below its 32,766 limit).
pub(crate) const SQLITE_BATCH: usize = 1000;

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

/// Everything olo persists. Implementations must be safe to share across tasks.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Records a revision (idempotent on `sha` + `branch`: a second call changes nothing but
    /// the signature check, which follows the trusted keys).
    async fn record_revision(&self, revision: &Revision) -> StoreResult<()>;
    async fn set_revision_status(
        &self,
        branch: &str,
        sha: &str,
        status: RevisionStatus,
        diagnostics: &Value,
    ) -> StoreResult<()>;
    async fn revision(&self, branch: &str, sha: &str) -> StoreResult<Option<RevisionRow>>;
    /// Newest first; `limit` rows at most, older than `before` (a seen_at) when given.
    async fn revisions(
        &self,
        branch: &str,
        limit: u32,
        before: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<RevisionRow>>;

    async fn insert_plan(
        &self,
        branch: &str,
        sha: &str,
        summary: &Value,
        body: &Value,
    ) -> StoreResult<i64>;
    async fn finish_plan(&self, id: i64, outcome: &str, error: Option<&str>) -> StoreResult<()>;
    /// Plans of a revision, newest first.
    async fn plans(&self, branch: &str, sha: &str) -> StoreResult<Vec<PlanRow>>;

    /// Owned resources of a target, sorted by name.
    async fn inventory(&self, target: &str) -> StoreResult<Vec<InventoryItem>>;
    async fn upsert_inventory(&self, item: &InventoryItem) -> StoreResult<()>;
    async fn remove_inventory(&self, target: &str, name: &str) -> StoreResult<()>;
    /// Upserts many items at once (one transaction where the backend allows).
    async fn upsert_inventory_many(&self, items: &[InventoryItem]) -> StoreResult<()> {
        for item in items {
            self.upsert_inventory(item).await?;
        }
        Ok(())
    }
    /// Removes many items of a target at once (one transaction where the backend allows).
    async fn remove_inventory_many(&self, target: &str, names: &[String]) -> StoreResult<()> {
        for name in names {
            self.remove_inventory(target, name).await?;
        }
        Ok(())
    }

    /// Appends to the audit log (never updated or deleted); returns the new id.
    async fn append_audit(&self, entry: &NewAudit) -> StoreResult<i64>;
    /// Newest first; `limit` rows at most, with id < `before_id` when given.
    async fn audit(&self, limit: u32, before_id: Option<i64>) -> StoreResult<Vec<AuditEntry>>;
    /// Oldest first; `limit` rows at most, with id > `after_id` when given: the order of an
    /// export (`olo audit --format jsonl`).
    async fn audit_oldest_first(
        &self,
        limit: u32,
        after_id: Option<i64>,
    ) -> StoreResult<Vec<AuditEntry>> {
        // Right for any store, but reads the whole log: both backends answer with one query.
        const PAGE: u32 = 1000;
        let mut all = Vec::new();
        let mut before = None;
        loop {
            let page = self.audit(PAGE, before).await?;
            let full = page.len() == PAGE as usize;
            let Some(oldest) = page.last().map(|e| e.id) else {
                break;
            };
            all.extend(
                page.into_iter()
                    .filter(|e| after_id.is_none_or(|a| e.id > a)),
            );
            if !full || after_id.is_some_and(|a| oldest <= a) {
                break;
            }
            before = Some(oldest);
        }
        all.reverse();
        all.truncate(limit as usize);
        Ok(all)
    }
    /// The newest audit entry with this action.
    async fn last_audit(&self, action: &str) -> StoreResult<Option<AuditEntry>>;

    async fn branch_status(&self, branch: &str) -> StoreResult<Option<BranchStatus>>;
    async fn set_branch_status(&self, status: &BranchStatus) -> StoreResult<()>;

    /// Records a webhook delivery id; `true` when it was new, `false` for a repeat.
    async fn record_delivery(&self, delivery_id: &str, event: &str) -> StoreResult<bool>;

    /// Hands work to the leader replica (several `olo serve` on one PostgreSQL store).
    async fn push_work(&self, kind: &str, payload: &Value) -> StoreResult<()>;
    /// Takes (and removes) up to `limit` pieces of work, oldest first; concurrent takers never
    /// get the same piece.
    async fn take_work(&self, limit: u32) -> StoreResult<Vec<(String, Value)>>;

    /// Inserts a run; idempotent on (dag_id, airflow_run_id): a second insert returns the
    /// existing row unchanged.
    async fn insert_run(&self, run: &NewRun) -> StoreResult<Run>;
    /// Replaces the state and times of a run (and sets updated_at to now).
    async fn update_run(&self, id: i64, update: &RunUpdate) -> StoreResult<()>;
    async fn run(&self, id: i64) -> StoreResult<Option<Run>>;
    /// Newest first (id descending), `limit` rows at most, id < `before_id` when given; the
    /// filter's fields are ANDed.
    async fn runs(
        &self,
        filter: &RunFilter,
        limit: u32,
        before_id: Option<i64>,
    ) -> StoreResult<Vec<Run>>;
    /// How many runs match the filter.
    async fn count_runs(&self, filter: &RunFilter) -> StoreResult<u64>;
    /// Runs not in a terminal state (see `is_terminal_run_state`), oldest first: the ones to
    /// follow in Airflow.
    async fn active_runs(&self) -> StoreResult<Vec<Run>>;
    /// Number of runs per state (for metrics), sorted by state.
    async fn run_counts(&self) -> StoreResult<Vec<(String, i64)>>;

    /// Upserts task instances of a run (keyed by task_id, map_index, try_number), in one
    /// transaction.
    async fn upsert_task_instances(&self, run_id: i64, tis: &[TaskInstanceRow]) -> StoreResult<()>;
    /// Task instances of a run sorted by started_at (not started last), task_id, map_index,
    /// try_number.
    async fn task_instances(&self, run_id: i64) -> StoreResult<Vec<TaskInstanceRow>>;

    /// Records lineage events and their edges in one transaction. Per event, `true` when it was
    /// new; a repeat (same dedupe key) changes nothing.
    async fn record_lineage(&self, events: &[NewLineageEvent]) -> StoreResult<Vec<bool>>;
    /// Every observed edge, in the order first seen.
    async fn observed_edges(&self) -> StoreResult<Vec<ObservedEdge>>;
    /// The events recorded after the one with id `after` (0: from the first), oldest first, at
    /// most `limit`: `(id, event as received)`.
    async fn lineage_events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<(i64, Value)>>;
    /// Number of lineage events recorded.
    async fn lineage_event_count(&self) -> StoreResult<u64>;

    /// A cheap query proving the store answers (the readiness probe).
    async fn ping(&self) -> StoreResult<()>;
}

/// SQLite's "database is locked" (SQLITE_BUSY, code 5).
fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("5"))
}

/// Opens the store a URL names (`sqlite:path/to/state.db` or `postgres://…`), creating the
/// SQLite file if needed, and runs pending migrations.
/// A store URL fit for logs and messages: a PostgreSQL password becomes `***`.
pub fn redacted_url(url: &str) -> String {
    if url.starts_with("postgres") {
        postgres::redacted(url)
    } else {
        url.to_string()
    }
}

pub async fn open(url: &str) -> StoreResult<Box<dyn Store>> {
    // Two processes opening a new store at once (`olo serve` and `olo status`) race to migrate
    // it; the loser sees the winner's tables. Its next attempt finds the migration recorded.
    // SQLite may also answer "database is locked" (SQLITE_BUSY) right away while the other
    // process switches a new file to WAL, which its busy timeout does not cover: try again too.
    let mut attempt = 0;
    loop {
        match open_once(url).await {
            Err(StoreError::Migrate(_)) if attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            Err(StoreError::Open { source, .. }) if attempt < 5 && is_busy(&source) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            other => return other,
        }
    }
}

async fn open_once(url: &str) -> StoreResult<Box<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PostgresStore::open(url).await?))
    } else {
        Err(StoreError::Url(url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::{is_terminal_run_state, RunTrigger};

    #[test]
    fn run_trigger_text_round_trips_and_matches_serde() {
        for trigger in [RunTrigger::Api, RunTrigger::Commit, RunTrigger::Schedule] {
            assert_eq!(RunTrigger::parse(trigger.as_str()), Some(trigger));
            assert_eq!(
                serde_json::to_value(trigger).unwrap(),
                serde_json::Value::from(trigger.as_str())
            );
        }
        assert_eq!(RunTrigger::parse("cron"), None);
        assert_eq!(RunTrigger::parse("API"), None);
    }

    #[test]
    fn only_success_and_failed_are_terminal() {
        assert!(is_terminal_run_state("success"));
        assert!(is_terminal_run_state("failed"));
        for active in ["queued", "running", "", "Success", "up_for_retry"] {
            assert!(!is_terminal_run_state(active), "{active:?}");
        }
    }
}
