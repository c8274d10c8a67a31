//! Backup and restore of the PostgreSQL store. The tables of olo's schema (`current_schema()`),
//! their columns, keys, foreign keys, id sequences (identity or serial columns) and triggers come
//! from the catalogue (`pg_class`, `pg_attribute`, `pg_index`, `pg_constraint`, `pg_trigger`);
//! rows go out through `row_to_json` and come back through `json_populate_recordset`, so
//! PostgreSQL itself converts every value from and to its column type.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::format::{canonical_time, parents_first, Backend, Column, Header, Kind, Mapping, Table};
use super::{
    newest, quoted, up_to, BackupError, BackupReader, BackupResult, BackupWriter, BATCH_BYTES,
    BATCH_ROWS,
};
use crate::store::postgres::{redacted, MIGRATOR};

pub(super) struct PostgresBackup {
    pool: PgPool,
}

fn query_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> BackupError {
    move |source| BackupError::Query { what, source }
}

/// olo's tables as the catalogue describes them.
struct Schema {
    /// The schema olo's tables are in.
    namespace: String,
    /// Parents first.
    tables: Vec<Table>,
    /// Primary key columns per table.
    keys: HashMap<String, Vec<String>>,
    /// Per table: its id column and that column's sequence (an identity column's, or a
    /// `serial` column's).
    sequences: BTreeMap<String, (String, String)>,
    /// Tables with an identity column (their ids are inserted with OVERRIDING SYSTEM VALUE).
    identities: BTreeSet<String>,
    /// Tables with triggers of their own (not those behind foreign keys).
    triggered: BTreeSet<String>,
}

impl Schema {
    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quoted(&self.namespace), quoted(table))
    }
}

async fn schema(conn: &mut PgConnection) -> BackupResult<Schema> {
    let what = "read the tables";
    let namespace: Option<String> = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(query_error(what))?;
    let namespace = namespace.ok_or(BackupError::NotAStore)?;
    let columns: Vec<(String, String, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                a.attidentity <> '', \
                pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) \
         FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
           AND c.relname <> '_sqlx_migrations' \
           AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
         ORDER BY c.relname, a.attnum",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(query_error(what))?;
    let mut by_table: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    let mut sequences = BTreeMap::new();
    let mut identities = BTreeSet::new();
    for (table, column, sql_type, identity, sequence) in columns {
        if let Some(sequence) = sequence {
            sequences.insert(table.clone(), (column.clone(), sequence));
        }
        if identity {
            identities.insert(table.clone());
        }
        by_table.entry(table).or_default().push(Column {
            name: column,
            sql_type,
        });
    }

    let key_columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text \
         FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey) \
         WHERE i.indisprimary AND n.nspname = current_schema() \
         ORDER BY c.relname, array_position(i.indkey::int2[], a.attnum)",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(query_error(what))?;
    let mut keys: HashMap<String, Vec<String>> = HashMap::new();
    for (table, column) in key_columns {
        keys.entry(table).or_default().push(column);
    }

    let references: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, p.relname::text \
         FROM pg_constraint k \
         JOIN pg_class c ON c.oid = k.conrelid \
         JOIN pg_class p ON p.oid = k.confrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE k.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(query_error(what))?;
    let mut parents: BTreeMap<String, BTreeSet<String>> = by_table
        .keys()
        .map(|t| (t.clone(), BTreeSet::new()))
        .collect();
    for (child, parent) in references {
        if let Some(set) = parents.get_mut(&child) {
            set.insert(parent);
        }
    }

    let triggered: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.relname::text \
         FROM pg_trigger t \
         JOIN pg_class c ON c.oid = t.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT t.tgisinternal AND n.nspname = current_schema() \
           AND c.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(query_error(what))?;

    let tables = parents_first(&parents)
        .into_iter()
        .map(|name| Table {
            columns: by_table.remove(&name).unwrap_or_default(),
            name,
        })
        .collect();
    Ok(Schema {
        namespace,
        tables,
        keys,
        sequences,
        identities,
        triggered: triggered.into_iter().collect(),
    })
}

