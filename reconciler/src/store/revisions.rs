//! Revisions: the commits olo has seen on tracked branches. Every column of the `revisions`
//! table is named here, in `COLUMNS` (read) and `record` (write), and decoded by `RevisionRecord`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use super::sql::{on_pool, one_row, query_error, value, values, Db, Record};
use super::time::DbTime;
use super::{Person, Revision, RevisionRow, RevisionStatus, StoreResult};

const COLUMNS: &str = "branch, sha, author_name, author_email, author_time, \
     committer_name, committer_email, committer_time, message, signed, status, diagnostics, seen_at, \
     signature";

#[derive(sqlx::FromRow)]
struct RevisionRecord {
    branch: String,
    sha: String,
    author_name: String,
    author_email: String,
    author_time: DbTime,
    committer_name: String,
    committer_email: String,
    committer_time: DbTime,
    message: String,
    signed: bool,
    status: String,
    diagnostics: Json<Value>,
    seen_at: DbTime,
    signature: Option<Json<crate::signature::Verification>>,
}

impl Record for RevisionRecord {
    type Value = RevisionRow;

    fn into_value(self) -> Result<RevisionRow, String> {
        let status = RevisionStatus::parse(&self.status)
            .ok_or_else(|| format!("unknown revision status `{}`", self.status))?;
        Ok(RevisionRow {
            revision: Revision {
                sha: self.sha,
                branch: self.branch,
                author: Person {
                    name: self.author_name,
                    email: self.author_email,
                    time: self.author_time.into(),
                },
                committer: Person {
                    name: self.committer_name,
                    email: self.committer_email,
                    time: self.committer_time.into(),
                },
                message: self.message,
                signed: self.signed,
                signature: self.signature.map(|j| j.0),
            },
            status,
            diagnostics: self.diagnostics.0,
            seen_at: self.seen_at.into(),
        })
    }
}

/// Idempotent on (branch, sha): a second call keeps the first `seen_at` and status, and updates
/// only the signature check (it follows the trusted keys).
pub(super) async fn record(db: &Db, revision: &Revision) -> StoreResult<()> {
    let seen_at = DbTime::now();
    on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO revisions (branch, sha, author_name, author_email, author_time, \
             committer_name, committer_email, committer_time, message, signed, seen_at, signature) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (branch, sha) DO UPDATE SET signature = excluded.signature",
        )
        .bind(&revision.branch)
        .bind(&revision.sha)
        .bind(&revision.author.name)
        .bind(&revision.author.email)
        .bind(DbTime::from(revision.author.time))
        .bind(&revision.committer.name)
        .bind(&revision.committer.email)
        .bind(DbTime::from(revision.committer.time))
        .bind(&revision.message)
        .bind(revision.signed)
        .bind(seen_at)
        .bind(revision.signature.as_ref().map(Json))
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })
    .map_err(query_error("record_revision"))?;
    Ok(())
}

pub(super) async fn set_status(
    db: &Db,
    branch: &str,
    sha: &str,
    status: RevisionStatus,
    diagnostics: &Value,
) -> StoreResult<()> {
    let affected = on_pool!(db, |pool| {
        sqlx::query(
            "UPDATE revisions SET status = $1, diagnostics = $2 WHERE branch = $3 AND sha = $4",
        )
        .bind(status.as_str())
        .bind(Json(diagnostics))
        .bind(branch)
        .bind(sha)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })
    .map_err(query_error("set_revision_status"))?;
    one_row("set_revision_status", affected)
}

pub(super) async fn get(db: &Db, branch: &str, sha: &str) -> StoreResult<Option<RevisionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM revisions WHERE branch = $1 AND sha = $2");
    let row = on_pool!(db, |pool| {
        sqlx::query_as::<_, RevisionRecord>(&sql)
            .bind(branch)
            .bind(sha)
            .fetch_optional(pool)
            .await
    })
    .map_err(query_error("revision"))?;
    value("revision", row)
}

/// Newest first (`seen_at`, then insertion order), older than `before` when given.
pub(super) async fn newest_first(
    db: &Db,
    branch: &str,
    limit: u32,
    before: Option<DateTime<Utc>>,
) -> StoreResult<Vec<RevisionRow>> {
    // Two statements rather than `$2 IS NULL OR ...`, so that each walks the index.
    let (sql, before) = match before {
        None => (
            format!(
                "SELECT {COLUMNS} FROM revisions WHERE branch = $1 \
                 ORDER BY seen_at DESC, id DESC LIMIT $2"
            ),
            None,
        ),
        Some(before) => (
            format!(
                "SELECT {COLUMNS} FROM revisions WHERE branch = $1 AND seen_at < $3 \
                 ORDER BY seen_at DESC, id DESC LIMIT $2"
            ),
            Some(DbTime::from(before)),
        ),
    };
    let rows = on_pool!(db, |pool| {
        let query = sqlx::query_as::<_, RevisionRecord>(&sql)
            .bind(branch)
            .bind(i64::from(limit));
        let query = match before {
            Some(before) => query.bind(before),
            None => query,
        };
        query.fetch_all(pool).await
    })
    .map_err(query_error("revisions"))?;
    values("revisions", rows)
}
