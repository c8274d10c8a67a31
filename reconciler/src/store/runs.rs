//! Airflow DAG runs of olo jobs, as olo last saw them.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Database, Encode, QueryBuilder, Type};

use super::sql::{decoded, on_pool, one_row, query_error, value, values, Db, Dialect, Record};
use super::time::DbTime;
use super::{NewRun, Run, RunFilter, RunTrigger, RunUpdate, StoreResult};

const COLUMNS: &str = "id, workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
     triggered_by, revision, conf, logical_date, started_at, ended_at, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct RunRecord {
    id: i64,
    workspace: String,
    job: String,
    dag_id: String,
    airflow_run_id: String,
    state: String,
    trigger: String,
    triggered_by: Option<String>,
    revision: Option<String>,
    conf: Json<Value>,
    logical_date: Option<DbTime>,
    started_at: Option<DbTime>,
    ended_at: Option<DbTime>,
    created_at: DbTime,
    updated_at: DbTime,
}

impl Record for RunRecord {
    type Value = Run;

    fn into_value(self) -> Result<Run, String> {
        let trigger = RunTrigger::parse(&self.trigger)
            .ok_or_else(|| format!("unknown run trigger `{}`", self.trigger))?;
        Ok(Run {
            id: self.id,
            workspace: self.workspace,
            job: self.job,
            dag_id: self.dag_id,
            airflow_run_id: self.airflow_run_id,
            state: self.state,
            trigger,
            triggered_by: self.triggered_by,
            revision: self.revision,
            conf: self.conf.0,
            logical_date: self.logical_date.map(Into::into),
            started_at: self.started_at.map(Into::into),
            ended_at: self.ended_at.map(Into::into),
            created_at: self.created_at.into(),
            updated_at: self.updated_at.into(),
        })
    }
}

/// Idempotent on (dag_id, airflow_run_id): a second insert returns the existing row unchanged.
pub(super) async fn insert(db: &Db, run: &NewRun) -> StoreResult<Run> {
    let now = DbTime::now();
    let insert = format!(
        "INSERT INTO runs (workspace, job, dag_id, airflow_run_id, state, \"trigger\", \
         triggered_by, revision, conf, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
         ON CONFLICT (dag_id, airflow_run_id) DO NOTHING RETURNING {COLUMNS}"
    );
    let existing = format!("SELECT {COLUMNS} FROM runs WHERE dag_id = $1 AND airflow_run_id = $2");
    let inserted = on_pool!(db, |pool| {
        sqlx::query_as::<_, RunRecord>(&insert)
            .bind(&run.workspace)
            .bind(&run.job)
            .bind(&run.dag_id)
            .bind(&run.airflow_run_id)
            .bind(&run.state)
            .bind(run.trigger.as_str())
            .bind(&run.triggered_by)
            .bind(&run.revision)
            .bind(Json(&run.conf))
            .bind(now)
            .fetch_optional(pool)
            .await
    })
    .map_err(query_error("insert_run"))?;
    // Already recorded: the first insert wins. A statement of its own, so that on PostgreSQL it
    // sees the row of a concurrent insert that committed after this one's snapshot.
    let row = match inserted {
        Some(row) => row,
        None => on_pool!(db, |pool| {
            sqlx::query_as::<_, RunRecord>(&existing)
                .bind(&run.dag_id)
                .bind(&run.airflow_run_id)
                .fetch_one(pool)
                .await
        })
        .map_err(query_error("insert_run"))?,
    };
    decoded("insert_run", row)
}

/// Replaces the state and times of a run, and sets `updated_at` to now.
pub(super) async fn update(db: &Db, id: i64, update: &RunUpdate) -> StoreResult<()> {
    let now = DbTime::now();
    let affected = on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE runs SET state = $1, logical_date = $2, started_at = $3, ended_at = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(&update.state)
        .bind(update.logical_date.map(DbTime::from))
        .bind(update.started_at.map(DbTime::from))
        .bind(update.ended_at.map(DbTime::from))
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })
    .map_err(query_error("update_run"))?;
    one_row("update_run", affected)
}

