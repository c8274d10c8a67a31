//! Opening the SQLite backend: the embedded default, one file. Its statements are shared with
//! PostgreSQL (`sql.rs` and the modules per resource); times are fixed-width TEXT (`time.rs`),
//! JSON values TEXT.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use super::sql::Db;
use super::{SqliteStore, StoreError, StoreResult};

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes of WAL file kept after a checkpoint (64 MiB).
pub const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

impl SqliteStore {
    /// Opens (creating the file and its folder if needed) the database a `sqlite:path` URL
    /// names, and runs pending migrations. `sqlite::memory:` opens a private in-memory store.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Url(url.to_string()));
        }
        let open_error = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a process crash (kill -9); only a power loss can
            // drop the last transactions, never corrupt the file. SQLite's recommended pairing.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            // After a checkpoint, the WAL file is cut back to this size: without it, the file
            // keeps the size of its largest burst (a flood of writes) for good.
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string())
            .foreign_keys(true);

        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = if in_memory {
            // An in-memory database lives as long as a connection to it: keep exactly one.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            if let Some(folder) = options.get_filename().parent() {
                if !folder.as_os_str().is_empty() {
                    tokio::fs::create_dir_all(folder)
                        .await
                        .map_err(|e| open_error(sqlx::Error::Io(e)))?;
                }
            }
            SqlitePoolOptions::new().max_connections(4)
        };
        let folder = options
            .get_filename()
            .parent()
            .map(std::path::Path::to_path_buf)
            .filter(|f| !f.as_os_str().is_empty())
            .unwrap_or_else(|| std::path::PathBuf::from("."));
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| match no_space(&folder) {
                // Setting up the WAL's shared memory on a full disk fails as "disk I/O error".
                true if !in_memory => StoreError::NoSpace {
                    url: url.to_string(),
                    folder: folder.display().to_string(),
                    source: e,
                },
                _ => open_error(e),
            })?;

        MIGRATOR.run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(SqliteStore::new(Db::Sqlite(pool)))
    }
}

/// Whether the file system holding `folder` has no space left for SQLite (under 64 KiB free to
/// unprivileged writers).
pub(super) fn no_space(folder: &std::path::Path) -> bool {
    rustix::fs::statvfs(folder).is_ok_and(|s| s.f_bavail.saturating_mul(s.f_frsize) < 64 * 1024)
}

#[cfg(test)]
mod tests {
    use super::super::sql::Db;
    use super::{SqliteStore, JOURNAL_SIZE_LIMIT};

    #[tokio::test]
    async fn the_wal_is_cut_back_after_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("state.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let Db::Sqlite(pool) = store.db() else {
            panic!("a SQLite store on another backend")
        };
        let (limit,): (i64,) = sqlx::query_as("PRAGMA journal_size_limit")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(limit, JOURNAL_SIZE_LIMIT);
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
