//! The one implementation of `Store`, on either backend. Each resource's statements and row
//! decoders live in a module of their own (`revisions.rs`, `runs.rs`, ...), written once: a
//! statement is compiled for each backend by [`on_pool!`], with `$1`-style placeholders that both
//! accept. Where the dialects really differ, a module asks [`Dialect`] or matches on [`Db`].
//!
//! Opening a store (connection options, migrations) is the backends' own: `sqlite.rs` and
//! `postgres.rs`.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{Postgres, Sqlite};

use super::{
    audit, branch_status, deliveries, inventory, lineage, plans, revisions, runs, task_instances,
    work_queue, AuditEntry, BranchStatus, InventoryItem, LineageEventPage, NewAudit,
    NewLineageEvent, NewRun, ObservedEdge, PendingCheck, PlanBrief, PlanRow, Revision, RevisionRow,
    RevisionStatus, Run, RunFilter, RunUpdate, Store, StoreError, StoreResult, TaskInstanceRow,
};

/// The pool of whichever backend a store is on.
#[derive(Debug, Clone)]
pub(super) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool: the body is written once and compiled
/// once per backend, each time with that backend's sqlx types.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::sql::Db::Sqlite($pool) => $body,
            $crate::store::sql::Db::Postgres($pool) => $body,
        }
    };
}
pub(super) use on_pool;

impl Db {
    pub(super) fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// The few pieces of SQL that differ between the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Appended to an `ORDER BY` of text so that it sorts in byte order: SQLite's default
    /// (BINARY) collation already does; PostgreSQL's follows the database's locale unless told.
    pub(super) fn bytewise(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
    }

    /// Appended to the subquery that picks rows to take, so that concurrent takers skip the rows
    /// another has locked. SQLite serialises writers: one statement never shares a row.
    pub(super) fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// A column in a condition the planner must not answer with an index on it: SQLite's `+`
    /// prefix (so that it walks another index and stops early); PostgreSQL plans without help.
    pub(super) fn unindexed(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("+{column}"),
            Dialect::Postgres => column.to_string(),
        }
    }
}

pub(super) fn query_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

/// A row as the database returns it (`sqlx::FromRow`, the same on both backends), and the value
/// olo makes of it.
pub(super) trait Record {
    type Value;
    /// The value, or why the row holds none (an unknown status, say).
    fn into_value(self) -> Result<Self::Value, String>;
}

/// The values of rows a query named `what` returned.
pub(super) fn values<R: Record>(what: &'static str, rows: Vec<R>) -> StoreResult<Vec<R::Value>> {
    rows.into_iter().map(|row| decoded(what, row)).collect()
}

/// The value of the row a query named `what` returned, if any.
pub(super) fn value<R: Record>(
    what: &'static str,
    row: Option<R>,
) -> StoreResult<Option<R::Value>> {
    row.map(|row| decoded(what, row)).transpose()
}

/// The value of one row a query named `what` returned.
pub(super) fn decoded<R: Record>(what: &'static str, row: R) -> StoreResult<R::Value> {
    row.into_value()
        .map_err(|message| query_error(what)(sqlx::Error::Decode(message.into())))
}

/// Fails an update that found no row to change.
pub(super) fn one_row(what: &'static str, rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        return Err(query_error(what)(sqlx::Error::RowNotFound));
    }
    Ok(())
}

/// The state store on one backend: `SqliteStore` (one file) or `PostgresStore` (several
/// replicas). The backend is in the type so that each has its own `open`; everything else is
/// shared.
#[derive(Debug)]
pub struct SqlStore<B> {
    db: Db,
    backend: PhantomData<fn() -> B>,
}

/// The state store in one SQLite file.
pub type SqliteStore = SqlStore<Sqlite>;
/// The state store in a PostgreSQL database.
pub type PostgresStore = SqlStore<Postgres>;

impl<B> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        SqlStore::new(self.db.clone())
    }
}

impl<B> SqlStore<B> {
    pub(super) fn new(db: Db) -> SqlStore<B> {
        SqlStore {
            db,
            backend: PhantomData,
        }
    }

    #[cfg(test)]
    pub(super) fn db(&self) -> &Db {
        &self.db
    }
}

#[async_trait::async_trait]
impl<B> Store for SqlStore<B> {
    async fn record_revision(&self, revision: &Revision) -> StoreResult<()> {
        revisions::record(&self.db, revision).await
    }

    async fn set_revision_status(
        &self,
        branch: &str,
        sha: &str,
        status: RevisionStatus,
        diagnostics: &Value,
    ) -> StoreResult<()> {
        revisions::set_status(&self.db, branch, sha, status, diagnostics).await
    }

    async fn revision(&self, branch: &str, sha: &str) -> StoreResult<Option<RevisionRow>> {
        revisions::get(&self.db, branch, sha).await
    }

