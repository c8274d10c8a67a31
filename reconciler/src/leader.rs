//! Leader election among `olo serve` replicas that share one PostgreSQL state store.
//!
//! The leader is the replica holding a PostgreSQL session-level advisory lock (one key per
//! tracked branch) on a connection of its own. PostgreSQL releases the lock when that session
//! ends, so a leader that dies (even by `kill -9`, or with its host) frees it as soon as its TCP
//! connection closes, and a follower trying every couple of seconds takes over. The leader checks
//! its connection on the same beat; if it broke, the lock may already belong to another replica,
//! so the leader must stop leading at once (the daemon exits and starts over as a follower).
//! On shutdown the leader unlocks explicitly, so a follower takes over without waiting.

use std::str::FromStr as _;

use sha2::Digest as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions as _, Connection as _, Row as _};

/// The advisory-lock key of a branch: the first 8 bytes of SHA-256("olo leader <branch>").
pub fn lock_key(branch: &str) -> i64 {
    let digest = sha2::Sha256::digest(format!("olo leader {branch}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

pub struct Election {
    options: PgConnectOptions,
    key: i64,
    /// The session holding the lock (the leader's), or the one trying.
    conn: Option<PgConnection>,
    leading: bool,
}

impl Election {
    pub fn new(url: &str, branch: &str) -> Result<Election, sqlx::Error> {
        Ok(Election {
            options: PgConnectOptions::from_str(url)?.application_name("olo leader election"),
            key: lock_key(branch),
            conn: None,
            leading: false,
        })
    }

    pub fn is_leader(&self) -> bool {
        self.leading
    }

    /// Tries to take the lead; `Ok(true)` when this replica leads now (or already did).
    pub async fn try_lead(&mut self) -> Result<bool, sqlx::Error> {
        if self.leading {
            return Ok(true);
        }
        if self.conn.is_none() {
            self.conn = Some(self.options.connect().await?);
        }
        let conn = self.conn.as_mut().expect("connected");
        let got = sqlx::query("SELECT pg_try_advisory_lock($1) AS got")
            .bind(self.key)
            .fetch_one(&mut *conn)
            .await;
        match got {
            Ok(row) => {
                self.leading = row.try_get::<bool, _>("got")?;
                Ok(self.leading)
            }
            Err(e) => {
                // A broken session: connect afresh next time.
                self.conn = None;
                Err(e)
            }
        }
    }

    /// Whether the lock is still this replica's: its session still answers. `false` means the
    /// lead is lost (another replica may hold it already).
    pub async fn still_leading(&mut self) -> bool {
        if !self.leading {
            return false;
        }
        let alive = match self.conn.as_mut() {
            Some(conn) => sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok(),
            None => false,
        };
        if !alive {
            self.leading = false;
            self.conn = None;
        }
        alive
    }

    /// Gives the lead up (on shutdown), so a follower takes over at once.
    /// Drops the session (and with it the lock, when PostgreSQL still holds it): after a check
    /// that did not answer in time, this replica no longer counts itself the leader.
    pub fn abandon(&mut self) {
        self.leading = false;
        self.conn = None;
    }

    pub async fn resign(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            if self.leading {
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(self.key)
                    .execute(&mut conn)
                    .await;
            }
            let _ = conn.close().await;
        }
        self.leading = false;
    }
}

#[cfg(test)]
mod tests {
    use super::lock_key;

    #[test]
    fn each_branch_has_its_own_stable_key() {
        assert_eq!(lock_key("main"), lock_key("main"));
        assert_ne!(lock_key("main"), lock_key("prod"));
    }
}
