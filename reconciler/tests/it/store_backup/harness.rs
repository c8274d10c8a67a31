//! Databases: a store URL per database, dropped when the test passed.

use olo_reconciler::store;
use olo_reconciler::store::backup::Backend;
use olo_reconciler::store::Store;
use sqlx::Connection;
use sqlx::PgConnection;
use sqlx::SqliteConnection;
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering;

pub(crate) const POSTGRES_URL_VAR: &str = "OLO_TEST_POSTGRES_URL";

pub(crate) struct Db {
    pub(crate) url: String,
    /// A SQLite file's folder, or PostgreSQL's admin URL and the database's name.
    pub(crate) place: Place,
}

pub(crate) enum Place {
    Folder(tempfile::TempDir),
    Server { admin_url: String, name: String },
}

pub(crate) fn admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL backup tests need a server. Run \
             scripts/test.sh (it starts one), or `export {POSTGRES_URL_VAR}=$(scripts/postgres.sh)` \
             and run cargo test again."
        )
    })
}

impl Db {
    /// A database no olo has used: a SQLite file not made yet, or an empty PostgreSQL database.
    pub(crate) async fn new(backend: Backend) -> Db {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp folder");
                Db {
                    url: format!("sqlite:{}", dir.path().join("state.db").display()),
                    place: Place::Folder(dir),
                }
            }
            Backend::Postgres => {
                static SEQ: AtomicU32 = AtomicU32::new(0);
                let admin_url = admin_url();
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos();
                let name = format!(
                    "olo_backup_{}_{}_{nanos}",
                    std::process::id(),
                    SEQ.fetch_add(1, Ordering::Relaxed)
                );
                let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!(
                        "could not connect to {POSTGRES_URL_VAR}={admin_url} ({e}): is it running?"
                    )
                });
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .await
                    .unwrap_or_else(|e| panic!("could not create the database {name}: {e}"));
                let (base, query) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
                let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
                let url = match query {
                    "" => format!("{server}/{name}"),
                    q => format!("{server}/{name}?{q}"),
                };
                Db {
                    url,
                    place: Place::Server { admin_url, name },
                }
            }
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self.place {
            Place::Folder(_) => Backend::Sqlite,
            Place::Server { .. } => Backend::Postgres,
        }
    }

    pub(crate) async fn open(&self) -> Box<dyn Store> {
        store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("could not open the store at {}: {e:?}", self.url))
    }

    /// One SQL statement on a connection of its own.
    pub(crate) async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        Ok(match self.place {
            Place::Folder(_) => {
                let mut conn = SqliteConnection::connect(&self.url).await?;
                sqlx::query(sql).execute(&mut conn).await?.rows_affected()
            }
            Place::Server { .. } => {
                let mut conn = PgConnection::connect(&self.url).await?;
                sqlx::query(sql).execute(&mut conn).await?.rows_affected()
            }
        })
    }

    /// `SELECT COUNT(*)` of a table.
    pub(crate) async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self.place {
            Place::Folder(_) => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap()
            }
            Place::Server { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Whether olo ever made its tables here.
    pub(crate) async fn has_tables(&self) -> bool {
        match self.place {
            Place::Folder(ref dir) => dir.path().join("state.db").exists(),
            Place::Server { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar("SELECT to_regclass('revisions') IS NOT NULL")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
        }
    }

    /// Applies this backend's migrations up to `version` only, as an older olo left the store.
    pub(crate) async fn migrate_up_to(&self, version: i64) {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(self.backend().as_str());
        let mut migrator = sqlx::migrate::Migrator::new(folder).await.unwrap();
        migrator.migrations = migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        match self.place {
            Place::Folder(_) => {
                let options: sqlx::sqlite::SqliteConnectOptions = self.url.parse().unwrap();
                let mut conn = SqliteConnection::connect_with(&options.create_if_missing(true))
                    .await
                    .unwrap();
                migrator.run(&mut conn).await.unwrap();
            }
            Place::Server { .. } => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                migrator.run(&mut conn).await.unwrap();
            }
        }
    }

    /// Drops a PostgreSQL database (reached only when the test passed).
    pub(crate) async fn finish(self) {
        if let Place::Server { admin_url, name } = &self.place {
            let mut admin = PgConnection::connect(admin_url).await.unwrap();
            sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("could not drop the database {name}: {e}"));
        }
    }
}
