//! OpenLineage events as received, and the job → dataset edges they show.

use chrono::{DateTime, Timelike, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Database, Encode, QueryBuilder, Type};

use super::sql::{on_pool, query_error, values, Db, Record};
use super::time::DbTime;
use super::{LineageEventPage, NewLineageEvent, ObservedEdge, StoreResult};

#[derive(sqlx::FromRow)]
struct EdgeRecord {
    job_namespace: String,
    job_name: String,
    dataset_namespace: String,
    dataset_name: String,
    direction: String,
}

impl Record for EdgeRecord {
    type Value = ObservedEdge;

    fn into_value(self) -> Result<ObservedEdge, String> {
        Ok(ObservedEdge {
            job_namespace: self.job_namespace,
            job_name: self.job_name,
            dataset_namespace: self.dataset_namespace,
            dataset_name: self.dataset_name,
            direction: self.direction,
        })
    }
}

/// Records events and their edges in one transaction. Per event, `true` when it was new; a
/// repeat (same dedupe key) changes nothing.
pub(super) async fn record(db: &Db, events: &[NewLineageEvent]) -> StoreResult<Vec<bool>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let now = DbTime::now();
    let what = "record_lineage";
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await.map_err(query_error(what))?;
        let mut new = Vec::with_capacity(events.len());
        for e in events {
            let done = sqlx::query(
                "INSERT INTO lineage_events (dedupe_key, run_id, event_type, event_time, \
                 job_namespace, job_name, raw, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING",
            )
            .bind(&e.dedupe_key)
            .bind(&e.run_id)
            .bind(&e.event_type)
            .bind(DbTime::from(e.event_time))
            .bind(&e.job_namespace)
            .bind(&e.job_name)
            .bind(Json(&e.raw))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query_error(what))?;
            let inserted = done.rows_affected() == 1;
            new.push(inserted);
            if !inserted {
                continue;
            }
            for edge in &e.edges {
                sqlx::query(
                    "INSERT INTO lineage_edges (job_namespace, job_name, dataset_namespace, \
                     dataset_name, direction, source, first_seen_at, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $5, 'observed', $6, $6) \
                     ON CONFLICT (job_namespace, job_name, dataset_namespace, dataset_name, \
                     direction, source) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                )
                .bind(&edge.job_namespace)
                .bind(&edge.job_name)
                .bind(&edge.dataset_namespace)
                .bind(&edge.dataset_name)
                .bind(&edge.direction)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(query_error(what))?;
            }
        }
        tx.commit().await.map_err(query_error(what))?;
        Ok(new)
    })
}

/// Every observed edge, in the order first seen.
pub(super) async fn observed_edges(db: &Db) -> StoreResult<Vec<ObservedEdge>> {
    let rows = on_pool!(db, |pool| {
        sqlx::query_as::<_, EdgeRecord>(
            "SELECT job_namespace, job_name, dataset_namespace, dataset_name, direction \
             FROM lineage_edges WHERE source = 'observed' ORDER BY id",
        )
        .fetch_all(pool)
        .await
    })
    .map_err(query_error("observed_edges"))?;
    values("observed_edges", rows)
}

/// `(id, event as received)` of the events after id `after`, oldest first, at most `limit`.
pub(super) async fn events_after(
    db: &Db,
    after: i64,
    limit: u32,
) -> StoreResult<Vec<(i64, Value)>> {
    let rows: Vec<(i64, Json<Value>)> = on_pool!(db, |pool| {
        sqlx::query_as("SELECT id, raw FROM lineage_events WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
    })
    .map_err(query_error("lineage_events_after"))?;
    Ok(rows.into_iter().map(|(id, raw)| (id, raw.0)).collect())
}

pub(super) async fn event_count(db: &Db) -> StoreResult<u64> {
    let n: i64 = on_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM lineage_events")
            .fetch_one(pool)
            .await
    })
    .map_err(query_error("lineage_event_count"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A page of the `RunEvent`s (the rows with a run id) in the page's time window, and how many
/// the window holds. Sorted by event time, then id (the order of arrival), through the
/// `lineage_events_by_time` index.
pub(super) async fn run_events(db: &Db, page: &LineageEventPage) -> StoreResult<(Vec<Value>, u64)> {
    let direction = if page.newest_first { "DESC" } else { "ASC" };
    let rows: Vec<Json<Value>> = on_pool!(db, |pool| {
        let mut query = QueryBuilder::new("SELECT raw FROM lineage_events");
        push_window(&mut query, page);
        query
            .push(format!(
                " ORDER BY event_time {direction}, id {direction} LIMIT "
            ))
            .push_bind(i64::from(page.limit))
            .push(" OFFSET ")
            .push_bind(i64::try_from(page.offset).unwrap_or(i64::MAX));
        query.build_query_scalar().fetch_all(pool).await
    })
    .map_err(query_error("lineage_run_events"))?;
    let total: i64 = on_pool!(db, |pool| {
        let mut query = QueryBuilder::new("SELECT COUNT(*) FROM lineage_events");
        push_window(&mut query, page);
        query.build_query_scalar().fetch_one(pool).await
    })
    .map_err(query_error("lineage_run_events"))?;
    Ok((
        rows.into_iter().map(|raw| raw.0).collect(),
        u64::try_from(total).unwrap_or(0),
    ))
}

/// Run events by hour and type in `[from, to)`. The times are read through the
/// `lineage_events_by_time` index and counted here: both backends, one query.
pub(super) async fn event_hours(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> StoreResult<Vec<(DateTime<Utc>, String, u64)>> {
    let rows: Vec<(DbTime, Option<String>)> = on_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT event_time, event_type FROM lineage_events \
             WHERE run_id IS NOT NULL AND event_time >= $1 AND event_time < $2",
        )
        .bind(DbTime::from(from))
        .bind(DbTime::from(to))
        .fetch_all(pool)
        .await
    })
    .map_err(query_error("lineage_event_hours"))?;
    let mut counts: std::collections::BTreeMap<(DateTime<Utc>, String), u64> =
        std::collections::BTreeMap::new();
    for (time, kind) in rows {
        let Some(kind) = kind else { continue };
        let time = DateTime::<Utc>::from(time);
        let hour = time
            - chrono::Duration::seconds(i64::from(time.minute() * 60 + time.second()))
            - chrono::Duration::nanoseconds(i64::from(time.nanosecond()));
        *counts.entry((hour, kind)).or_default() += 1;
    }
    Ok(counts.into_iter().map(|((h, k), n)| (h, k, n)).collect())
}

/// The WHERE clause of a page: run events, and only the time bounds given (not
/// `$1 IS NULL OR ...`).
fn push_window<'a, DB>(query: &mut QueryBuilder<'a, DB>, page: &LineageEventPage)
where
    DB: Database,
    DbTime: Encode<'a, DB> + Type<DB>,
{
    query.push(" WHERE run_id IS NOT NULL");
    if let Some(after) = page.after {
        query
            .push(" AND event_time >= ")
            .push_bind(DbTime::from(after));
    }
    if let Some(before) = page.before {
        query
            .push(" AND event_time < ")
            .push_bind(DbTime::from(before));
    }
}
