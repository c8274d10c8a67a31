//! Opening the PostgreSQL backend: production, shared by several replicas. Its statements are
//! shared with SQLite (`sql.rs` and the modules per resource); times are TIMESTAMPTZ
//! (microseconds) assigned by the application's clock (`time.rs`), JSON values JSONB.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::sql::Db;
use super::{PostgresStore, StoreError, StoreResult};

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

impl PostgresStore {
    /// Connects to the database a `postgres://` URL names and runs pending migrations (the
    /// migrator takes an advisory lock, so replicas starting together migrate once).
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Url(redacted(url)));
        }
        let open_error = |source| StoreError::Open {
            url: redacted(url),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(PostgresStore::new(Db::Postgres(pool)))
    }
}

/// The URL with its password replaced by `***`, fit for error messages and logs.
pub(super) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // Up to the last `@` before the query, so that a password with an unescaped `/` or `@`
    // is hidden too.
    let query_start = rest.find('?').unwrap_or(rest.len());
    let Some(at) = rest[..query_start].rfind('@') else {
        return url.to_string();
    };
    let (userinfo, host_and_rest) = rest.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{host_and_rest}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn redacted_hides_only_the_password() {
        assert_eq!(
            redacted("postgres://olo:s3cr:et@db.internal:5432/olo?sslmode=require"),
            "postgres://olo:***@db.internal:5432/olo?sslmode=require"
        );
        assert_eq!(
            redacted("postgres://olo:a/b@c@db/olo"),
            "postgres://olo:***@db/olo"
        );
        assert_eq!(
            redacted("postgres://olo@db:5432/olo"),
            "postgres://olo@db:5432/olo"
        );
        assert_eq!(
            redacted("postgres:///olo?host=/run"),
            "postgres:///olo?host=/run"
        );
    }
}
