//! PostgreSQL backend: production, shared by several replicas.
//!
//! Timestamps are TIMESTAMPTZ (microseconds); the times the store assigns come from the
//! database's clock, so every replica agrees on them. JSON values are JSONB.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};

use super::{
    AuditEntry, BranchStatus, InventoryItem, NewAudit, NewLineageEvent, NewRun, ObservedEdge,
    Person, PlanRow, Revision, RevisionRow, RevisionStatus, Run, RunFilter, RunTrigger, RunUpdate,
    Store, StoreError, StoreResult, SyncState, TaskInstanceRow,
};

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The state store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database a `postgres://` URL names and runs pending migrations (the
    /// migrator takes an advisory lock, so replicas starting together migrate once).
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Url(redacted(url)));
        }
        let open_error = |source| StoreError::Open {
            url: redacted(url),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(PostgresStore { pool })
    }
}

/// The URL with its password replaced by `***`, fit for error messages and logs.
pub(super) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // Up to the last `@` before the query, so that a password with an unescaped `/` or `@`
    // is hidden too.
    let query_start = rest.find('?').unwrap_or(rest.len());
    let Some(at) = rest[..query_start].rfind('@') else {
        return url.to_string();
    };
    let (userinfo, host_and_rest) = rest.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{host_and_rest}"),
        None => url.to_string(),
    }
}

fn query_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

/// TIMESTAMPTZ keeps microseconds: truncate here so both backends store the same instant.
fn micros(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

const REVISION_COLUMNS: &str = "branch, sha, author_name, author_email, author_time, \
     committer_name, committer_email, committer_time, message, signed, status, diagnostics, seen_at, \
     signature";

fn revision_row(row: &PgRow) -> Result<RevisionRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(RevisionRow {
        revision: Revision {
            sha: row.try_get("sha")?,
            branch: row.try_get("branch")?,
            author: Person {
                name: row.try_get("author_name")?,
                email: row.try_get("author_email")?,
                time: row.try_get("author_time")?,
            },
            committer: Person {
                name: row.try_get("committer_name")?,
                email: row.try_get("committer_email")?,
                time: row.try_get("committer_time")?,
            },
            message: row.try_get("message")?,
            signed: row.try_get("signed")?,
            signature: row
                .try_get::<Option<sqlx::types::Json<_>>, _>("signature")?
                .map(|j| j.0),
        },
        status: RevisionStatus::parse(&status)
            .ok_or_else(|| decode_error(format!("unknown revision status `{status}`")))?,
        diagnostics: row.try_get("diagnostics")?,
        seen_at: row.try_get("seen_at")?,
    })
}

const PLAN_COLUMNS: &str =
    "id, branch, sha, summary, body, created_at, outcome, error, finished_at";

