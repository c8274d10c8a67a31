//! A throwaway PostgreSQL database on the test server (`OLO_TEST_POSTGRES_URL`, which
//! scripts/test.sh starts): tests that need one fail without it, they never skip.

use std::process::{Command, Output};

pub const POSTGRES_URL_VAR: &str = "OLO_TEST_POSTGRES_URL";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A database of its own on the test server, dropped when the test passes.
pub struct PgDatabase {
    pub admin_url: String,
    pub name: String,
    pub url: String,
}

pub fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .unwrap_or_else(|e| panic!("could not run psql ({e}): install PostgreSQL's client"));
    assert!(out.status.success(), "psql {sql}: {}", stderr(&out));
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_URL_VAR} is not set: the PostgreSQL drill needs a server. Run \
                 scripts/test.sh (it starts one), or `export {POSTGRES_URL_VAR}=$(scripts/postgres.sh)`."
            )
        });
        let name = format!(
            "olo_drill_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let (base, query) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let url = match query {
            "" => format!("{server}/{name}"),
            q => format!("{server}/{name}?{q}"),
        };
        let db = PgDatabase {
            admin_url,
            name,
            url,
        };
        psql(&db.admin_url, &format!("CREATE DATABASE \"{}\"", db.name));
        db
    }

    /// Drops the database with everything in it, and makes an empty one of the same name.
    pub fn recreate(&self) {
        psql(
            &self.admin_url,
            &format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name),
        );
        psql(
            &self.admin_url,
            &format!("CREATE DATABASE \"{}\"", self.name),
        );
    }

    pub fn drop_database(self) {
        psql(
            &self.admin_url,
            &format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name),
        );
    }
}

/// A PostgreSQL server of a test's own (scripts/postgres.sh in a folder and on a port of its
/// own), which the test may stop and start again: the shared server of the run stays up for the
/// other tests. Deleted with its data when dropped.
pub struct PgServer {
    dir: tempfile::TempDir,
    /// The admin URL (database `postgres`).
    pub url: String,
}

impl PgServer {
    fn script(dir: &std::path::Path, verb: &str) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres.sh");
        let out = Command::new(script)
            .arg(verb)
            .env("OLO_PG_DIR", dir.join("pg"))
            // Away from the shared server's ports (25432 up).
            .env("OLO_PG_PORT", "26432")
            .output()
            .unwrap_or_else(|e| panic!("could not run {script}: {e}"));
        assert!(
            out.status.success(),
            "scripts/postgres.sh {verb}: {}",
            stderr(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn start() -> PgServer {
        // The postgres OS user (PostgreSQL runs as it under root) must enter the folder.
        let dir = tempfile::Builder::new()
            .prefix("olo-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let url = PgServer::script(dir.path(), "start");
        PgServer { dir, url }
    }

    /// Stops the server, keeping its data (`pg_ctl stop -m fast`: connections are closed).
    pub fn pause(&self) {
        PgServer::script(self.dir.path(), "pause");
    }

    /// Starts it again on the same port.
    pub fn resume(&self) {
        PgServer::script(self.dir.path(), "resume");
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| PgServer::script(self.dir.path(), "stop"));
    }
}
