//! Webhook deliveries already accepted: a redelivery is answered without enqueueing again.

use super::sql::{on_pool, query_error, Db};
use super::time::DbTime;
use super::StoreResult;

/// `true` when the delivery id is new, `false` for a repeat (race-safe: one statement).
pub(super) async fn record(db: &Db, delivery_id: &str, event: &str) -> StoreResult<bool> {
    let now = DbTime::now();
    let affected = on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO webhook_deliveries (delivery_id, event, received_at) \
             VALUES ($1, $2, $3) ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(event)
        .bind(now)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })
    .map_err(query_error("record_delivery"))?;
    Ok(affected == 1)
}
