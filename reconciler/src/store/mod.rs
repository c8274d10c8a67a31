//! The state store: what olo remembers between reconciles. Two backends behind one trait:
//! SQLite (the embedded default, one file) and PostgreSQL (production, several replicas), each
//! with its own migrations under `reconciler/migrations/<backend>/`. One contract test suite
//! (`reconciler/tests/it/store_contract/`) runs against both.
//!
//! One implementation serves both (`sql.rs`): the statements and row decoders of each resource
//! are written once, in a module of their own (`revisions.rs`, `plans.rs`, `inventory.rs`,
//! `audit.rs`, `branch_status.rs`, `deliveries.rs`, `work_queue.rs`, `runs.rs`,
//! `task_instances.rs`, `lineage.rs`), and the few that differ ask `sql::Dialect`. Times are
//! `time::DbTime`, stamped by the application's clock on both backends. Opening a store is the
//! backends' own (`sqlite.rs`, `postgres.rs`).
//!
//! The repository is the source of truth for desired state: losing the store loses history
//! (revisions, plans, audit), never configuration.

mod audit;
pub mod backup;
mod branch_status;
mod deliveries;
mod inventory;
mod lineage;
mod model;
mod plans;
mod postgres;
mod revisions;
mod runs;
mod sql;
mod sqlite;
mod task_instances;
mod time;
mod work_queue;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use deliveries::{housekeeping, KEEP_DELIVERIES};
pub use model::{
    is_terminal_run_state, AuditEntry, BranchStatus, InventoryItem, LineageEventPage, NewAudit,
    NewLineageEvent, NewRun, ObservedEdge, PendingCheck, Person, PlanBrief, PlanRow, Revision,
    RevisionRow, RevisionStatus, Run, RunFilter, RunTrigger, RunUpdate, SyncState, TaskInstanceRow,
};
pub use sql::{PostgresStore, SqlStore, SqliteStore};

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
    /// SQLite failed on a disk with no space left: said plainly, since SQLite's own message for
    /// some of these is "disk I/O error".
    #[error(
        "the disk holding the state store {url} has no space left ({folder}): free space there \
         (olo's writes are refused until then; the last applied state stays live)"
    )]
    NoSpace {
        url: String,
        folder: String,
        #[source]
        source: sqlx::Error,
    },
}

impl StoreError {
    /// Temporary errors (connection lost, pool timeout) are retried; the rest are not.
    pub fn is_temporary(&self) -> bool {
        match self {
            StoreError::Open { source, .. } | StoreError::Query { source, .. } => {
                matches!(
                    source,
                    sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
                ) || may_pass_later(source)
            }
            // Space may come back: retried like a lost connection.
            StoreError::NoSpace { .. } => true,
            _ => false,
        }
    }
}

