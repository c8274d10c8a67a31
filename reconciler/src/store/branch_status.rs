//! Ready / Reconciling / Stalled, per tracked branch.

use serde_json::Value;
use sqlx::types::Json;

use super::sql::{on_pool, query_error, value, Db, Record};
use super::time::DbTime;
use super::{BranchStatus, PendingCheck, StoreResult, SyncState};

#[derive(sqlx::FromRow)]
struct BranchStatusRecord {
    branch: String,
    state: String,
    last_attempted: Option<String>,
    last_applied: Option<String>,
    message: Option<String>,
    diagnostics: Json<Value>,
    updated_at: DbTime,
}

impl Record for BranchStatusRecord {
    type Value = BranchStatus;

    fn into_value(self) -> Result<BranchStatus, String> {
        let state = SyncState::parse(&self.state)
            .ok_or_else(|| format!("unknown sync state `{}`", self.state))?;
        Ok(BranchStatus {
            branch: self.branch,
            state,
            last_attempted: self.last_attempted,
            last_applied: self.last_applied,
            message: self.message,
            diagnostics: self.diagnostics.0,
            updated_at: self.updated_at.into(),
        })
    }
}

pub(super) async fn get(db: &Db, branch: &str) -> StoreResult<Option<BranchStatus>> {
    let row = on_pool!(db, |pool| {
        sqlx::query_as::<_, BranchStatusRecord>(
            "SELECT branch, state, last_attempted, last_applied, message, diagnostics, updated_at \
             FROM branch_status WHERE branch = $1",
        )
        .bind(branch)
        .fetch_optional(pool)
        .await
    })
    .map_err(query_error("branch_status"))?;
    value("branch_status", row)
}

/// Replaces the branch's status, `updated_at` included (the caller's).
pub(super) async fn set(db: &Db, status: &BranchStatus) -> StoreResult<()> {
    on_pool!(db, |pool| {
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
        .bind(Json(&status.diagnostics))
        .bind(DbTime::from(status.updated_at))
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })
    .map_err(query_error("set_branch_status"))?;
    Ok(())
}

pub(super) async fn pending_check(db: &Db, branch: &str) -> StoreResult<Option<PendingCheck>> {
    let row: Option<(String, Json<Value>, DbTime)> = on_pool!(db, |pool| {
        sqlx::query_as("SELECT sha, plan, since FROM pending_checks WHERE branch = $1")
            .bind(branch)
            .fetch_optional(pool)
            .await
    })
    .map_err(query_error("pending_check"))?;
    Ok(row.map(|(sha, plan, since)| PendingCheck {
        sha,
        plan: plan.0,
        since: since.into(),
    }))
}

pub(super) async fn set_pending_check(
    db: &Db,
    branch: &str,
    check: Option<&PendingCheck>,
) -> StoreResult<()> {
    match check {
        Some(check) => on_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO pending_checks (branch, sha, plan, since) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (branch) DO UPDATE SET \
                 sha = excluded.sha, plan = excluded.plan, since = excluded.since",
            )
            .bind(branch)
            .bind(&check.sha)
            .bind(Json(&check.plan))
            .bind(DbTime::from(check.since))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        }),
        None => on_pool!(db, |pool| {
            sqlx::query("DELETE FROM pending_checks WHERE branch = $1")
                .bind(branch)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        }),
    }
    .map_err(query_error("set_pending_check"))?;
    Ok(())
}
