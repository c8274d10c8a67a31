//! Backup and restore of the SQLite store. The tables, their columns and foreign keys come from
//! SQLite's catalogue (`sqlite_schema`, `pragma_table_info`, `pragma_foreign_key_list`), so a
//! table a new migration adds is carried without a change here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::{Map, Number, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, TypeInfo, ValueRef};

use super::format::{parents_first, Backend, Column, Header, Mapping, Table};
use super::{
    newest, quoted, up_to, BackupError, BackupReader, BackupResult, BackupWriter, BATCH_BYTES,
    BATCH_ROWS,
};
use crate::store::sqlite::MIGRATOR;

/// SQLite refuses a statement with more bound values than this (SQLITE_MAX_VARIABLE_NUMBER).
const MAX_BINDS: usize = 32_000;

pub(super) struct SqliteBackup {
    /// One connection: a backup is one read transaction, a restore one write transaction.
    pool: SqlitePool,
}

fn query_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> BackupError {
    move |source| BackupError::Query { what, source }
}

/// olo's tables as the catalogue describes them.
struct Schema {
    /// Parents first.
    tables: Vec<Table>,
    /// Primary key columns per table (empty: ordered by rowid).
    keys: HashMap<String, Vec<String>>,
    /// Tables with an AUTOINCREMENT id (a row in `sqlite_sequence`).
    autoincrement: BTreeSet<String>,
    /// Triggers on olo's tables: name and the statement that creates it.
    triggers: Vec<(String, String)>,
}

async fn schema(conn: &mut SqliteConnection) -> BackupResult<Schema> {
    let what = "read the tables";
    let names: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(query_error(what))?;
    let mut columns = HashMap::new();
    let mut parents = BTreeMap::new();
    let mut keys = HashMap::new();
    let mut autoincrement = BTreeSet::new();
    for (name, sql) in &names {
        let info: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid")
                .bind(name)
                .fetch_all(&mut *conn)
                .await
                .map_err(query_error(what))?;
        let mut key: Vec<(i64, String)> = info
            .iter()
            .filter(|(_, _, pk)| *pk > 0)
            .map(|(column, _, pk)| (*pk, column.clone()))
            .collect();
        key.sort();
        keys.insert(name.clone(), key.into_iter().map(|(_, c)| c).collect());
        columns.insert(
            name.clone(),
            info.into_iter()
                .map(|(name, sql_type, _)| Column { name, sql_type })
                .collect::<Vec<_>>(),
        );
        let referenced: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)")
                .bind(name)
                .fetch_all(&mut *conn)
                .await
                .map_err(query_error(what))?;
        parents.insert(name.clone(), referenced.into_iter().collect());
        if sql
            .as_deref()
            .is_some_and(|s| s.to_ascii_uppercase().contains("AUTOINCREMENT"))
        {
            autoincrement.insert(name.clone());
        }
    }
    let tables = parents_first(&parents)
        .into_iter()
        .map(|name| Table {
            columns: columns.remove(&name).unwrap_or_default(),
            name,
        })
        .collect();
    let olo_tables: BTreeSet<&String> = names.iter().map(|(n, _)| n).collect();
    let triggers: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(query_error(what))?;
    Ok(Schema {
        tables,
        keys,
        autoincrement,
        triggers: triggers
            .into_iter()
            .filter(|(_, table, _)| olo_tables.contains(table))
            .map(|(name, _, sql)| (name, sql))
            .collect(),
    })
}

async fn applied_migrations(conn: &mut SqliteConnection) -> BackupResult<Option<i64>> {
    let what = "read the schema version";
    let migrated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema \
         WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(query_error(what))?;
    if !migrated {
        return Ok(None);
    }
    let version: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await
            .map_err(query_error(what))?;
    Ok(Some(version.unwrap_or(0)))
}

