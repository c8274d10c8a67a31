//! Webhook deliveries already accepted: a redelivery is answered without enqueueing again.
//! GitHub redelivers (by hand or by API) deliveries of the past 3 days, so ids older than
//! [`KEEP_DELIVERIES`] are pruned.

use serde_json::Value;
use sqlx::types::Json;

use super::sql::{on_pool, query_error, Db};
use super::time::DbTime;
use super::StoreResult;

/// How long delivery ids are kept: beyond GitHub's 3-day redelivery window, with a margin.
pub const KEEP_DELIVERIES: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// A delivery id, once: a repeat inserts nothing (race-safe: the insert decides).
const INSERT_DELIVERY: &str = "INSERT INTO webhook_deliveries (delivery_id, event, received_at) \
     VALUES ($1, $2, $3) ON CONFLICT (delivery_id) DO NOTHING";

/// `true` when the delivery id is new, `false` for a repeat (race-safe: the insert decides).
/// A new delivery's `work` (kind, payload) goes on the work queue in the same transaction, so
/// a delivery is never recorded without its work, nor its work queued twice.
pub(super) async fn record(
    db: &Db,
    delivery_id: &str,
    event: &str,
    work: Option<(&str, &Value)>,
) -> StoreResult<bool> {
    let now = DbTime::now();
    let what = "record_delivery";
    let Some((kind, payload)) = work else {
        // One statement, no transaction: on SQLite a transaction held across round trips makes
        // concurrent deliveries wait in SQLite's busy handler (sleeps of milliseconds): 32
        // connections of deliveries ran at 3,284/s that way, 5,996/s like this (BENCHMARKS.md).
        let affected = on_pool!(db, |pool| {
            sqlx::query(INSERT_DELIVERY)
                .bind(delivery_id)
                .bind(event)
                .bind(now)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(query_error(what))?;
        return Ok(affected == 1);
    };
    // With work (replicas, so PostgreSQL in practice): both rows or neither.
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await.map_err(query_error(what))?;
        let affected = sqlx::query(INSERT_DELIVERY)
            .bind(delivery_id)
            .bind(event)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query_error(what))?
            .rows_affected();
        if affected == 1 {
            sqlx::query(
                "INSERT INTO work_requests (kind, payload, created_at) VALUES ($1, $2, $3)",
            )
            .bind(kind)
            .bind(Json(payload))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query_error(what))?;
        }
        tx.commit().await.map_err(query_error(what))?;
        Ok(affected == 1)
    })
}

/// Deletes the delivery ids received before `before`; returns how many.
pub(super) async fn prune(db: &Db, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
    let before = DbTime::from(before);
    on_pool!(db, |pool| {
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(before)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
    .map_err(query_error("prune_deliveries"))
}

/// The store's periodic upkeep while `olo serve` runs: every hour, webhook deliveries older
/// than [`KEEP_DELIVERIES`] are forgotten (their ids only de-duplicate GitHub's redeliveries).
pub async fn housekeeping(store: std::sync::Arc<dyn super::Store>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let before = chrono::Utc::now()
            - chrono::Duration::from_std(KEEP_DELIVERIES).expect("a week fits chrono");
        match store.prune_deliveries(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deliveries = n,
                "forgot {n} webhook deliveries older than 7 days"
            ),
            Err(e) => tracing::warn!(error = %e, "could not prune old webhook deliveries"),
        }
    }
}