/// Removes a run recorded for a trigger that Airflow then refused (it never ran).
pub(super) async fn delete(db: &Db, id: i64) -> StoreResult<()> {
    on_pool!(db, |pool| {
        sqlx::query("DELETE FROM runs WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })
    .map_err(query_error("delete_run"))
}

pub(super) async fn get(db: &Db, id: i64) -> StoreResult<Option<Run>> {
    let sql = format!("SELECT {COLUMNS} FROM runs WHERE id = $1");
    let row = on_pool!(db, |pool| {
        sqlx::query_as::<_, RunRecord>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await
    })
    .map_err(query_error("run"))?;
    value("run", row)
}

/// Newest first (id descending), id < `before_id` when given; the filter's fields are ANDed.
pub(super) async fn newest_first(
    db: &Db,
    filter: &RunFilter,
    limit: u32,
    before_id: Option<i64>,
) -> StoreResult<Vec<Run>> {
    let dialect = db.dialect();
    let rows = on_pool!(db, |pool| {
        let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM runs"));
        push_filter(&mut query, filter, dialect, Walk::NewestFirst);
        if let Some(before_id) = before_id {
            query.push(" AND id < ").push_bind(before_id);
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit));
        query.build_query_as::<RunRecord>().fetch_all(pool).await
    })
    .map_err(query_error("runs"))?;
    values("runs", rows)
}

pub(super) async fn count(db: &Db, filter: &RunFilter) -> StoreResult<u64> {
    let dialect = db.dialect();
    let n: i64 = on_pool!(db, |pool| {
        let mut query = QueryBuilder::new("SELECT COUNT(*) FROM runs");
        push_filter(&mut query, filter, dialect, Walk::Count);
        query.build_query_scalar().fetch_one(pool).await
    })
    .map_err(query_error("count_runs"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Runs not in a terminal state, oldest first: the ones to follow in Airflow.
pub(super) async fn active(db: &Db) -> StoreResult<Vec<Run>> {
    // The condition of the partial index `runs_active`, word for word: SQLite uses the index
    // only then.
    let sql =
        format!("SELECT {COLUMNS} FROM runs WHERE state NOT IN ('success', 'failed') ORDER BY id");
    let rows = on_pool!(db, |pool| {
        sqlx::query_as::<_, RunRecord>(&sql).fetch_all(pool).await
    })
    .map_err(query_error("active_runs"))?;
    values("active_runs", rows)
}

/// Sorted by state, byte order.
pub(super) async fn counts_per_state(db: &Db) -> StoreResult<Vec<(String, i64)>> {
    let sql = format!(
        "SELECT state, COUNT(*) FROM runs GROUP BY state ORDER BY state{}",
        db.dialect().bytewise()
    );
    on_pool!(db, |pool| sqlx::query_as(&sql).fetch_all(pool).await)
        .map_err(query_error("run_counts"))
}

/// How a run query reads the table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Newest first with a LIMIT: walk an `(…, id DESC)` index and stop early.
    NewestFirst,
    /// Every match: a `(state, created_at)` index range answers a count on its own.
    Count,
}

/// The WHERE clause of a run filter: only the conditions given (not `$1 IS NULL OR ...`), so
/// that each combination walks an index whatever plan the database caches for the statement.
///
/// For a newest-first page on SQLite the time check is kept from the planner, so that it walks
/// an `(…, id DESC)` index from the newest run and stops after a page; otherwise it reads every
/// run of the window through the `(state, created_at)` index and sorts them all.
fn push_filter<'a, DB>(
    query: &mut QueryBuilder<'a, DB>,
    filter: &'a RunFilter,
    dialect: Dialect,
    walk: Walk,
) where
    DB: Database,
    &'a String: Encode<'a, DB> + Type<DB>,
    DbTime: Encode<'a, DB> + Type<DB>,
{
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
        let created_at = match walk {
            Walk::Count => "created_at".to_string(),
            Walk::NewestFirst => dialect.unindexed("created_at"),
        };
        query
            .push(format!(" AND {created_at} >= "))
            .push_bind(DbTime::from(since));
    }
}
