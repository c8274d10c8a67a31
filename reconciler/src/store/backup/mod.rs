//! Backup and restore of the state store: a logical, portable copy of every table olo's
//! migrations create, as one file of JSON lines (`format.rs`), for both backends.
//!
//! A backup is one consistent snapshot (one read transaction). A restore checks the whole file
//! first (header, counts, checksum), then loads it in one transaction into an empty store made
//! at the backup's schema version (or, forced, into a store whose rows it deletes first), sets
//! the id generators past every restored id, and upgrades the schema when this olo knows newer
//! migrations. A failure part-way leaves the store as it was.

pub mod format;

mod file;
mod postgres;
mod sqlite;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sqlx::migrate::Migrator;

pub use file::{BackupReader, BackupWriter};
pub use format::{Backend, FormatError, Header, Verified};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("could not open the state store at {url}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("state store query failed: {what}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not migrate the state store")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("unsupported state store URL `{0}` (expected sqlite:… or postgres://…)")]
    Url(String),
    #[error("could not {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a backup olo can restore", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error(
        "the database holds no olo state store (it has no _sqlx_migrations table): check \
         state.database"
    )]
    NotAStore,
    #[error(
        "the backup is at schema version {backup}, and this olo knows versions up to {known}: \
         restore it with olo {olo} (which wrote it) or newer"
    )]
    NewerSchema {
        backup: i64,
        known: i64,
        olo: String,
    },
    #[error(
        "the state store is at schema version {store} and the backup at {backup}: restore into a \
         new, empty database (olo creates its tables at version {backup}, restores, then \
         upgrades them)"
    )]
    SchemaDiffers { store: i64, backup: i64 },
    #[error("the state store is not empty ({})", rows_text(.rows))]
    NotEmpty { rows: Vec<(String, u64)> },
    #[error("the backup does not fit this state store: {0}")]
    Mismatch(String),
}

fn rows_text(rows: &[(String, u64)]) -> String {
    rows.iter()
        .map(|(table, n)| format!("{table}: {n} row{}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

pub type BackupResult<T> = std::result::Result<T, BackupError>;

/// How far a backup or restore got, for people: reported every 50,000 rows of a table and when
/// a table is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    pub table: &'a str,
    pub rows: u64,
    pub done: bool,
}

pub type OnProgress<'a> = &'a (dyn Fn(Progress<'_>) + Send + Sync);

/// What a backup file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
    pub sha256: String,
    pub bytes: u64,
}

impl Summary {
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }
}

/// A state store that can be copied out to a backup file and loaded back from one.
#[async_trait::async_trait]
pub trait Backup: Send + Sync {
    fn backend(&self) -> Backend;
    /// The newest migration this olo has for the backend.
    fn known_migrations(&self) -> i64;
    /// The newest migration applied to the store; `None` for a database olo never migrated.
    async fn applied_migrations(&self) -> BackupResult<Option<i64>>;
    /// Applies the migrations up to `version`, or all of them.
    async fn migrate(&self, up_to: Option<i64>) -> BackupResult<()>;
    /// Writes the header and every row of one consistent snapshot of the store.
    async fn write_snapshot(&self, out: &mut BackupWriter<'_>) -> BackupResult<()>;
    /// Loads every row of a backup in one transaction: refuses a store holding rows unless
    /// `force` (then deletes them first), sets the id generators, and commits only once the
    /// reader reached a matching trailer.
    async fn load(&self, input: &mut BackupReader<'_>, force: bool) -> BackupResult<()>;
}

/// Connects to the store a URL names, without migrating it. `create`: make a new SQLite file
/// when there is none (a restore); a backup needs an existing store.
pub async fn open(url: &str, create: bool) -> BackupResult<Box<dyn Backup>> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(sqlite::SqliteBackup::open(url, create).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(postgres::PostgresBackup::open(url).await?))
    } else {
        Err(BackupError::Url(url.to_string()))
    }
}

/// Writes a backup of the store at `url` to `out` (replacing the file only once the backup is
/// complete).
pub async fn backup(url: &str, out: &Path, progress: OnProgress<'_>) -> BackupResult<Summary> {
    let store = open(url, false).await?;
    if store.applied_migrations().await?.is_none() {
        return Err(BackupError::NotAStore);
    }
    let mut writer = BackupWriter::create(out, progress).await?;
    store.write_snapshot(&mut writer).await?;
    let (verified, bytes) = writer.finish().await?;
    Ok(Summary {
        header: verified.header,
        rows: verified.rows,
        sha256: verified.sha256,
        bytes,
    })
}

/// Checks a backup file without touching any store: complete, unchanged, and of a schema this
/// olo can restore.
pub async fn check(from: &Path) -> BackupResult<Summary> {
    let verified = file::verify(from).await?;
    let known = known_migrations(verified.header.backend);
    if verified.header.migrations > known {
        return Err(BackupError::NewerSchema {
            backup: verified.header.migrations,
            known,
            olo: verified.header.olo.clone(),
        });
    }
    let bytes = tokio::fs::metadata(from)
        .await
        .map_err(|source| BackupError::Io {
            what: "read",
            path: from.to_path_buf(),
            source,
        })?
        .len();
    Ok(Summary {
        header: verified.header,
        rows: verified.rows,
        sha256: verified.sha256,
        bytes,
    })
}

/// Restores a backup into the store at `url`: see the module documentation.
pub async fn restore(
    url: &str,
    from: &Path,
    force: bool,
    progress: OnProgress<'_>,
) -> BackupResult<Summary> {
    let summary = check(from).await?;
    let version = summary.header.migrations;
    let store = open(url, true).await?;
    let known = store.known_migrations();
    if version > known {
        return Err(BackupError::NewerSchema {
            backup: version,
            known,
            olo: summary.header.olo.clone(),
        });
    }
    match store.applied_migrations().await? {
        None => store.migrate(Some(version)).await?,
        Some(applied) if applied == version => {}
        Some(applied) => {
            return Err(BackupError::SchemaDiffers {
                store: applied,
                backup: version,
            })
        }
    }
    let mut reader = BackupReader::open(from, progress).await?;
    store.load(&mut reader, force).await?;
    if version < known {
        store.migrate(None).await?;
    }
    Ok(summary)
}

fn known_migrations(backend: Backend) -> i64 {
    let migrator = match backend {
        Backend::Sqlite => &super::sqlite::MIGRATOR,
        Backend::Postgres => &super::postgres::MIGRATOR,
    };
    newest(migrator)
}

fn newest(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The migrations of `migrator` up to `version` only (a store made as the olo of a backup made
/// it).
fn up_to(migrator: &Migrator, version: i64) -> Migrator {
    // Its fields are public (and hidden from its docs); the store contract tests build older
    // schemas the same way.
    Migrator {
        migrations: Cow::Owned(
            migrator
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect(),
        ),
        ignore_missing: migrator.ignore_missing,
        locking: migrator.locking,
        no_tx: migrator.no_tx,
    }
}

/// Rows per insert statement, and at most this much JSON per statement.
const BATCH_ROWS: usize = 500;
const BATCH_BYTES: usize = 4 << 20;

/// `"name"` as an SQL identifier (both backends quote the same way).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
