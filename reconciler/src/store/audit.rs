//! The append-only audit log (the migrations' triggers refuse UPDATE and DELETE).

use serde_json::Value;
use sqlx::types::Json;

use super::sql::{on_pool, query_error, value, values, Db, Record};
use super::time::DbTime;
use super::{AuditEntry, NewAudit, StoreResult};

const COLUMNS: &str = "id, at, actor, action, target, revision, details";

#[derive(sqlx::FromRow)]
struct AuditRecord {
    id: i64,
    at: DbTime,
    actor: String,
    action: String,
    target: String,
    revision: Option<String>,
    details: Json<Value>,
}

impl Record for AuditRecord {
    type Value = AuditEntry;

    fn into_value(self) -> Result<AuditEntry, String> {
        Ok(AuditEntry {
            id: self.id,
            at: self.at.into(),
            actor: self.actor,
            action: self.action,
            target: self.target,
            revision: self.revision,
            details: self.details.0,
        })
    }
}

/// Stamped now; returns the new id.
pub(super) async fn append(db: &Db, entry: &NewAudit) -> StoreResult<i64> {
    let now = DbTime::now();
    on_pool!(db, |pool| {
        sqlx::query_scalar(
            "INSERT INTO audit_log (at, actor, action, target, revision, details) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(now)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.revision)
        .bind(Json(&entry.details))
        .fetch_one(pool)
        .await
    })
    .map_err(query_error("append_audit"))
}

/// Newest first, with id < `before_id` when given.
pub(super) async fn newest_first(
    db: &Db,
    limit: u32,
    before_id: Option<i64>,
) -> StoreResult<Vec<AuditEntry>> {
    // Two statements rather than `$2 IS NULL OR ...`, so that each walks the primary key.
    let sql = match before_id {
        None => format!("SELECT {COLUMNS} FROM audit_log ORDER BY id DESC LIMIT $1"),
        Some(_) => {
            format!("SELECT {COLUMNS} FROM audit_log WHERE id < $2 ORDER BY id DESC LIMIT $1")
        }
    };
    let rows = on_pool!(db, |pool| {
        let query = sqlx::query_as::<_, AuditRecord>(&sql).bind(i64::from(limit));
        let query = match before_id {
            Some(before_id) => query.bind(before_id),
            None => query,
        };
        query.fetch_all(pool).await
    })
    .map_err(query_error("audit"))?;
    values("audit", rows)
}

/// Oldest first, with id > `after_id` when given: the order of an export.
pub(super) async fn oldest_first(
    db: &Db,
    limit: u32,
    after_id: Option<i64>,
) -> StoreResult<Vec<AuditEntry>> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2");
    let rows = on_pool!(db, |pool| {
        sqlx::query_as::<_, AuditRecord>(&sql)
            .bind(after_id.unwrap_or(i64::MIN))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
    })
    .map_err(query_error("audit_oldest_first"))?;
    values("audit_oldest_first", rows)
}

/// The newest entry with this action.
pub(super) async fn last(db: &Db, action: &str) -> StoreResult<Option<AuditEntry>> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1");
    let row = on_pool!(db, |pool| {
        sqlx::query_as::<_, AuditRecord>(&sql)
            .bind(action)
            .fetch_optional(pool)
            .await
    })
    .map_err(query_error("last_audit"))?;
    value("last_audit", row)
}