    async fn revisions(
        &self,
        branch: &str,
        limit: u32,
        before: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<RevisionRow>> {
        revisions::newest_first(&self.db, branch, limit, before).await
    }

    async fn insert_plan(
        &self,
        branch: &str,
        sha: &str,
        summary: &Value,
        body: &Value,
    ) -> StoreResult<i64> {
        plans::insert(&self.db, branch, sha, summary, body).await
    }

    async fn finish_plan(&self, id: i64, outcome: &str, error: Option<&str>) -> StoreResult<()> {
        plans::finish(&self.db, id, outcome, error).await
    }

    async fn plans(&self, branch: &str, sha: &str) -> StoreResult<Vec<PlanRow>> {
        plans::of_revision(&self.db, branch, sha).await
    }

    async fn newest_plans(&self, branch: &str, shas: &[String]) -> StoreResult<Vec<PlanBrief>> {
        plans::newest_of(&self.db, branch, shas).await
    }

    async fn inventory(&self, target: &str) -> StoreResult<Vec<InventoryItem>> {
        inventory::of_target(&self.db, target).await
    }

    async fn upsert_inventory(&self, item: &InventoryItem) -> StoreResult<()> {
        inventory::upsert(&self.db, item).await
    }

    async fn remove_inventory(&self, target: &str, name: &str) -> StoreResult<()> {
        inventory::remove(&self.db, target, name).await
    }

    async fn upsert_inventory_many(&self, items: &[InventoryItem]) -> StoreResult<()> {
        inventory::upsert_many(&self.db, items).await
    }

    async fn remove_inventory_many(&self, target: &str, names: &[String]) -> StoreResult<()> {
        inventory::remove_many(&self.db, target, names).await
    }

    async fn append_audit(&self, entry: &NewAudit) -> StoreResult<i64> {
        audit::append(&self.db, entry).await
    }

    async fn audit(&self, limit: u32, before_id: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
        audit::newest_first(&self.db, limit, before_id).await
    }

    async fn audit_oldest_first(
        &self,
        limit: u32,
        after_id: Option<i64>,
    ) -> StoreResult<Vec<AuditEntry>> {
        audit::oldest_first(&self.db, limit, after_id).await
    }

    async fn last_audit(&self, action: &str) -> StoreResult<Option<AuditEntry>> {
        audit::last(&self.db, action).await
    }

    async fn branch_status(&self, branch: &str) -> StoreResult<Option<BranchStatus>> {
        branch_status::get(&self.db, branch).await
    }

    async fn set_branch_status(&self, status: &BranchStatus) -> StoreResult<()> {
        branch_status::set(&self.db, status).await
    }

    async fn pending_check(&self, branch: &str) -> StoreResult<Option<PendingCheck>> {
        branch_status::pending_check(&self.db, branch).await
    }

    async fn set_pending_check(
        &self,
        branch: &str,
        check: Option<&PendingCheck>,
    ) -> StoreResult<()> {
        branch_status::set_pending_check(&self.db, branch, check).await
    }

    async fn record_delivery(
        &self,
        delivery_id: &str,
        event: &str,
        work: Option<(&str, &Value)>,
    ) -> StoreResult<bool> {
        deliveries::record(&self.db, delivery_id, event, work).await
    }

    async fn prune_deliveries(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
        deliveries::prune(&self.db, before).await
    }

    async fn push_work(&self, kind: &str, payload: &Value) -> StoreResult<()> {
        work_queue::push(&self.db, kind, payload).await
    }

    async fn take_work(&self, limit: u32) -> StoreResult<Vec<(String, Value)>> {
        work_queue::take(&self.db, limit).await
    }

    async fn insert_run(&self, run: &NewRun) -> StoreResult<Run> {
        runs::insert(&self.db, run).await
    }

    async fn update_run(&self, id: i64, update: &RunUpdate) -> StoreResult<()> {
        runs::update(&self.db, id, update).await
    }

    async fn delete_run(&self, id: i64) -> StoreResult<()> {
        runs::delete(&self.db, id).await
    }

    async fn run(&self, id: i64) -> StoreResult<Option<Run>> {
        runs::get(&self.db, id).await
    }

    async fn runs(
        &self,
        filter: &RunFilter,
        limit: u32,
        before_id: Option<i64>,
    ) -> StoreResult<Vec<Run>> {
        runs::newest_first(&self.db, filter, limit, before_id).await
    }

    async fn count_runs(&self, filter: &RunFilter) -> StoreResult<u64> {
        runs::count(&self.db, filter).await
    }

    async fn active_runs(&self) -> StoreResult<Vec<Run>> {
        runs::active(&self.db).await
    }

    async fn run_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        runs::counts_per_state(&self.db).await
    }

    async fn upsert_task_instances(&self, run_id: i64, tis: &[TaskInstanceRow]) -> StoreResult<()> {
        task_instances::upsert(&self.db, run_id, tis).await
    }

    async fn task_instances(&self, run_id: i64) -> StoreResult<Vec<TaskInstanceRow>> {
        task_instances::of_run(&self.db, run_id).await
    }

    async fn record_lineage(&self, events: &[NewLineageEvent]) -> StoreResult<Vec<bool>> {
        lineage::record(&self.db, events).await
    }

    async fn observed_edges(&self) -> StoreResult<Vec<ObservedEdge>> {
        lineage::observed_edges(&self.db).await
    }

    async fn lineage_events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<(i64, Value)>> {
        lineage::events_after(&self.db, after, limit).await
    }

    async fn lineage_event_count(&self) -> StoreResult<u64> {
        lineage::event_count(&self.db).await
    }

    async fn lineage_run_events(&self, page: &LineageEventPage) -> StoreResult<(Vec<Value>, u64)> {
        lineage::run_events(&self.db, page).await
    }

    async fn lineage_event_hours(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(DateTime<Utc>, String, u64)>> {
        lineage::event_hours(&self.db, from, to).await
    }

    async fn ping(&self) -> StoreResult<()> {
        on_pool!(&self.db, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(query_error("ping"))?;
        Ok(())
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        // A row of any of the three tables olo writes on its first reconcile (its revision comes
        // first) or on an adoption; each looked up by at most one row.
        let rows: i64 = on_pool!(&self.db, |pool| sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM revisions LIMIT 1) AS r) \
                  + (SELECT COUNT(*) FROM (SELECT 1 FROM inventory LIMIT 1) AS i) \
                  + (SELECT COUNT(*) FROM (SELECT 1 FROM audit_log LIMIT 1) AS a)"
        )
        .fetch_one(pool)
        .await)
        .map_err(query_error("is_empty"))?;
        Ok(rows == 0)
    }
}
