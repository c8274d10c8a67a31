//! Work any replica was asked for and only the leader does (several `olo serve` on one
//! PostgreSQL store; on SQLite the table stays empty in practice).

use serde_json::Value;
use sqlx::types::Json;

use super::sql::{on_pool, query_error, Db};
use super::time::DbTime;
use super::StoreResult;

pub(super) async fn push(db: &Db, kind: &str, payload: &Value) -> StoreResult<()> {
    let now = DbTime::now();
    on_pool!(db, |pool| {
        sqlx::query("INSERT INTO work_requests (kind, payload, created_at) VALUES ($1, $2, $3)")
            .bind(kind)
            .bind(Json(payload))
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
    .map_err(query_error("push_work"))?;
    Ok(())
}

/// Takes (and deletes) up to `limit` pieces, oldest first, in one statement; concurrent takers
/// never get the same piece.
pub(super) async fn take(db: &Db, limit: u32) -> StoreResult<Vec<(String, Value)>> {
    let sql = format!(
        "DELETE FROM work_requests WHERE id IN \
         (SELECT id FROM work_requests ORDER BY id LIMIT $1{}) RETURNING id, kind, payload",
        db.dialect().skip_locked()
    );
    let mut work: Vec<(i64, String, Json<Value>)> = on_pool!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
    })
    .map_err(query_error("take_work"))?;
    // RETURNING promises no order.
    work.sort_by_key(|w| w.0);
    Ok(work.into_iter().map(|(_, k, p)| (k, p.0)).collect())
}
