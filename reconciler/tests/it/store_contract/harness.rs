//! The harness: a database per test, on SQLite or PostgreSQL.

use std::sync::atomic::{AtomicU32, Ordering};

use olo_reconciler::store::{self, Store};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};

const POSTGRES_URL_VAR: &str = "OLO_TEST_POSTGRES_URL";

/// One test's database, and the way to clean it up.
pub struct TestDb {
    url: String,
    kind: Kind,
}

enum Kind {
    /// The temp folder goes when the test ends, pass or fail.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
}

pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL half of the store contract needs a \
             server. Run scripts/test.sh (it starts one), or start one yourself with \
             `export {POSTGRES_URL_VAR}=$(scripts/postgres.sh)` and run cargo test again."
        )
    })
}

/// `postgres://user@host:port/db?params` with the database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base
        .split_once("://")
        .unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not a postgres:// URL: {url}"));
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    format!("{scheme}://{authority}/{name}{query}")
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp folder");
        let url = format!("sqlite:{}", dir.path().join("state.db").display());
        TestDb {
            url,
            kind: Kind::Sqlite { _dir: dir },
        }
    }

    pub async fn postgres() -> TestDb {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let admin_url = postgres_admin_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "olo_test_{}_{}_{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "could not connect to PostgreSQL at {POSTGRES_URL_VAR}={admin_url} ({e}); \
                 is it running? scripts/test.sh starts one"
            )
        });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("could not create the test database {name}: {e}"));
        admin.close().await.ok();
        TestDb {
            url: with_database(&admin_url, &name),
            kind: Kind::Postgres { admin_url, name },
        }
    }

    pub async fn open(&self) -> Box<dyn Store> {
        store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("could not open the store at {}: {e:?}", self.url))
    }

    /// Runs one SQL statement on a connection of its own, beside the store.
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let done = match self.kind {
            Kind::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url).await?;
                sqlx::query(sql).execute(&mut conn).await?.rows_affected()
            }
            Kind::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url).await?;
                sqlx::query(sql).execute(&mut conn).await?.rows_affected()
            }
        };
        Ok(done)
    }

    /// This backend's migrations folder, `reconciler/migrations/<backend>/`.
    fn migrations_dir(&self) -> std::path::PathBuf {
        let backend = match self.kind {
            Kind::Sqlite { .. } => "sqlite",
            Kind::Postgres { .. } => "postgres",
        };
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend)
    }

    /// How many migrations this backend has (files in `reconciler/migrations/<backend>/`).
    pub fn migration_files(&self) -> u64 {
        let files = std::fs::read_dir(self.migrations_dir()).expect("migrations folder");
        files
            .filter(|f| f.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
            .count() as u64
    }

    /// Applies the migrations up to `version` only, leaving the database as an older olo did.
    pub async fn migrate_up_to(&self, version: i64) {
        let mut migrator = sqlx::migrate::Migrator::new(self.migrations_dir())
            .await
            .expect("read the migrations");
        let older: Vec<_> = migrator
            .migrations
            .iter()
            .filter(|m| m.version <= version)
            .cloned()
            .collect();
        assert!(!older.is_empty(), "no migration up to {version}");
        migrator.migrations = older.into();
        let done = match self.kind {
            Kind::Sqlite { .. } => {
                let options: SqliteConnectOptions = self.url.parse().expect("SQLite URL");
                let mut conn = SqliteConnection::connect_with(&options.create_if_missing(true))
                    .await
                    .expect("create the SQLite file");
                migrator.run(&mut conn).await
            }
            Kind::Postgres { .. } => {
                let mut conn = PgConnection::connect(&self.url)
                    .await
                    .expect("connect to the test database");
                migrator.run(&mut conn).await
            }
        };
        done.unwrap_or_else(|e| panic!("could not migrate up to {version}: {e}"));
    }

    /// Drops a PostgreSQL test database (only reached when the test passed).
    pub async fn finish(self) {
        if let Kind::Postgres { admin_url, name } = &self.kind {
            let mut admin = PgConnection::connect(admin_url)
                .await
                .expect("connect to drop the test database");
            sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("could not drop the test database {name}: {e}"));
        }
    }
}
