//! The SQL catalog: Iceberg's JDBC-catalog tables (`iceberg_namespace_properties`,
//! `iceberg_tables`) in SQLite (the embedded default) or PostgreSQL, written the way Java's
//! `JdbcCatalog` and PyIceberg's `SqlCatalog` read them: a namespace is the dotted string of its
//! levels (`sales.bronze`) and exists while it has a property row (or a table).
//!
//! Written with sqlx rather than `iceberg-catalog-sql`, which would bring the whole `iceberg`
//! crate (Arrow, Parquet) for six statements.

use std::collections::BTreeMap;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use std::sync::Arc;

use serde_json::Value;

use super::tables::{self, TableId};
use super::{IcebergCatalog, LakeError, LakeResult, NamespaceId, Warehouse};

/// The tables, as Java's JdbcCatalog creates them (a database created by Java or PyIceberg
/// already has them; `IF NOT EXISTS` leaves those alone).
const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS iceberg_tables (\
       catalog_name VARCHAR(255) NOT NULL, \
       table_namespace VARCHAR(255) NOT NULL, \
       table_name VARCHAR(255) NOT NULL, \
       metadata_location VARCHAR(1000), \
       previous_metadata_location VARCHAR(1000), \
       iceberg_type VARCHAR(5), \
       PRIMARY KEY (catalog_name, table_namespace, table_name))",
    "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (\
       catalog_name VARCHAR(255) NOT NULL, \
       namespace VARCHAR(255) NOT NULL, \
       property_key VARCHAR(255) NOT NULL, \
       property_value VARCHAR(1000), \
       PRIMARY KEY (catalog_name, namespace, property_key))",
];

pub struct SqlCatalog {
    pool: AnyPool,
    /// For messages: the database without credentials.
    shown: String,
    /// Where tables' metadata files are read and written (the catalog only points at them).
    files: Arc<dyn Warehouse>,
}

/// `postgres://user:pw@host/db` -> `postgres://host/db`.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.has_host() => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl SqlCatalog {
    /// Opens (and creates, for SQLite) the database and its tables.
    pub async fn open(database_url: &str, files: Arc<dyn Warehouse>) -> LakeResult<SqlCatalog> {
        sqlx::any::install_default_drivers();
        let shown = without_credentials(database_url);
        let sqlite = database_url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // Each namespace write is a transaction: without WAL and
                        // synchronous=NORMAL every one waits for an fsync (a cold apply of 400
                        // namespaces took seconds). Readers (PyIceberg, Java) read WAL databases.
                        use sqlx::Executor as _;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect(database_url)
            .await
            .map_err(|e| LakeError::Unavailable {
                system: format!("the SQL catalog in {shown}"),
                message: e.to_string(),
            })?;
        let catalog = SqlCatalog { pool, shown, files };
        for ddl in SCHEMA {
            sqlx::query(ddl)
                .execute(&catalog.pool)
                .await
                .map_err(|e| catalog.err("creating the catalog tables", e))?;
        }
        Ok(catalog)
    }

    fn err(&self, what: &str, e: sqlx::Error) -> LakeError {
        let system = format!("the SQL catalog in {}", self.shown);
        match e {
            sqlx::Error::Database(db) => LakeError::Refused {
                system,
                what: what.to_string(),
                message: db.message().to_string(),
            },
            other => LakeError::Unavailable {
                system,
                message: format!("{what}: {other}"),
            },
        }
    }

    async fn properties(&self, id: &NamespaceId) -> LakeResult<BTreeMap<String, String>> {
        let rows = sqlx::query(
            "SELECT property_key, property_value FROM iceberg_namespace_properties \
             WHERE catalog_name = $1 AND namespace = $2",
        )
        .bind(&id.catalog)
        .bind(id.dotted())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(&format!("loading namespace {id}"), e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let key: String = row.try_get(0).map_err(|e| self.err("reading", e))?;
            let value: Option<String> = row.try_get(1).map_err(|e| self.err("reading", e))?;
            out.insert(key, value.unwrap_or_default());
        }
        Ok(out)
    }

    async fn upsert(
        &self,
        id: &NamespaceId,
        removals: &[String],
        updates: &BTreeMap<String, String>,
        what: &str,
    ) -> LakeResult<()> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(what, e))?;
        for key in removals {
            sqlx::query(
                "DELETE FROM iceberg_namespace_properties \
                 WHERE catalog_name = $1 AND namespace = $2 AND property_key = $3",
            )
            .bind(&id.catalog)
            .bind(id.dotted())
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(what, e))?;
        }
        for (key, value) in updates {
            sqlx::query(
                "INSERT INTO iceberg_namespace_properties \
                   (catalog_name, namespace, property_key, property_value) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (catalog_name, namespace, property_key) \
                 DO UPDATE SET property_value = excluded.property_value",
            )
            .bind(&id.catalog)
            .bind(id.dotted())
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(what, e))?;
        }
        tx.commit().await.map_err(|e| self.err(what, e))
    }
}