/// One stored value as JSON: by what the value is (SQLite's storage class), not by what the
/// column declares.
fn value(row: &SqliteRow, index: usize, table: &str, column: &str) -> BackupResult<Value> {
    let what = "read a row";
    let raw = row.try_get_raw(index).map_err(query_error(what))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage = raw.type_info().name().to_string();
    Ok(match storage.as_str() {
        "INTEGER" => Value::from(row.try_get::<i64, _>(index).map_err(query_error(what))?),
        "REAL" => {
            let x: f64 = row.try_get(index).map_err(query_error(what))?;
            Value::Number(Number::from_f64(x).ok_or_else(|| {
                BackupError::Mismatch(format!("`{table}`.`{column}` holds {x}, which JSON cannot"))
            })?)
        }
        "TEXT" => Value::from(row.try_get::<String, _>(index).map_err(query_error(what))?),
        other => {
            return Err(BackupError::Mismatch(format!(
                "`{table}`.`{column}` holds a {other} value, which backups do not carry"
            )))
        }
    })
}

impl SqliteBackup {
    pub(super) async fn open(url: &str, create: bool) -> BackupResult<SqliteBackup> {
        let open_error = |source| BackupError::Open {
            url: url.to_string(),
            source,
        };
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(open_error)?
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        if create {
            // As the store itself opens a file (store/sqlite.rs).
            options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            if let Some(folder) = options.get_filename().parent() {
                if !folder.as_os_str().is_empty() {
                    tokio::fs::create_dir_all(folder)
                        .await
                        .map_err(|e| open_error(sqlx::Error::Io(e)))?;
                }
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_error)?;
        Ok(SqliteBackup { pool })
    }
}

#[async_trait::async_trait]
impl super::Backup for SqliteBackup {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn known_migrations(&self) -> i64 {
        newest(&MIGRATOR)
    }

    async fn applied_migrations(&self) -> BackupResult<Option<i64>> {
        let mut conn = self.pool.acquire().await.map_err(query_error("connect"))?;
        applied_migrations(&mut conn).await
    }

    async fn migrate(&self, version: Option<i64>) -> BackupResult<()> {
        match version {
            None => MIGRATOR.run(&self.pool).await,
            Some(version) => up_to(&MIGRATOR, version).run(&self.pool).await,
        }
        .map_err(BackupError::Migrate)
    }

    async fn write_snapshot(&self, out: &mut BackupWriter<'_>) -> BackupResult<()> {
        // A read transaction: in WAL mode it reads one snapshot from its first read to its end,
        // while olo goes on writing.
        let mut tx = self.pool.begin().await.map_err(query_error("begin"))?;
        let version = applied_migrations(&mut tx)
            .await?
            .ok_or(BackupError::NotAStore)?;
        let schema = schema(&mut tx).await?;
        let sequences: Vec<(String, i64)> = sqlx::query_as("SELECT name, seq FROM sqlite_sequence")
            .fetch_all(&mut *tx)
            .await
            .map_err(query_error("read the id sequences"))?;
        let sequences: BTreeMap<String, i64> = sequences
            .into_iter()
            .filter(|(table, _)| schema.autoincrement.contains(table))
            .collect();
        let header = Header::new(Backend::Sqlite, version, schema.tables.clone(), sequences);
        out.header(&header).await?;
        for table in &schema.tables {
            let columns: Vec<String> = table.columns.iter().map(|c| quoted(&c.name)).collect();
            let key = match schema.keys.get(&table.name) {
                Some(key) if !key.is_empty() => {
                    key.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ")
                }
                _ => "rowid".to_string(),
            };
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {key}",
                columns.join(", "),
                quoted(&table.name)
            );
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(query_error("read a row"))? {
                let mut map = Map::with_capacity(table.columns.len());
                for (i, column) in table.columns.iter().enumerate() {
                    map.insert(
                        column.name.clone(),
                        value(&row, i, &table.name, &column.name)?,
                    );
                }
                out.row(&table.name, &map).await?;
            }
            out.end_table(&table.name);
        }
        tx.rollback()
            .await
            .map_err(query_error("end the snapshot"))?;
        Ok(())
    }