async fn applied_migrations(conn: &mut PgConnection) -> BackupResult<Option<i64>> {
    let what = "read the schema version";
    let migrated: bool = sqlx::query_scalar(
        "SELECT to_regclass(format('%I.%I', current_schema(), '_sqlx_migrations')) IS NOT NULL",
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

impl PostgresBackup {
    pub(super) async fn open(url: &str) -> BackupResult<PostgresBackup> {
        let open_error = |source| BackupError::Open {
            url: redacted(url),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_error)?;
        Ok(PostgresBackup { pool })
    }
}

#[async_trait::async_trait]
impl super::Backup for PostgresBackup {
    fn backend(&self) -> Backend {
        Backend::Postgres
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
        // One snapshot of every table, however long the backup takes, and no write by mistake.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(query_error("begin"))?;
        // Every float with the digits that read back as the same value (PostgreSQL < 12).
        sqlx::query("SET LOCAL extra_float_digits = 3")
            .execute(&mut *tx)
            .await
            .map_err(query_error("begin"))?;
        let version = applied_migrations(&mut tx)
            .await?
            .ok_or(BackupError::NotAStore)?;
        let schema = schema(&mut tx).await?;
        let mut sequences = BTreeMap::new();
        for (table, (_, sequence)) in &schema.sequences {
            // The last id given out; a sequence not used yet (or set back by a restore of an
            // empty table) has not given out its last_value.
            let last: i64 = sqlx::query_scalar(&format!(
                "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {sequence}"
            ))
            .fetch_one(&mut *tx)
            .await
            .map_err(query_error("read the id sequences"))?;
            sequences.insert(table.clone(), last);
        }
        let header = Header::new(Backend::Postgres, version, schema.tables.clone(), sequences);
        out.header(&header).await?;

        for table in &schema.tables {
            let columns: Vec<String> = table.columns.iter().map(|c| quoted(&c.name)).collect();
            let order = match schema.keys.get(&table.name) {
                Some(key) => format!(
                    " ORDER BY {}",
                    key.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ")
                ),
                None => String::new(),
            };
            let timestamps: Vec<&str> = table
                .columns
                .iter()
                .filter(|c| Kind::of(&c.sql_type) == Kind::Timestamp)
                .map(|c| c.name.as_str())
                .collect();
            let sql = format!(
                "SELECT row_to_json(r)::text FROM (SELECT {} FROM {}{order}) r",
                columns.join(", "),
                schema.qualified(&table.name)
            );
            let mut rows = sqlx::query_scalar::<_, String>(&sql).fetch(&mut *tx);
            while let Some(text) = rows.try_next().await.map_err(query_error("read a row"))? {
                let mut row: Map<String, Value> = serde_json::from_str(&text).map_err(|e| {
                    BackupError::Mismatch(format!("a row of `{}` is not JSON: {e}", table.name))
                })?;
                for column in &timestamps {
                    if let Some(value) = row.get_mut(*column) {
                        if let Value::String(text) = value {
                            let canonical = canonical_time(text).ok_or_else(|| {
                                BackupError::Mismatch(format!(
                                    "`{}`.`{column}` holds `{text}`, not a point in time",
                                    table.name
                                ))
                            })?;
                            *value = Value::String(canonical);
                        }
                    }
                }
                out.row(&table.name, &row).await?;
            }
            out.end_table(&table.name);
        }
        tx.rollback()
            .await
            .map_err(query_error("end the snapshot"))?;
        Ok(())
    }

    async fn load(&self, input: &mut BackupReader<'_>, force: bool) -> BackupResult<()> {
        let mut tx = self.pool.begin().await.map_err(query_error("begin"))?;
        let schema = schema(&mut tx).await?;
        let mapping = Mapping::new(input.header(), Backend::Postgres, &schema.tables)
            .map_err(BackupError::Mismatch)?;
        if !schema.tables.is_empty() {
            // Nothing else reads or writes olo's tables until the restore commits.
            let all: Vec<String> = schema
                .tables
                .iter()
                .map(|t| schema.qualified(&t.name))
                .collect();
            sqlx::query(&format!(
                "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
                all.join(", ")
            ))
            .execute(&mut *tx)
            .await
            .map_err(query_error("lock the tables"))?;
        }

        let mut held = Vec::new();
        for table in &schema.tables {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {}",
                schema.qualified(&table.name)
            ))
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
        // loaded, and on again before the commit. Needs the tables' owner, as olo's migrations do.
        for table in &schema.triggered {
            sqlx::query(&format!(
                "ALTER TABLE {} DISABLE TRIGGER USER",
                schema.qualified(table)
            ))
            .execute(&mut *tx)
            .await
            .map_err(query_error("set the triggers aside"))?;
        }
        if !held.is_empty() {
            for table in schema.tables.iter().rev() {
                sqlx::query(&format!("DELETE FROM {}", schema.qualified(&table.name)))
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
                .map(|c| quoted(&c.name))
                .collect();
            let rows = rows
                .into_iter()
                .map(|row| mapping.row(&table, row).map(Value::Object))
                .collect::<Result<Vec<_>, _>>()
                .map_err(BackupError::Mismatch)?;
            let json = Value::Array(rows).to_string();
            let qualified = schema.qualified(&table);
            let overriding = if schema.identities.contains(&table) {
                " OVERRIDING SYSTEM VALUE"
            } else {
                ""
            };
            let columns = columns.join(", ");
            sqlx::query(&format!(
                "INSERT INTO {qualified} ({columns}){overriding} \
                 SELECT {columns} FROM json_populate_recordset(NULL::{qualified}, $1::json)"
            ))
            .bind(json)
            .execute(&mut *tx)
            .await
            .map_err(query_error("insert the rows"))?;
        }

        // Every id generator past the ids restored and the ids the backup's store gave out.
        for (table, (column, sequence)) in &schema.sequences {
            let highest: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT MAX({})::bigint FROM {}",
                quoted(column),
                schema.qualified(table)
            ))
            .fetch_one(&mut *tx)
            .await
            .map_err(query_error("set the id sequences"))?;
            let given = input.header().sequences.get(table).copied().unwrap_or(0);
            let last = highest.unwrap_or(0).max(given);
            let (value, is_called) = if last >= 1 { (last, true) } else { (1, false) };
            sqlx::query("SELECT setval($1::regclass, $2, $3)")
                .bind(sequence)
                .bind(value)
                .bind(is_called)
                .execute(&mut *tx)
                .await
                .map_err(query_error("set the id sequences"))?;
        }
        for table in &schema.triggered {
            sqlx::query(&format!(
                "ALTER TABLE {} ENABLE TRIGGER USER",
                schema.qualified(table)
            ))
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