impl SqlCatalog {
    async fn metadata_location(&self, id: &TableId) -> LakeResult<Option<String>> {
        let row: Option<Option<String>> = sqlx::query_scalar(
            "SELECT metadata_location FROM iceberg_tables \
             WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3",
        )
        .bind(&id.namespace.catalog)
        .bind(id.namespace.dotted())
        .bind(&id.name)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(&format!("loading table {id}"), e))?;
        Ok(row.flatten())
    }

    async fn read_metadata(&self, id: &TableId, location: &str) -> LakeResult<Value> {
        let bytes = self
            .files
            .read(location)
            .await?
            .ok_or_else(|| LakeError::Refused {
                system: self.describe(),
                what: format!("loading table {id}"),
                message: format!("its metadata file {location} is missing"),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| LakeError::Refused {
            system: self.describe(),
            what: format!("loading table {id}"),
            message: format!("its metadata file {location} is not JSON: {e}"),
        })
    }

    async fn write_metadata(&self, file: &str, metadata: &Value) -> LakeResult<()> {
        let bytes = serde_json::to_vec_pretty(metadata).unwrap_or_default();
        self.files.write(file, &bytes).await
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `…/metadata/00003-<uuid>.metadata.json` -> 4.
fn next_version(file: &str) -> u64 {
    file.rsplit('/')
        .next()
        .and_then(|name| name.split('-').next())
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(1, |n| n + 1)
}

#[async_trait::async_trait]
impl IcebergCatalog for SqlCatalog {
    fn describe(&self) -> String {
        format!("the SQL catalog in {}", self.shown)
    }

    #[tracing::instrument(name = "iceberg_sql", skip_all, fields(op = "load_namespace", namespace = %id))]
    async fn load_namespace(
        &self,
        id: &NamespaceId,
    ) -> LakeResult<Option<BTreeMap<String, String>>> {
        let props = self.properties(id).await?;
        if !props.is_empty() {
            return Ok(Some(props));
        }
        // A namespace with tables but no property rows exists too.
        Ok((self.count_tables(id).await? > 0).then(BTreeMap::new))
    }

    #[tracing::instrument(name = "iceberg_sql", skip_all, fields(op = "count_tables", namespace = %id))]
    async fn count_tables(&self, id: &NamespaceId) -> LakeResult<usize> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2",
        )
        .bind(&id.catalog)
        .bind(id.dotted())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(&format!("counting the tables of {id}"), e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    #[tracing::instrument(name = "iceberg_sql", skip_all, fields(op = "children", namespace = %id))]
    async fn children(&self, id: &NamespaceId) -> LakeResult<Vec<NamespaceId>> {
        let dotted = id.dotted();
        let pattern = format!(
            "{}.%",
            dotted
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT namespace FROM iceberg_namespace_properties \
               WHERE catalog_name = $1 AND namespace LIKE $2 ESCAPE '\\' \
             UNION SELECT DISTINCT table_namespace FROM iceberg_tables \
               WHERE catalog_name = $1 AND table_namespace LIKE $2 ESCAPE '\\'",
        )
        .bind(&id.catalog)
        .bind(&pattern)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(&format!("listing the namespaces under {id}"), e))?;
        let mut out: Vec<NamespaceId> = rows
            .into_iter()
            .filter_map(|ns| {
                let parts: Vec<String> = ns.split('.').map(str::to_string).collect();
                (parts.len() == id.parts.len() + 1 && parts.starts_with(&id.parts)).then(|| {
                    NamespaceId {
                        catalog: id.catalog.clone(),
                        parts,
                    }
                })
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    #[tracing::instrument(name = "iceberg_sql", skip_all, fields(op = "create_namespace", namespace = %id))]
    async fn create_namespace(
        &self,
        id: &NamespaceId,
        properties: &BTreeMap<String, String>,
    ) -> LakeResult<()> {
        let mut props = properties.clone();
        if props.is_empty() {
            // What JdbcCatalog writes for a namespace without properties.
            props.insert("exists".into(), "true".into());
        }
        self.upsert(id, &[], &props, &format!("creating namespace {id}"))
            .await
    }

    /// One transaction, the property rows inserted 200 to a statement: a cold start creates
    /// hundreds of namespaces, and a transaction each took ~0.7 ms on SQLite.
    #[tracing::instrument(name = "iceberg_sql", skip_all, fields(op = "create_namespaces", count = namespaces.len()))]
    async fn create_namespaces(
        &self,
        namespaces: &[(&NamespaceId, &BTreeMap<String, String>)],
    ) -> LakeResult<()> {
        const ROWS_PER_STATEMENT: usize = 200;
        let what = match namespaces {
            [] => return Ok(()),
            [(id, _)] => format!("creating namespace {id}"),
            [(first, _), .., (last, _)] => format!(
                "creating {} namespaces ({first} … {last})",
                namespaces.len()
            ),
        };
        // Keyed as the table is, so a namespace given twice ends as the later one says (as
        // one upsert after another would), and no statement names a row twice.
        let mut rows: BTreeMap<(&str, String, &str), &str> = BTreeMap::new();
        for (id, properties) in namespaces {
            if properties.is_empty() {
                // What JdbcCatalog writes for a namespace without properties.
                rows.insert((&id.catalog, id.dotted(), "exists"), "true");
            }
            for (key, value) in properties.iter() {
                rows.insert((&id.catalog, id.dotted(), key), value);
            }
        }
        let rows: Vec<_> = rows.into_iter().collect();
        let mut tx = self.pool.begin().await.map_err(|e| self.err(&what, e))?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO iceberg_namespace_properties \
                   (catalog_name, namespace, property_key, property_value) VALUES ",
            );
            for i in 0..chunk.len() {
                let n = 4 * i;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4));
            }
            sql.push_str(
                " ON CONFLICT (catalog_name, namespace, property_key) \
                 DO UPDATE SET property_value = excluded.property_value",
            );
            let mut query = sqlx::query(&sql);
            for ((catalog, namespace, key), value) in chunk {
                query = query
                    .bind(*catalog)
                    .bind(namespace.as_str())
                    .bind(*key)
                    .bind(*value);
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(&what, e))?;
        }
        tx.commit().await.map_err(|e| self.err(&what, e))
    }

    #[tracing::instrument(name = "iceberg_sql", skip_all, fields(op = "update_properties", namespace = %id))]
    async fn update_properties(
        &self,
        id: &NamespaceId,
        removals: &[String],
        updates: &BTreeMap<String, String>,
    ) -> LakeResult<()> {
        self.upsert(
            id,
            removals,
            updates,
            &format!("updating the properties of {id}"),
        )
        .await
    }

    #[tracing::instrument(name = "iceberg_sql", skip_all, fields(op = "load_table", table = %id))]
    async fn load_table(&self, id: &TableId) -> LakeResult<Option<Value>> {
        let Some(location) = self.metadata_location(id).await? else {
            return Ok(None);
        };
        Ok(Some(self.read_metadata(id, &location).await?))
    }

    #[tracing::instrument(name = "iceberg_sql", skip_all, fields(op = "create_table", table = %id))]
    async fn create_table(&self, id: &TableId, request: &Value) -> LakeResult<()> {
        if self.metadata_location(id).await?.is_some() {
            return Ok(());
        }
        let what = format!("creating table {id}");
        let location = match request["location"].as_str() {
            Some(location) => location.trim_end_matches('/').to_string(),
            None => {
                let ns_location = self
                    .properties(&id.namespace)
                    .await?
                    .remove("location")
                    .ok_or_else(|| LakeError::Refused {
                        system: self.describe(),
                        what: what.clone(),
                        message: format!("namespace {} has no `location` property", id.namespace),
                    })?;
                format!("{}/{}", ns_location.trim_end_matches('/'), id.name)
            }
        };
        let uuid = uuid::Uuid::new_v4().to_string();
        let metadata = tables::new_metadata(request, &location, &uuid, now_ms());
        let file = format!("{location}/metadata/00000-{uuid}.metadata.json");
        self.write_metadata(&file, &metadata).await?;
        sqlx::query(
            "INSERT INTO iceberg_tables \
               (catalog_name, table_namespace, table_name, metadata_location, \
                previous_metadata_location, iceberg_type) \
             VALUES ($1, $2, $3, $4, NULL, 'TABLE') \
             ON CONFLICT (catalog_name, table_namespace, table_name) DO NOTHING",
        )
        .bind(&id.namespace.catalog)
        .bind(id.namespace.dotted())
        .bind(&id.name)
        .bind(&file)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(&what, e))?;
        Ok(())
    }

    #[tracing::instrument(name = "iceberg_sql", skip_all, fields(op = "commit_table", table = %id))]
    async fn commit_table(
        &self,
        id: &TableId,
        requirements: &[Value],
        updates: &[Value],
    ) -> LakeResult<()> {
        let what = format!("the commit to table {id}");
        let old = self
            .metadata_location(id)
            .await?
            .ok_or_else(|| LakeError::Refused {
                system: self.describe(),
                what: what.clone(),
                message: "the table does not exist".into(),
            })?;
        let mut metadata = self.read_metadata(id, &old).await?;
        let now = now_ms();
        tables::apply_updates(&mut metadata, requirements, updates, now).map_err(|message| {
            LakeError::Conflict {
                system: self.describe(),
                what: what.clone(),
                message,
            }
        })?;
        let log = serde_json::json!({"timestamp-ms": now, "metadata-file": old});
        match metadata["metadata-log"].as_array_mut() {
            Some(l) => l.push(log),
            None => metadata["metadata-log"] = serde_json::json!([log]),
        }
        let location = metadata["location"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let file = format!(
            "{}/metadata/{:05}-{}.metadata.json",
            location.trim_end_matches('/'),
            next_version(&old),
            uuid::Uuid::new_v4()
        );
        self.write_metadata(&file, &metadata).await?;
        // Optimistic: only if nobody committed since we read.
        let done = sqlx::query(
            "UPDATE iceberg_tables SET metadata_location = $1, previous_metadata_location = $2 \
             WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5 \
               AND metadata_location = $2",
        )
        .bind(&file)
        .bind(&old)
        .bind(&id.namespace.catalog)
        .bind(id.namespace.dotted())
        .bind(&id.name)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(&what, e))?;
        if done.rows_affected() == 0 {
            return Err(LakeError::Conflict {
                system: self.describe(),
                what,
                message: "another writer committed first".into(),
            });
        }
        Ok(())
    }

    #[tracing::instrument(name = "iceberg_sql", skip_all, fields(op = "drop_namespace", namespace = %id))]
    async fn drop_namespace(&self, id: &NamespaceId) -> LakeResult<()> {
        let tables = self.count_tables(id).await?;
        if tables > 0 {
            return Err(LakeError::Refused {
                system: self.describe(),
                what: format!("dropping namespace {id}"),
                message: format!("it holds {}", crate::text::count(tables, "table")),
            });
        }
        sqlx::query(
            "DELETE FROM iceberg_namespace_properties WHERE catalog_name = $1 AND namespace = $2",
        )
        .bind(&id.catalog)
        .bind(id.dotted())
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(&format!("dropping namespace {id}"), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(parts: &[&str]) -> NamespaceId {
        NamespaceId::new("lake", parts)
    }

    fn files() -> Arc<dyn Warehouse> {
        Arc::new(super::super::warehouse::Warehouses::new(None).unwrap())
    }

    #[test]
    fn metadata_files_are_numbered_in_sequence() {
        assert_eq!(
            next_version("file:///w/t/metadata/00003-ab-cd.metadata.json"),
            4
        );
        assert_eq!(next_version("s3://b/t/metadata/v1.metadata.json"), 1);
    }

    #[test]
    fn credentials_never_show_in_messages() {
        assert_eq!(
            without_credentials("postgres://olo:hunter2@db:5432/cat"),
            "postgres://db:5432/cat"
        );
    }

    #[tokio::test]
    async fn namespaces_round_trip_through_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/cat.db?mode=rwc", dir.path().display());
        let cat = SqlCatalog::open(&url, files()).await.unwrap();
        assert_eq!(cat.load_namespace(&id(&["sales"])).await.unwrap(), None);
        let props: BTreeMap<String, String> =
            [("owner".to_string(), "sales-eng".to_string())].into();
        cat.create_namespace(&id(&["sales"]), &props).await.unwrap();
        cat.create_namespace(&id(&["sales", "bronze"]), &props)
            .await
            .unwrap();
        // A sibling whose name only looks like a child under LIKE's `_` must not count.
        cat.create_namespace(&id(&["salesxbronze"]), &props)
            .await
            .unwrap();
        assert_eq!(
            cat.children(&id(&["sales"])).await.unwrap(),
            vec![id(&["sales", "bronze"])]
        );
        let updates: BTreeMap<String, String> = [("comment".to_string(), "c".to_string())].into();
        cat.update_properties(&id(&["sales", "bronze"]), &["owner".into()], &updates)
            .await
            .unwrap();
        assert_eq!(
            cat.load_namespace(&id(&["sales", "bronze"])).await.unwrap(),
            Some(updates.clone())
        );
        sqlx::query(
            "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name) \
             VALUES ('lake', 'sales.bronze', 'orders')",
        )
        .execute(&cat.pool)
        .await
        .unwrap();
        assert_eq!(
            cat.count_tables(&id(&["sales", "bronze"])).await.unwrap(),
            1
        );
        let refused = cat.drop_namespace(&id(&["sales", "bronze"])).await;
        assert!(
            matches!(refused, Err(LakeError::Refused { .. })),
            "{refused:?}"
        );
        cat.drop_namespace(&id(&["salesxbronze"])).await.unwrap();
        assert_eq!(
            cat.load_namespace(&id(&["salesxbronze"])).await.unwrap(),
            None
        );
        // Reopening keeps everything (the DDL is idempotent).
        drop(cat);
        let cat = SqlCatalog::open(&url, files()).await.unwrap();
        assert!(cat.load_namespace(&id(&["sales"])).await.unwrap().is_some());
    }
}
