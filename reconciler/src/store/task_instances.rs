//! Task instances of a run, one row per try (`map_index` -1 for an unmapped task).

use super::sql::{on_pool, query_error, values, Db, Record};
use super::time::DbTime;
use super::{StoreResult, TaskInstanceRow};

#[derive(sqlx::FromRow)]
struct TaskInstanceRecord {
    task_id: String,
    // INTEGER columns: 32 bits on PostgreSQL.
    map_index: i32,
    try_number: i32,
    state: Option<String>,
    started_at: Option<DbTime>,
    ended_at: Option<DbTime>,
    duration_seconds: Option<f64>,
}

impl Record for TaskInstanceRecord {
    type Value = TaskInstanceRow;

    fn into_value(self) -> Result<TaskInstanceRow, String> {
        Ok(TaskInstanceRow {
            task_id: self.task_id,
            map_index: i64::from(self.map_index),
            try_number: i64::from(self.try_number),
            state: self.state,
            started_at: self.started_at.map(Into::into),
            ended_at: self.ended_at.map(Into::into),
            duration_seconds: self.duration_seconds,
        })
    }
}

/// Upserts on (run, task_id, map_index, try_number), all in one transaction.
pub(super) async fn upsert(db: &Db, run_id: i64, tis: &[TaskInstanceRow]) -> StoreResult<()> {
    if tis.is_empty() {
        return Ok(());
    }
    let now = DbTime::now();
    let what = "upsert_task_instances";
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await.map_err(query_error(what))?;
        for ti in tis {
            sqlx::query(
                "INSERT INTO task_instances (run_id, task_id, map_index, try_number, state, \
                 started_at, ended_at, duration_seconds, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
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
            .bind(ti.started_at.map(DbTime::from))
            .bind(ti.ended_at.map(DbTime::from))
            .bind(ti.duration_seconds)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query_error(what))?;
        }
        tx.commit().await.map_err(query_error(what))
    })
}

/// Sorted by started_at (not started last), then task_id (byte order), map_index, try_number.
pub(super) async fn of_run(db: &Db, run_id: i64) -> StoreResult<Vec<TaskInstanceRow>> {
    let sql = format!(
        "SELECT task_id, map_index, try_number, state, started_at, ended_at, duration_seconds \
         FROM task_instances WHERE run_id = $1 \
         ORDER BY started_at NULLS LAST, task_id{}, map_index, try_number",
        db.dialect().bytewise()
    );
    let rows = on_pool!(db, |pool| {
        sqlx::query_as::<_, TaskInstanceRecord>(&sql)
            .bind(run_id)
            .fetch_all(pool)
            .await
    })
    .map_err(query_error("task_instances"))?;
    values("task_instances", rows)
}
