//! SQLite backend: the embedded default, one file.
//!
//! Timestamps are TEXT in RFC 3339 UTC with exactly six fractional digits
//! (`2024-05-01T12:00:00.000000Z`), always written by this file, so text order is time order and
//! the precision matches PostgreSQL's. JSON values are TEXT.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{
    AuditEntry, BranchStatus, InventoryItem, NewAudit, NewLineageEvent, NewRun, ObservedEdge,
    Person, PlanRow, Revision, RevisionRow, RevisionStatus, Run, RunFilter, RunTrigger, RunUpdate,
    Store, StoreError, StoreResult, SyncState, TaskInstanceRow,
};

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The state store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Bytes of WAL file kept after a checkpoint (64 MiB).
pub const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

impl SqliteStore {
    /// Opens (creating the file and its folder if needed) the database a `sqlite:path` URL
    /// names, and runs pending migrations. `sqlite::memory:` opens a private in-memory store.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Url(url.to_string()));
        }
        let open_error = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a process crash (kill -9); only a power loss can
            // drop the last transactions, never corrupt the file. SQLite's recommended pairing.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            // After a checkpoint, the WAL file is cut back to this size: without it, the file
            // keeps the size of its largest burst (a flood of writes) for good.
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string())
            .foreign_keys(true);

        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = if in_memory {
            // An in-memory database lives as long as a connection to it: keep exactly one.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            if let Some(folder) = options.get_filename().parent() {
                if !folder.as_os_str().is_empty() {
                    tokio::fs::create_dir_all(folder)
                        .await
                        .map_err(|e| open_error(sqlx::Error::Io(e)))?;
                }
            }
            SqlitePoolOptions::new().max_connections(4)
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_error)?;

        MIGRATOR.run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(SqliteStore { pool })
    }
}

fn query_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

/// The one text form of a timestamp in this database.
fn time_text(time: DateTime<Utc>) -> String {
    time.trunc_subsecs(6)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn now_text() -> String {
    time_text(Utc::now())
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| decode_error(format!("bad timestamp `{text}`: {e}")))
}

fn get_time(row: &SqliteRow, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    parse_time(&row.try_get::<String, _>(column)?)
}

fn get_optional_time(row: &SqliteRow, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    row.try_get::<Option<String>, _>(column)?
        .as_deref()
        .map(parse_time)
        .transpose()
}

fn json_text(value: &Value) -> String {
    value.to_string()
}

fn get_json(row: &SqliteRow, column: &str) -> Result<Value, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| decode_error(format!("bad JSON in {column}: {e}")))
}

const REVISION_COLUMNS: &str = "branch, sha, author_name, author_email, author_time, \
     committer_name, committer_email, committer_time, message, signed, status, diagnostics, seen_at, \
     signature";

fn revision_row(row: &SqliteRow) -> Result<RevisionRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(RevisionRow {
        revision: Revision {
            sha: row.try_get("sha")?,
            branch: row.try_get("branch")?,
            author: Person {
                name: row.try_get("author_name")?,
                email: row.try_get("author_email")?,
                time: get_time(row, "author_time")?,
            },
            committer: Person {
                name: row.try_get("committer_name")?,
                email: row.try_get("committer_email")?,
                time: get_time(row, "committer_time")?,
            },
            message: row.try_get("message")?,
            signed: row.try_get("signed")?,
            signature: row
                .try_get::<Option<sqlx::types::Json<_>>, _>("signature")?
                .map(|j| j.0),
        },
        status: RevisionStatus::parse(&status)
            .ok_or_else(|| decode_error(format!("unknown revision status `{status}`")))?,
        diagnostics: get_json(row, "diagnostics")?,
        seen_at: get_time(row, "seen_at")?,
    })
}

const PLAN_COLUMNS: &str =
    "id, branch, sha, summary, body, created_at, outcome, error, finished_at";

fn plan_row(row: &SqliteRow) -> Result<PlanRow, sqlx::Error> {
    Ok(PlanRow {
        id: row.try_get("id")?,
        branch: row.try_get("branch")?,
        sha: row.try_get("sha")?,
        summary: get_json(row, "summary")?,
        body: get_json(row, "body")?,
        created_at: get_time(row, "created_at")?,
        outcome: row.try_get("outcome")?,
        error: row.try_get("error")?,
        finished_at: get_optional_time(row, "finished_at")?,
    })
}