fn plan_row(row: &PgRow) -> Result<PlanRow, sqlx::Error> {
    Ok(PlanRow {
        id: row.try_get("id")?,
        branch: row.try_get("branch")?,
        sha: row.try_get("sha")?,
        summary: row.try_get("summary")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        outcome: row.try_get("outcome")?,
        error: row.try_get("error")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn inventory_item(row: &PgRow) -> Result<InventoryItem, sqlx::Error> {
    Ok(InventoryItem {
        target: row.try_get("target")?,
        name: row.try_get("name")?,
        hash: row.try_get("hash")?,
        revision: row.try_get("revision")?,
    })
}

const AUDIT_COLUMNS: &str = "id, at, actor, action, target, revision, details";

fn audit_entry(row: &PgRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        revision: row.try_get("revision")?,
        details: row.try_get("details")?,
    })
}

fn branch_status_row(row: &PgRow) -> Result<BranchStatus, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(BranchStatus {
        branch: row.try_get("branch")?,
        state: SyncState::parse(&state)
            .ok_or_else(|| decode_error(format!("unknown sync state `{state}`")))?,
        last_attempted: row.try_get("last_attempted")?,
        last_applied: row.try_get("last_applied")?,
        message: row.try_get("message")?,
        diagnostics: row.try_get("diagnostics")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const RUN_COLUMNS: &str = "id, workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
     triggered_by, revision, conf, logical_date, started_at, ended_at, created_at, updated_at";

fn run_row(row: &PgRow) -> Result<Run, sqlx::Error> {
    let trigger: String = row.try_get("trigger")?;
    Ok(Run {
        id: row.try_get("id")?,
        workspace: row.try_get("workspace")?,
        job: row.try_get("job")?,
        dag_id: row.try_get("dag_id")?,
        airflow_run_id: row.try_get("airflow_run_id")?,
        state: row.try_get("state")?,
        trigger: RunTrigger::parse(&trigger)
            .ok_or_else(|| decode_error(format!("unknown run trigger `{trigger}`")))?,
        triggered_by: row.try_get("triggered_by")?,
        revision: row.try_get("revision")?,
        conf: row.try_get("conf")?,
        logical_date: row.try_get("logical_date")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn task_instance_row(row: &PgRow) -> Result<TaskInstanceRow, sqlx::Error> {
    // map_index and try_number are INTEGER columns.
    Ok(TaskInstanceRow {
        task_id: row.try_get("task_id")?,
        map_index: i64::from(row.try_get::<i32, _>("map_index")?),
        try_number: i64::from(row.try_get::<i32, _>("try_number")?),
        state: row.try_get("state")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        duration_seconds: row.try_get("duration_seconds")?,
    })
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn record_revision(&self, revision: &Revision) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO revisions (branch, sha, author_name, author_email, author_time, \
             committer_name, committer_email, committer_time, message, signed, seen_at, signature) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), $11) \
             ON CONFLICT (branch, sha) DO UPDATE SET signature = excluded.signature",
        )
        .bind(&revision.branch)
        .bind(&revision.sha)
        .bind(&revision.author.name)
        .bind(&revision.author.email)
        .bind(micros(revision.author.time))
        .bind(&revision.committer.name)
        .bind(&revision.committer.email)
        .bind(micros(revision.committer.time))
        .bind(&revision.message)
        .bind(revision.signed)
        .bind(revision.signature.as_ref().map(sqlx::types::Json))
        .execute(&self.pool)
        .await
        .map_err(query_error("record_revision"))?;
        Ok(())
    }

    async fn set_revision_status(
        &self,
        branch: &str,
        sha: &str,
        status: RevisionStatus,
        diagnostics: &Value,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE revisions SET status = $1, diagnostics = $2 WHERE branch = $3 AND sha = $4",
        )
        .bind(status.as_str())
        .bind(diagnostics)
        .bind(branch)
        .bind(sha)
        .execute(&self.pool)
        .await
        .map_err(query_error("set_revision_status"))?;
        if done.rows_affected() == 0 {
            return Err(query_error("set_revision_status")(sqlx::Error::RowNotFound));
        }
        Ok(())
    }

    async fn revision(&self, branch: &str, sha: &str) -> StoreResult<Option<RevisionRow>> {
        let row = sqlx::query(&format!(
            "SELECT {REVISION_COLUMNS} FROM revisions WHERE branch = $1 AND sha = $2"
        ))
        .bind(branch)
        .bind(sha)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("revision"))?;
        row.as_ref()
            .map(revision_row)
            .transpose()
            .map_err(query_error("revision"))
    }

    async fn revisions(
        &self,
        branch: &str,
        limit: u32,
        before: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<RevisionRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {REVISION_COLUMNS} FROM revisions \
             WHERE branch = $1 AND ($2::timestamptz IS NULL OR seen_at < $2) \
             ORDER BY seen_at DESC, id DESC LIMIT $3"
        ))
        .bind(branch)
        .bind(before.map(micros))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("revisions"))?;
        rows.iter()
            .map(revision_row)
            .collect::<Result<_, _>>()
            .map_err(query_error("revisions"))
    }

    async fn insert_plan(
        &self,
        branch: &str,
        sha: &str,
        summary: &Value,
        body: &Value,
    ) -> StoreResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO plans (branch, sha, summary, body, created_at) \
             VALUES ($1, $2, $3, $4, now()) RETURNING id",
        )
        .bind(branch)
        .bind(sha)
        .bind(summary)
        .bind(body)
        .fetch_one(&self.pool)
        .await
        .map_err(query_error("insert_plan"))
    }

    async fn finish_plan(&self, id: i64, outcome: &str, error: Option<&str>) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE plans SET outcome = $1, error = $2, finished_at = now() WHERE id = $3",
        )
        .bind(outcome)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(query_error("finish_plan"))?;
        if done.rows_affected() == 0 {
            return Err(query_error("finish_plan")(sqlx::Error::RowNotFound));
        }
        Ok(())
    }

    async fn plans(&self, branch: &str, sha: &str) -> StoreResult<Vec<PlanRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {PLAN_COLUMNS} FROM plans WHERE branch = $1 AND sha = $2 ORDER BY id DESC"
        ))
        .bind(branch)
        .bind(sha)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("plans"))?;
        rows.iter()
            .map(plan_row)
            .collect::<Result<_, _>>()
            .map_err(query_error("plans"))
    }

    async fn inventory(&self, target: &str) -> StoreResult<Vec<InventoryItem>> {
        // The columns are COLLATE "C": byte order, as in SQLite, whatever the locale.
        let rows = sqlx::query(
            "SELECT target, name, hash, revision FROM inventory WHERE target = $1 ORDER BY name",
        )
        .bind(target)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("inventory"))?;
        rows.iter()
            .map(inventory_item)
            .collect::<Result<_, _>>()
            .map_err(query_error("inventory"))
    }

    async fn upsert_inventory(&self, item: &InventoryItem) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO inventory (target, name, hash, revision, updated_at) \
             VALUES ($1, $2, $3, $4, now()) \
             ON CONFLICT (target, name) DO UPDATE SET \
             hash = excluded.hash, revision = excluded.revision, updated_at = excluded.updated_at",
        )
        .bind(&item.target)
        .bind(&item.name)
        .bind(&item.hash)
        .bind(&item.revision)
        .execute(&self.pool)
        .await
        .map_err(query_error("upsert_inventory"))?;
        Ok(())
    }

    async fn upsert_inventory_many(&self, items: &[InventoryItem]) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        // One statement, one round trip, however many items: columns as arrays.
        let items = super::last_of_each(items);
        let column =
            |f: fn(&InventoryItem) -> &str| -> Vec<&str> { items.iter().map(|i| f(i)).collect() };
        sqlx::query(
            "INSERT INTO inventory (target, name, hash, revision, updated_at) \
             SELECT target, name, hash, revision, now() \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
                  AS item (target, name, hash, revision) \
             ON CONFLICT (target, name) DO UPDATE SET \
             hash = excluded.hash, revision = excluded.revision, updated_at = excluded.updated_at",
        )
        .bind(column(|i| &i.target))
        .bind(column(|i| &i.name))
        .bind(column(|i| &i.hash))
        .bind(column(|i| &i.revision))
        .execute(&self.pool)
        .await
        .map_err(query_error("upsert_inventory_many"))?;
        Ok(())
    }

    async fn remove_inventory_many(&self, target: &str, names: &[String]) -> StoreResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM inventory WHERE target = $1 AND name = ANY($2::text[])")
            .bind(target)
            .bind(names)
            .execute(&self.pool)
            .await
            .map_err(query_error("remove_inventory_many"))?;
        Ok(())
    }

    async fn remove_inventory(&self, target: &str, name: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM inventory WHERE target = $1 AND name = $2")
            .bind(target)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(query_error("remove_inventory"))?;
        Ok(())
    }

    async fn append_audit(&self, entry: &NewAudit) -> StoreResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO audit_log (at, actor, action, target, revision, details) \
             VALUES (now(), $1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.revision)
        .bind(&entry.details)
        .fetch_one(&self.pool)
        .await
        .map_err(query_error("append_audit"))
    }

    async fn audit(&self, limit: u32, before_id: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log \
             WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
        ))
        .bind(before_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("audit"))?;
        rows.iter()
            .map(audit_entry)
            .collect::<Result<_, _>>()
            .map_err(query_error("audit"))
    }

    async fn audit_oldest_first(
        &self,
        limit: u32,
        after_id: Option<i64>,
    ) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after_id.unwrap_or(i64::MIN))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("audit_oldest_first"))?;
        rows.iter()
            .map(audit_entry)
            .collect::<Result<_, _>>()
            .map_err(query_error("audit_oldest_first"))
    }

    async fn last_audit(&self, action: &str) -> StoreResult<Option<AuditEntry>> {
        let row = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(action)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("last_audit"))?;
        row.as_ref()
            .map(audit_entry)
            .transpose()
            .map_err(query_error("last_audit"))
    }

    async fn branch_status(&self, branch: &str) -> StoreResult<Option<BranchStatus>> {
        let row = sqlx::query(
            "SELECT branch, state, last_attempted, last_applied, message, diagnostics, updated_at \
             FROM branch_status WHERE branch = $1",
        )
        .bind(branch)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("branch_status"))?;
        row.as_ref()
            .map(branch_status_row)
            .transpose()
            .map_err(query_error("branch_status"))
    }

    async fn set_branch_status(&self, status: &BranchStatus) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO branch_status \
             (branch, state, last_attempted, last_applied, message, diagnostics, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (branch) DO UPDATE SET \
             state = excluded.state, last_attempted = excluded.last_attempted, \
             last_applied = excluded.last_applied, message = excluded.message, \
             diagnostics = excluded.diagnostics, updated_at = excluded.updated_at",
        )
        .bind(&status.branch)
        .bind(status.state.as_str())
        .bind(&status.last_attempted)
        .bind(&status.last_applied)
        .bind(&status.message)
        .bind(&status.diagnostics)
        .bind(micros(status.updated_at))
        .execute(&self.pool)
        .await
        .map_err(query_error("set_branch_status"))?;
        Ok(())
    }

    async fn record_delivery(&self, delivery_id: &str, event: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (delivery_id, event, received_at) \
             VALUES ($1, $2, now()) ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(event)
        .execute(&self.pool)
        .await
        .map_err(query_error("record_delivery"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn push_work(&self, kind: &str, payload: &Value) -> StoreResult<()> {
        sqlx::query("INSERT INTO work_requests (kind, payload) VALUES ($1, $2)")
            .bind(kind)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map_err(query_error("push_work"))?;
        Ok(())
    }

    async fn take_work(&self, limit: u32) -> StoreResult<Vec<(String, Value)>> {
        let rows = sqlx::query(
            "DELETE FROM work_requests WHERE id IN \
             (SELECT id FROM work_requests ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, kind, payload",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("take_work"))?;
        let mut work = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("id")?,
                    r.try_get("kind")?,
                    r.try_get("payload")?,
                ))
            })
            .collect::<Result<Vec<(i64, String, Value)>, sqlx::Error>>()
            .map_err(query_error("take_work"))?;
        work.sort_by_key(|w| w.0);
        Ok(work.into_iter().map(|(_, k, p)| (k, p)).collect())
    }

    async fn insert_run(&self, run: &NewRun) -> StoreResult<Run> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO runs (workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
             triggered_by, revision, conf, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now()) \
             ON CONFLICT (dag_id, airflow_run_id) DO NOTHING RETURNING {RUN_COLUMNS}"
        ))
        .bind(&run.workspace)
        .bind(&run.job)
        .bind(&run.dag_id)
        .bind(&run.airflow_run_id)
        .bind(&run.state)
        .bind(run.trigger.as_str())
        .bind(&run.triggered_by)
        .bind(&run.revision)
        .bind(&run.conf)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("insert_run"))?;
        // Already recorded: the first insert wins. A statement of its own, so that it sees the
        // row of a concurrent insert that committed after this one's snapshot.
        let row = match inserted {
            Some(row) => row,
            None => sqlx::query(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE dag_id = $1 AND airflow_run_id = $2"
            ))
            .bind(&run.dag_id)
            .bind(&run.airflow_run_id)
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("insert_run"))?,
        };
        run_row(&row).map_err(query_error("insert_run"))
    }

    async fn update_run(&self, id: i64, update: &RunUpdate) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE runs SET state = $1, logical_date = $2, started_at = $3, ended_at = $4, \
             updated_at = now() WHERE id = $5",
        )
        .bind(&update.state)
        .bind(update.logical_date.map(micros))
        .bind(update.started_at.map(micros))
        .bind(update.ended_at.map(micros))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(query_error("update_run"))?;
        if done.rows_affected() == 0 {
            return Err(query_error("update_run")(sqlx::Error::RowNotFound));
        }
        Ok(())
    }

    async fn run(&self, id: i64) -> StoreResult<Option<Run>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("run"))?;
        row.as_ref()
            .map(run_row)
            .transpose()
            .map_err(query_error("run"))
    }

    async fn runs(
        &self,
        filter: &RunFilter,
        limit: u32,
        before_id: Option<i64>,
    ) -> StoreResult<Vec<Run>> {
        let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {RUN_COLUMNS} FROM runs"));
        push_run_filter(&mut query, filter);
        if let Some(before_id) = before_id {
            query.push(" AND id < ").push_bind(before_id);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows = query
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("runs"))?;
        rows.iter()
            .map(run_row)
            .collect::<Result<_, _>>()
            .map_err(query_error("runs"))
    }

    async fn count_runs(&self, filter: &RunFilter) -> StoreResult<u64> {
        let mut query = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM runs");
        push_run_filter(&mut query, filter);
        let n: i64 = query
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("count_runs"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn active_runs(&self) -> StoreResult<Vec<Run>> {
        // The condition of the partial index `runs_active`.
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE state NOT IN ('success', 'failed') ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("active_runs"))?;
        rows.iter()
            .map(run_row)
            .collect::<Result<_, _>>()
            .map_err(query_error("active_runs"))
    }

    async fn run_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        // COLLATE "C": byte order, as in SQLite, whatever the database's locale.
        sqlx::query_as(
            "SELECT state, COUNT(*) FROM runs GROUP BY state ORDER BY state COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("run_counts"))
    }

    async fn upsert_task_instances(&self, run_id: i64, tis: &[TaskInstanceRow]) -> StoreResult<()> {
        if tis.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_error("upsert_task_instances"))?;
        for ti in tis {
            sqlx::query(
                "INSERT INTO task_instances (run_id, task_id, map_index, try_number, state, \
                 started_at, ended_at, duration_seconds, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now()) \
                 ON CONFLICT (run_id, task_id, map_index, try_number) DO UPDATE SET \
                 state = excluded.state, started_at = excluded.started_at, \
                 ended_at = excluded.ended_at, duration_seconds = excluded.duration_seconds, \
                 updated_at = excluded.updated_at",
            )
            .bind(run_id)
            .bind(&ti.task_id)
            .bind(ti.map_index)
            .bind(ti.try_number)
            .bind(&ti.state)
            .bind(ti.started_at.map(micros))
            .bind(ti.ended_at.map(micros))
            .bind(ti.duration_seconds)
            .execute(&mut *tx)
            .await
            .map_err(query_error("upsert_task_instances"))?;
        }
        tx.commit()
            .await
            .map_err(query_error("upsert_task_instances"))?;
        Ok(())
    }

    async fn task_instances(&self, run_id: i64) -> StoreResult<Vec<TaskInstanceRow>> {
        let rows = sqlx::query(
            "SELECT task_id, map_index, try_number, state, started_at, ended_at, \
             duration_seconds FROM task_instances WHERE run_id = $1 \
             ORDER BY started_at NULLS LAST, task_id COLLATE \"C\", map_index, try_number",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("task_instances"))?;
        rows.iter()
            .map(task_instance_row)
            .collect::<Result<_, _>>()
            .map_err(query_error("task_instances"))
    }

    async fn record_lineage(&self, events: &[NewLineageEvent]) -> StoreResult<Vec<bool>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = micros(Utc::now());
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_error("record_lineage"))?;
        let mut new = Vec::with_capacity(events.len());
        for e in events {
            let done = sqlx::query(
                "INSERT INTO lineage_events (dedupe_key, run_id, event_type, event_time, \
                 job_namespace, job_name, raw, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (dedupe_key) DO NOTHING",
            )
            .bind(&e.dedupe_key)
            .bind(&e.run_id)
            .bind(&e.event_type)
            .bind(micros(e.event_time))
            .bind(&e.job_namespace)
            .bind(&e.job_name)
            .bind(&e.raw)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query_error("record_lineage"))?;
            let inserted = done.rows_affected() == 1;
            new.push(inserted);
            if !inserted {
                continue;
            }
            for edge in &e.edges {
                sqlx::query(
                    "INSERT INTO lineage_edges (job_namespace, job_name, dataset_namespace, \
                     dataset_name, direction, source, first_seen_at, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $5, 'observed', $6, $7) \
                     ON CONFLICT (job_namespace, job_name, dataset_namespace, dataset_name, \
                     direction, source) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                )
                .bind(&edge.job_namespace)
                .bind(&edge.job_name)
                .bind(&edge.dataset_namespace)
                .bind(&edge.dataset_name)
                .bind(&edge.direction)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(query_error("record_lineage"))?;
            }
        }
        tx.commit().await.map_err(query_error("record_lineage"))?;
        Ok(new)
    }

    async fn observed_edges(&self) -> StoreResult<Vec<ObservedEdge>> {
        let rows = sqlx::query(
            "SELECT job_namespace, job_name, dataset_namespace, dataset_name, direction \
             FROM lineage_edges WHERE source = 'observed' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("observed_edges"))?;
        rows.iter()
            .map(|row| {
                Ok(ObservedEdge {
                    job_namespace: row.try_get("job_namespace")?,
                    job_name: row.try_get("job_name")?,
                    dataset_namespace: row.try_get("dataset_namespace")?,
                    dataset_name: row.try_get("dataset_name")?,
                    direction: row.try_get("direction")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query_error("observed_edges"))
    }

    async fn lineage_events_after(&self, after: i64, limit: u32) -> StoreResult<Vec<(i64, Value)>> {
        let rows =
            sqlx::query("SELECT id, raw FROM lineage_events WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(query_error("lineage_events_after"))?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("raw")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query_error("lineage_events_after"))
    }

    async fn lineage_event_count(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lineage_events")
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("lineage_event_count"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(query_error("ping"))?;
        Ok(())
    }
}

/// The WHERE clause of a run filter: only the conditions given (not `? IS NULL OR ...`), so that
/// each combination walks an index whatever plan the database caches for the statement.
fn push_run_filter<'a>(query: &mut QueryBuilder<'a, Postgres>, filter: &'a RunFilter) {
    query.push(" WHERE TRUE");
    if let Some(workspace) = &filter.workspace {
        query.push(" AND workspace = ").push_bind(workspace);
    }
    match filter.workspaces.as_deref() {
        None => {}
        // None of them: nothing matches.
        Some([]) => {
            query.push(" AND FALSE");
        }
        Some(workspaces) => {
            query.push(" AND workspace IN (");
            let mut list = query.separated(", ");
            for ws in workspaces {
                list.push_bind(ws);
            }
            query.push(")");
        }
    }
    if let Some(job) = &filter.job {
        query.push(" AND job = ").push_bind(job);
    }
    if let Some(state) = &filter.state {
        query.push(" AND state = ").push_bind(state);
    }
    if let Some(since) = filter.since {
        query.push(" AND created_at >= ").push_bind(since);
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn redacted_hides_only_the_password() {
        assert_eq!(
            redacted("postgres://olo:s3cr:et@db.internal:5432/olo?sslmode=require"),
            "postgres://olo:***@db.internal:5432/olo?sslmode=require"
        );
        assert_eq!(
            redacted("postgres://olo:a/b@c@db/olo"),
            "postgres://olo:***@db/olo"
        );
        assert_eq!(
            redacted("postgres://olo@db:5432/olo"),
            "postgres://olo@db:5432/olo"
        );
        assert_eq!(
            redacted("postgres:///olo?host=/run"),
            "postgres:///olo?host=/run"
        );
    }
}
