//! Plans computed for a revision, and their outcomes.

use serde_json::Value;
use sqlx::types::Json;

use super::sql::{on_pool, one_row, query_error, values, Db, Record};
use super::time::DbTime;
use super::{PlanBrief, PlanRow, StoreResult};

#[derive(sqlx::FromRow)]
struct PlanRecord {
    id: i64,
    branch: String,
    sha: String,
    summary: Json<Value>,
    body: Json<Value>,
    created_at: DbTime,
    outcome: Option<String>,
    error: Option<String>,
    finished_at: Option<DbTime>,
}

impl Record for PlanRecord {
    type Value = PlanRow;

    fn into_value(self) -> Result<PlanRow, String> {
        Ok(PlanRow {
            id: self.id,
            branch: self.branch,
            sha: self.sha,
            summary: self.summary.0,
            body: self.body.0,
            created_at: self.created_at.into(),
            outcome: self.outcome,
            error: self.error,
            finished_at: self.finished_at.map(Into::into),
        })
    }
}

pub(super) async fn insert(
    db: &Db,
    branch: &str,
    sha: &str,
    summary: &Value,
    body: &Value,
) -> StoreResult<i64> {
    let now = DbTime::now();
    on_pool!(db, |pool| {
        sqlx::query_scalar(
            "INSERT INTO plans (branch, sha, summary, body, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(branch)
        .bind(sha)
        .bind(Json(summary))
        .bind(Json(body))
        .bind(now)
        .fetch_one(pool)
        .await
    })
    .map_err(query_error("insert_plan"))
}

pub(super) async fn finish(
    db: &Db,
    id: i64,
    outcome: &str,
    error: Option<&str>,
) -> StoreResult<()> {
    let now = DbTime::now();
    let affected = on_pool!(db, |pool| {
        sqlx::query("UPDATE plans SET outcome = $1, error = $2, finished_at = $3 WHERE id = $4")
            .bind(outcome)
            .bind(error)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
    .map_err(query_error("finish_plan"))?;
    one_row("finish_plan", affected)
}

/// Newest first.
pub(super) async fn of_revision(db: &Db, branch: &str, sha: &str) -> StoreResult<Vec<PlanRow>> {
    let rows = on_pool!(db, |pool| {
        sqlx::query_as::<_, PlanRecord>(
            "SELECT id, branch, sha, summary, body, created_at, outcome, error, finished_at \
             FROM plans WHERE branch = $1 AND sha = $2 ORDER BY id DESC",
        )
        .bind(branch)
        .bind(sha)
        .fetch_all(pool)
        .await
    })
    .map_err(query_error("plans"))?;
    values("plans", rows)
}

/// The newest plan of each of `shas` that has one (the revisions list's plan column), in no
/// particular order. One statement, whatever the number of commits.
pub(super) async fn newest_of(
    db: &Db,
    branch: &str,
    shas: &[String],
) -> StoreResult<Vec<PlanBrief>> {
    if shas.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = (0..shas.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT sha, summary, outcome FROM plans WHERE id IN \
         (SELECT max(id) FROM plans WHERE branch = $1 AND sha IN ({}) GROUP BY sha)",
        list.join(", ")
    );
    let rows: Vec<(String, Json<Value>, Option<String>)> = on_pool!(db, |pool| {
        let mut query = sqlx::query_as(&sql).bind(branch);
        for sha in shas {
            query = query.bind(sha);
        }
        query.fetch_all(pool).await
    })
    .map_err(query_error("newest_plans"))?;
    Ok(rows
        .into_iter()
        .map(|(sha, summary, outcome)| PlanBrief {
            sha,
            summary: summary.0,
            outcome,
        })
        .collect())
}