fn inventory_item(row: &SqliteRow) -> Result<InventoryItem, sqlx::Error> {
    Ok(InventoryItem {
        target: row.try_get("target")?,
        name: row.try_get("name")?,
        hash: row.try_get("hash")?,
        revision: row.try_get("revision")?,
    })
}

const AUDIT_COLUMNS: &str = "id, at, actor, action, target, revision, details";

fn audit_entry(row: &SqliteRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: get_time(row, "at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        revision: row.try_get("revision")?,
        details: get_json(row, "details")?,
    })
}

fn branch_status_row(row: &SqliteRow) -> Result<BranchStatus, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(BranchStatus {
        branch: row.try_get("branch")?,
        state: SyncState::parse(&state)
            .ok_or_else(|| decode_error(format!("unknown sync state `{state}`")))?,
        last_attempted: row.try_get("last_attempted")?,
        last_applied: row.try_get("last_applied")?,
        message: row.try_get("message")?,
        diagnostics: get_json(row, "diagnostics")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

const RUN_COLUMNS: &str = "id, workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
     triggered_by, revision, conf, logical_date, started_at, ended_at, created_at, updated_at";

fn run_row(row: &SqliteRow) -> Result<Run, sqlx::Error> {
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
        conf: get_json(row, "conf")?,
        logical_date: get_optional_time(row, "logical_date")?,
        started_at: get_optional_time(row, "started_at")?,
        ended_at: get_optional_time(row, "ended_at")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn task_instance_row(row: &SqliteRow) -> Result<TaskInstanceRow, sqlx::Error> {
    Ok(TaskInstanceRow {
        task_id: row.try_get("task_id")?,
        map_index: row.try_get("map_index")?,
        try_number: row.try_get("try_number")?,
        state: row.try_get("state")?,
        started_at: get_optional_time(row, "started_at")?,
        ended_at: get_optional_time(row, "ended_at")?,
        duration_seconds: row.try_get("duration_seconds")?,
    })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn record_revision(&self, revision: &Revision) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO revisions (branch, sha, author_name, author_email, author_time, \
             committer_name, committer_email, committer_time, message, signed, seen_at, signature) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (branch, sha) DO UPDATE SET signature = excluded.signature",
        )
        .bind(&revision.branch)
        .bind(&revision.sha)
        .bind(&revision.author.name)
        .bind(&revision.author.email)
        .bind(time_text(revision.author.time))
        .bind(&revision.committer.name)
        .bind(&revision.committer.email)
        .bind(time_text(revision.committer.time))
        .bind(&revision.message)
        .bind(revision.signed)
        .bind(now_text())
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
            "UPDATE revisions SET status = ?, diagnostics = ? WHERE branch = ? AND sha = ?",
        )
        .bind(status.as_str())
        .bind(json_text(diagnostics))
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
            "SELECT {REVISION_COLUMNS} FROM revisions WHERE branch = ? AND sha = ?"
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
        // Two statements rather than `? IS NULL OR ...`, so each walks the index.
        let sql = match before {
            None => format!(
                "SELECT {REVISION_COLUMNS} FROM revisions WHERE branch = ? \
                 ORDER BY seen_at DESC, id DESC LIMIT ?"
            ),
            Some(_) => format!(
                "SELECT {REVISION_COLUMNS} FROM revisions WHERE branch = ? AND seen_at < ? \
                 ORDER BY seen_at DESC, id DESC LIMIT ?"
            ),
        };
        let mut query = sqlx::query(&sql).bind(branch);
        if let Some(before) = before {
            query = query.bind(time_text(before));
        }
        let rows = query
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
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(branch)
        .bind(sha)
        .bind(json_text(summary))
        .bind(json_text(body))
        .bind(now_text())
        .fetch_one(&self.pool)
        .await
        .map_err(query_error("insert_plan"))
    }

    async fn finish_plan(&self, id: i64, outcome: &str, error: Option<&str>) -> StoreResult<()> {
        let done =
            sqlx::query("UPDATE plans SET outcome = ?, error = ?, finished_at = ? WHERE id = ?")
                .bind(outcome)
                .bind(error)
                .bind(now_text())
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
            "SELECT {PLAN_COLUMNS} FROM plans WHERE branch = ? AND sha = ? ORDER BY id DESC"
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
        let rows = sqlx::query(
            "SELECT target, name, hash, revision FROM inventory WHERE target = ? ORDER BY name",
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
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (target, name) DO UPDATE SET \
             hash = excluded.hash, revision = excluded.revision, updated_at = excluded.updated_at",
        )
        .bind(&item.target)
        .bind(&item.name)
        .bind(&item.hash)
        .bind(&item.revision)
        .bind(now_text())
        .execute(&self.pool)
        .await
        .map_err(query_error("upsert_inventory"))?;
        Ok(())
    }

    async fn upsert_inventory_many(&self, items: &[InventoryItem]) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let now = now_text();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_error("upsert_inventory_many"))?;
        // A thousand rows per statement: a cold apply claims 10,000 files in ten statements.
        for chunk in super::last_of_each(items).chunks(super::SQLITE_BATCH) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO inventory (target, name, hash, revision, updated_at) ",
            );
            query.push_values(chunk, |mut row, item| {
                row.push_bind(&item.target)
                    .push_bind(&item.name)
                    .push_bind(&item.hash)
                    .push_bind(&item.revision)
                    .push_bind(&now);
            });
            query.push(
                " ON CONFLICT (target, name) DO UPDATE SET \
                 hash = excluded.hash, revision = excluded.revision, updated_at = excluded.updated_at",
            );
            query
                .build()
                .execute(&mut *tx)
                .await
                .map_err(query_error("upsert_inventory_many"))?;
        }
        tx.commit()
            .await
            .map_err(query_error("upsert_inventory_many"))?;
        Ok(())
    }

    async fn remove_inventory_many(&self, target: &str, names: &[String]) -> StoreResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_error("remove_inventory_many"))?;
        for chunk in names.chunks(super::SQLITE_BATCH) {
            let mut query = QueryBuilder::<Sqlite>::new("DELETE FROM inventory WHERE target = ");
            query.push_bind(target).push(" AND name IN (");
            let mut list = query.separated(", ");
            for name in chunk {
                list.push_bind(name);
            }
            list.push_unseparated(")");
            query
                .build()
                .execute(&mut *tx)
                .await
                .map_err(query_error("remove_inventory_many"))?;
        }
        tx.commit()
            .await
            .map_err(query_error("remove_inventory_many"))?;
        Ok(())
    }

    async fn remove_inventory(&self, target: &str, name: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM inventory WHERE target = ? AND name = ?")
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
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(now_text())
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.revision)
        .bind(json_text(&entry.details))
        .fetch_one(&self.pool)
        .await
        .map_err(query_error("append_audit"))
    }

    async fn audit(&self, limit: u32, before_id: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
        let sql = match before_id {
            None => format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ?"),
            Some(_) => format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?"
            ),
        };
        let mut query = sqlx::query(&sql);
        if let Some(before_id) = before_id {
            query = query.bind(before_id);
        }
        let rows = query
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
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > ? ORDER BY id LIMIT ?"
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
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE action = ? ORDER BY id DESC LIMIT 1"
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
             FROM branch_status WHERE branch = ?",
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
             VALUES (?, ?, ?, ?, ?, ?, ?) \
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
        .bind(json_text(&status.diagnostics))
        .bind(time_text(status.updated_at))
        .execute(&self.pool)
        .await
        .map_err(query_error("set_branch_status"))?;
        Ok(())
    }

    async fn record_delivery(&self, delivery_id: &str, event: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (delivery_id, event, received_at) VALUES (?, ?, ?) \
             ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(event)
        .bind(now_text())
        .execute(&self.pool)
        .await
        .map_err(query_error("record_delivery"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn push_work(&self, kind: &str, payload: &Value) -> StoreResult<()> {
        sqlx::query("INSERT INTO work_requests (kind, payload, created_at) VALUES (?, ?, ?)")
            .bind(kind)
            .bind(payload.to_string())
            .bind(now_text())
            .execute(&self.pool)
            .await
            .map_err(query_error("push_work"))?;
        Ok(())
    }

    async fn take_work(&self, limit: u32) -> StoreResult<Vec<(String, Value)>> {
        // One statement: SQLite serialises writers, so two takers never share a row.
        let rows = sqlx::query(
            "DELETE FROM work_requests WHERE id IN \
             (SELECT id FROM work_requests ORDER BY id LIMIT ?) RETURNING id, kind, payload",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("take_work"))?;
        let mut work = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id").map_err(query_error("take_work"))?;
            let kind: String = r.try_get("kind").map_err(query_error("take_work"))?;
            let payload = get_json(r, "payload").map_err(query_error("take_work"))?;
            work.push((id, kind, payload));
        }
        work.sort_by_key(|w| w.0);
        Ok(work.into_iter().map(|(_, k, p)| (k, p)).collect())
    }

    async fn insert_run(&self, run: &NewRun) -> StoreResult<Run> {
        let now = now_text();
        let inserted = sqlx::query(&format!(
            "INSERT INTO runs (workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
             triggered_by, revision, conf, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
        .bind(json_text(&run.conf))
        .bind(&now)
        .bind(&now)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_error("insert_run"))?;
        // Already recorded: the first insert wins.
        let row = match inserted {
            Some(row) => row,
            None => sqlx::query(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE dag_id = ? AND airflow_run_id = ?"
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
            "UPDATE runs SET state = ?, logical_date = ?, started_at = ?, ended_at = ?, \
             updated_at = ? WHERE id = ?",
        )
        .bind(&update.state)
        .bind(update.logical_date.map(time_text))
        .bind(update.started_at.map(time_text))
        .bind(update.ended_at.map(time_text))
        .bind(now_text())
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
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?"))
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
        let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {RUN_COLUMNS} FROM runs"));
        push_run_filter(&mut query, filter, Walk::NewestFirst);
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
        let mut query = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM runs");
        push_run_filter(&mut query, filter, Walk::Count);
        let n: i64 = query
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("count_runs"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn active_runs(&self) -> StoreResult<Vec<Run>> {
        // The condition of the partial index `runs_active`, word for word: SQLite uses the index
        // only then.
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
        sqlx::query_as("SELECT state, COUNT(*) FROM runs GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("run_counts"))
    }

    async fn upsert_task_instances(&self, run_id: i64, tis: &[TaskInstanceRow]) -> StoreResult<()> {
        if tis.is_empty() {
            return Ok(());
        }
        let now = now_text();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_error("upsert_task_instances"))?;
        for ti in tis {
            sqlx::query(
                "INSERT INTO task_instances (run_id, task_id, map_index, try_number, state, \
                 started_at, ended_at, duration_seconds, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
            .bind(ti.started_at.map(time_text))
            .bind(ti.ended_at.map(time_text))
            .bind(ti.duration_seconds)
            .bind(&now)
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
             duration_seconds FROM task_instances WHERE run_id = ? \
             ORDER BY started_at NULLS LAST, task_id, map_index, try_number",
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
        let now = now_text();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_error("record_lineage"))?;
        let mut new = Vec::with_capacity(events.len());
        for e in events {
            let done = sqlx::query(
                "INSERT INTO lineage_events (dedupe_key, run_id, event_type, event_time, \
                 job_namespace, job_name, raw, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (dedupe_key) DO NOTHING",
            )
            .bind(&e.dedupe_key)
            .bind(&e.run_id)
            .bind(&e.event_type)
            .bind(time_text(e.event_time))
            .bind(&e.job_namespace)
            .bind(&e.job_name)
            .bind(e.raw.to_string())
            .bind(&now)
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
                     VALUES (?, ?, ?, ?, ?, 'observed', ?, ?) \
                     ON CONFLICT (job_namespace, job_name, dataset_namespace, dataset_name, \
                     direction, source) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                )
                .bind(&edge.job_namespace)
                .bind(&edge.job_name)
                .bind(&edge.dataset_namespace)
                .bind(&edge.dataset_name)
                .bind(&edge.direction)
                .bind(&now)
                .bind(&now)
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
            sqlx::query("SELECT id, raw FROM lineage_events WHERE id > ? ORDER BY id LIMIT ?")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(query_error("lineage_events_after"))?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, get_json(row, "raw")?)))
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

/// How a run query reads the table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Newest first with a LIMIT: walk an `(…, id DESC)` index and stop early.
    NewestFirst,
    /// Every match: a `(state, created_at)` index range answers a count on its own.
    Count,
}

/// The WHERE clause of a run filter: only the conditions given (not `? IS NULL OR ...`), so that
/// each combination walks an index.
///
/// For a newest-first page the time check is kept from the planner (`+created_at`), so that
/// SQLite walks an `(…, id DESC)` index from the newest run and stops after a page; otherwise it
/// reads every run of the window through the `(state, created_at)` index and sorts them all.
fn push_run_filter<'a>(query: &mut QueryBuilder<'a, Sqlite>, filter: &'a RunFilter, walk: Walk) {
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
        match walk {
            Walk::Count => {
                query
                    .push(" AND created_at >= ")
                    .push_bind(time_text(since));
            }
            Walk::NewestFirst => {
                query
                    .push(" AND +created_at >= ")
                    .push_bind(time_text(since));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_wal_is_cut_back_after_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("state.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let (limit,): (i64,) = sqlx::query_as("PRAGMA journal_size_limit")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(limit, JOURNAL_SIZE_LIMIT);
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
