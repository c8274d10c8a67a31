//! The inventory: resources olo created and owns in a target (only these are ever pruned).
//!
//! The many-at-once statements differ: PostgreSQL takes columns as arrays (`UNNEST`, `ANY`), one
//! statement however many items; SQLite takes lists of placeholders, a thousand rows a statement.

use sqlx::QueryBuilder;

use super::sql::{on_pool, query_error, values, Db, Record};
use super::time::DbTime;
use super::{InventoryItem, StoreResult};

/// Rows per multi-row statement on SQLite (5 parameters each, far below its 32,766 limit).
const SQLITE_BATCH: usize = 1000;

const INSERT: &str = "INSERT INTO inventory (target, name, hash, revision, updated_at) ";

const ON_CONFLICT: &str = " ON CONFLICT (target, name) DO UPDATE SET \
     hash = excluded.hash, revision = excluded.revision, updated_at = excluded.updated_at";

#[derive(sqlx::FromRow)]
struct InventoryRecord {
    target: String,
    name: String,
    hash: String,
    revision: String,
}

impl Record for InventoryRecord {
    type Value = InventoryItem;

    fn into_value(self) -> Result<InventoryItem, String> {
        Ok(InventoryItem {
            target: self.target,
            name: self.name,
            hash: self.hash,
            revision: self.revision,
        })
    }
}

/// Sorted by name, byte order (PostgreSQL's columns are COLLATE "C").
pub(super) async fn of_target(db: &Db, target: &str) -> StoreResult<Vec<InventoryItem>> {
    let rows = on_pool!(db, |pool| {
        sqlx::query_as::<_, InventoryRecord>(
            "SELECT target, name, hash, revision FROM inventory WHERE target = $1 ORDER BY name",
        )
        .bind(target)
        .fetch_all(pool)
        .await
    })
    .map_err(query_error("inventory"))?;
    values("inventory", rows)
}

pub(super) async fn upsert(db: &Db, item: &InventoryItem) -> StoreResult<()> {
    let sql = format!("{INSERT}VALUES ($1, $2, $3, $4, $5){ON_CONFLICT}");
    let now = DbTime::now();
    on_pool!(db, |pool| {
        sqlx::query(&sql)
            .bind(&item.target)
            .bind(&item.name)
            .bind(&item.hash)
            .bind(&item.revision)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
    .map_err(query_error("upsert_inventory"))?;
    Ok(())
}

pub(super) async fn remove(db: &Db, target: &str, name: &str) -> StoreResult<()> {
    on_pool!(db, |pool| {
        sqlx::query("DELETE FROM inventory WHERE target = $1 AND name = $2")
            .bind(target)
            .bind(name)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
    .map_err(query_error("remove_inventory"))?;
    Ok(())
}

/// The items of one `upsert_many` call, the last of each (target, name) only: what upserting
/// them one by one would leave, in a form one multi-row statement accepts (PostgreSQL refuses to
/// update a row twice in one statement).
fn last_of_each(items: &[InventoryItem]) -> Vec<&InventoryItem> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut last: Vec<&InventoryItem> = items
        .iter()
        .rev()
        .filter(|i| seen.insert((i.target.as_str(), i.name.as_str())))
        .collect();
    last.reverse();
    last
}

/// All the items in one transaction.
pub(super) async fn upsert_many(db: &Db, items: &[InventoryItem]) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let items = last_of_each(items);
    let now = DbTime::now();
    let what = "upsert_inventory_many";
    match db {
        Db::Postgres(pool) => {
            // One statement, one round trip, however many items: columns as arrays.
            let column = |f: fn(&InventoryItem) -> &str| -> Vec<&str> {
                items.iter().map(|i| f(i)).collect()
            };
            sqlx::query(&format!(
                "{INSERT}SELECT target, name, hash, revision, $5 \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
                      AS item (target, name, hash, revision){ON_CONFLICT}"
            ))
            .bind(column(|i| &i.target))
            .bind(column(|i| &i.name))
            .bind(column(|i| &i.hash))
            .bind(column(|i| &i.revision))
            .bind(now)
            .execute(pool)
            .await
            .map_err(query_error(what))?;
        }
        Db::Sqlite(pool) => {
            let mut tx = pool.begin().await.map_err(query_error(what))?;
            // A thousand rows per statement: a cold apply claims 10,000 files in ten statements.
            for chunk in items.chunks(SQLITE_BATCH) {
                let mut query = QueryBuilder::new(INSERT);
                query.push_values(chunk, |mut row, item| {
                    row.push_bind(&item.target)
                        .push_bind(&item.name)
                        .push_bind(&item.hash)
                        .push_bind(&item.revision)
                        .push_bind(now);
                });
                query.push(ON_CONFLICT);
                query
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error(what))?;
            }
            tx.commit().await.map_err(query_error(what))?;
        }
    }
    Ok(())
}

/// All the names in one transaction.
pub(super) async fn remove_many(db: &Db, target: &str, names: &[String]) -> StoreResult<()> {
    if names.is_empty() {
        return Ok(());
    }
    let what = "remove_inventory_many";
    match db {
        Db::Postgres(pool) => {
            sqlx::query("DELETE FROM inventory WHERE target = $1 AND name = ANY($2::text[])")
                .bind(target)
                .bind(names)
                .execute(pool)
                .await
                .map_err(query_error(what))?;
        }
        Db::Sqlite(pool) => {
            let mut tx = pool.begin().await.map_err(query_error(what))?;
            for chunk in names.chunks(SQLITE_BATCH) {
                let mut query = QueryBuilder::new("DELETE FROM inventory WHERE target = ");
                query.push_bind(target).push(" AND name IN (");
                let mut list = query.separated(", ");
                for name in chunk {
                    list.push_bind(name);
                }
                list.push_unseparated(")");
                query
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error(what))?;
            }
            tx.commit().await.map_err(query_error(what))?;
        }
    }
    Ok(())
}