/// A database's refusal that time may cure, so a write is tried again rather than the commit
/// given up: SQLite's `SQLITE_FULL` (13) and I/O errors (10, and their extended codes);
/// PostgreSQL's class 53 (insufficient resources: `disk_full` 53100, ...), `io_error` (58030)
/// and `read_only_sql_transaction` (25006: a standby answering during a failover).
fn may_pass_later(e: &sqlx::Error) -> bool {
    let Some(code) = e.as_database_error().and_then(|db| db.code()) else {
        return false;
    };
    // PostgreSQL's SQLSTATEs have five characters; SQLite's codes are numbers below 10,000.
    if code.len() == 5 {
        return code.starts_with("53") || code == "58030" || code == "25006";
    }
    code.parse::<i64>()
        .is_ok_and(|n| matches!(n & 0xff, 10 | 13))
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

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
    /// The newest plan of each of these commits that has one: its counts and outcome.
    async fn newest_plans(&self, branch: &str, shas: &[String]) -> StoreResult<Vec<PlanBrief>>;

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
    /// The branch's after-apply check that its target did not answer, if one is pending.
    async fn pending_check(&self, branch: &str) -> StoreResult<Option<PendingCheck>>;
    /// Keeps `check` as the branch's pending check (replacing any), or forgets it (`None`).
    async fn set_pending_check(
        &self,
        branch: &str,
        check: Option<&PendingCheck>,
    ) -> StoreResult<()>;

    /// Records a webhook delivery id; `true` when it was new, `false` for a repeat. A new
    /// delivery's `work` (kind and payload, as [`Store::push_work`] takes them) is handed to the
    /// leader in the same transaction: neither is ever recorded without the other.
    async fn record_delivery(
        &self,
        delivery_id: &str,
        event: &str,
        work: Option<(&str, &Value)>,
    ) -> StoreResult<bool>;
    /// Forgets the webhook deliveries received before `before` (kept [`KEEP_DELIVERIES`] by
    /// [`housekeeping`]); returns how many.
    async fn prune_deliveries(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64>;

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
    /// Removes a run whose trigger Airflow refused (olo records a run before it triggers it).
    async fn delete_run(&self, id: i64) -> StoreResult<()>;
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
    /// A page of the `RunEvent`s recorded (static lineage left out), as received, and how many
    /// match the page's time window in all.
    async fn lineage_run_events(&self, page: &LineageEventPage) -> StoreResult<(Vec<Value>, u64)>;
    /// How many `RunEvent`s of each type (`START`, `COMPLETE`, ...) have an event time in each
    /// hour from `from` (inclusive) to `to` (exclusive): `(start of the hour, type, count)`,
    /// by hour. The counts behind Marquez's `/stats/lineage-events`.
    async fn lineage_event_hours(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(DateTime<Utc>, String, u64)>>;

    /// A cheap query proving the store answers (the readiness probe).
    async fn ping(&self) -> StoreResult<()>;

    /// Whether olo has recorded nothing here: no revision, no inventory item, no audit entry.
    /// A new store, or one that lost olo's earlier work (an emptied or deleted SQLite file, an
    /// empty PostgreSQL database); `olo serve` and `olo apply` ask before they start
    /// (`crate::adopt`).
    async fn is_empty(&self) -> StoreResult<bool>;
}

/// SQLite's "database is locked" (SQLITE_BUSY, code 5).
fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("5"))
}

/// A store URL fit for logs and messages: a PostgreSQL password becomes `***`.
pub fn redacted_url(url: &str) -> String {
    if url.starts_with("postgres") {
        postgres::redacted(url)
    } else {
        url.to_string()
    }
}

/// Opens the store a URL names (`sqlite:path/to/state.db` or `postgres://…`), creating the
/// SQLite file if needed, and runs pending migrations.
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

#[cfg(test)]
mod disk_tests {
    use super::*;

    #[derive(Debug)]
    struct Refusal(&'static str);

    impl std::fmt::Display for Refusal {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "refused with {}", self.0)
        }
    }

    impl std::error::Error for Refusal {}

    impl sqlx::error::DatabaseError for Refusal {
        fn message(&self) -> &str {
            "refused"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn query(code: &'static str) -> StoreError {
        StoreError::Query {
            what: "insert",
            source: sqlx::Error::Database(Box::new(Refusal(code))),
        }
    }

    #[test]
    fn a_full_disk_or_a_read_only_standby_is_temporary_and_a_refused_row_is_not() {
        // SQLite: full, disk I/O error, its WAL shared memory; PostgreSQL: disk_full, io_error,
        // a read-only transaction (a standby during a failover).
        for code in ["13", "10", "4874", "53100", "58030", "25006"] {
            assert!(query(code).is_temporary(), "{code}");
        }
        // SQLite: a constraint (2067: unique), a read-only database (8); PostgreSQL: a unique
        // violation, a syntax error.
        for code in ["2067", "8", "23505", "42601"] {
            assert!(!query(code).is_temporary(), "{code}");
        }
    }
}