    async fn load(&self, input: &mut BackupReader<'_>, force: bool) -> BackupResult<()> {
        // IMMEDIATE: the write lock from the start, so that nothing writes between the
        // emptiness check and the restore.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query_error("begin"))?;
        // Foreign keys are checked at commit: rows may come in any order.
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *tx)
            .await
            .map_err(query_error("defer foreign keys"))?;
        let schema = schema(&mut tx).await?;
        let mapping = Mapping::new(input.header(), Backend::Sqlite, &schema.tables)
            .map_err(BackupError::Mismatch)?;

        let mut held = Vec::new();
        for table in &schema.tables {
            let n: i64 =
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quoted(&table.name)))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(query_error("count the rows"))?;
            if n > 0 {
                held.push((table.name.clone(), n as u64));
            }
        }
        if !held.is_empty() && !force {
            return Err(BackupError::NotEmpty { rows: held });
        }

        // Triggers (the audit log's append-only guard) are off while the store is emptied and
        // loaded, and back before the commit.
        for (name, _) in &schema.triggers {
            sqlx::query(&format!("DROP TRIGGER {}", quoted(name)))
                .execute(&mut *tx)
                .await
                .map_err(query_error("set the triggers aside"))?;
        }
        if !held.is_empty() {
            for table in schema.tables.iter().rev() {
                sqlx::query(&format!("DELETE FROM {}", quoted(&table.name)))
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("empty the store"))?;
                sqlx::query("DELETE FROM sqlite_sequence WHERE name = ?1")
                    .bind(&table.name)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("empty the store"))?;
            }
        }

        while let Some((table, rows)) = input.next_batch(BATCH_ROWS, BATCH_BYTES).await? {
            let columns: Vec<String> = input
                .header()
                .table(&table)
                .expect("the decoder checked the table")
                .columns
                .iter()
                .map(|c| c.name.clone())
                .collect();
            let rows = rows
                .into_iter()
                .map(|row| mapping.row(&table, row))
                .collect::<Result<Vec<_>, _>>()
                .map_err(BackupError::Mismatch)?;
            insert(&mut tx, &table, &columns, &rows).await?;
        }

        for (table, seq) in &input.header().sequences {
            if !schema.autoincrement.contains(table) {
                continue;
            }
            sqlx::query(
                "INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2 \
                 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)",
            )
            .bind(table)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(query_error("set the id sequences"))?;
            sqlx::query("UPDATE sqlite_sequence SET seq = MAX(seq, ?2) WHERE name = ?1")
                .bind(table)
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(query_error("set the id sequences"))?;
        }
        for (_, sql) in &schema.triggers {
            sqlx::query(sql)
                .execute(&mut *tx)
                .await
                .map_err(query_error("restore the triggers"))?;
        }
        tx.commit()
            .await
            .map_err(query_error("commit the restore"))?;
        Ok(())
    }
}

async fn insert(
    conn: &mut SqliteConnection,
    table: &str,
    columns: &[String],
    rows: &[Map<String, Value>],
) -> BackupResult<()> {
    let names: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
    let per_statement = (MAX_BINDS / columns.len().max(1)).max(1);
    for chunk in rows.chunks(per_statement) {
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO {} ({}) ",
            quoted(table),
            names.join(", ")
        ));
        query.push_values(chunk, |mut values, row| {
            for column in columns {
                match row.get(column).unwrap_or(&Value::Null) {
                    Value::Null => values.push_bind(None::<String>),
                    Value::Bool(b) => values.push_bind(i64::from(*b)),
                    Value::Number(n) => match n.as_i64() {
                        Some(i) => values.push_bind(i),
                        None => values.push_bind(n.as_f64()),
                    },
                    Value::String(s) => values.push_bind(s.clone()),
                    other => values.push_bind(other.to_string()),
                };
            }
        });
        query
            .build()
            .execute(&mut *conn)
            .await
            .map_err(query_error("insert the rows"))?;
    }
    Ok(())
}
