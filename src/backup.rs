//! `olo backup` and `olo restore`: the state store to and from a backup file
//! (`olo_reconciler::store::backup` does the work; this is the command line around it).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use olo_reconciler::leader::Election;
use olo_reconciler::store::backup::{self, BackupError, Progress, Summary};
use olo_reconciler::text::count;

use crate::settings::Settings;

/// The store as messages name it: a SQLite URL is a path; a PostgreSQL URL may hold a password.
fn store_name(url: &str) -> String {
    if url.starts_with("sqlite:") {
        format!("the state store {url}")
    } else {
        "the PostgreSQL state store (state.database)".to_string()
    }
}

/// Rows per table in the log, as each table is done (and every 50,000 rows of a long one).
fn progress(verb: &'static str) -> impl Fn(Progress<'_>) + Send + Sync {
    move |p| {
        let so_far = if p.done { "" } else { " so far" };
        tracing::info!(
            table = p.table,
            rows = p.rows,
            done = p.done,
            "{verb}: {:<20} {:>9} rows{so_far}",
            p.table,
            p.rows
        );
    }
}

fn describe(summary: &Summary) -> String {
    format!(
        "{} in {}, {} store at schema version {}, taken {} by olo {}",
        count(summary.total_rows() as usize, "row"),
        count(summary.rows.len(), "table"),
        summary.header.backend.as_str(),
        summary.header.migrations,
        summary.header.created_at,
        summary.header.olo
    )
}

pub async fn backup(settings: &Settings, out: &Path) -> anyhow::Result<ExitCode> {
    let url = settings.database_url();
    let started = Instant::now();
    let summary = backup::backup(&url, out, &progress("backup"))
        .await
        .with_context(|| format!("could not back up {}", store_name(&url)))?;
    tracing::info!(
        file = %out.display(),
        bytes = summary.bytes,
        sha256 = %summary.sha256,
        "backup: wrote {} ({} bytes) in {:.1} s: {}; sha256 {}",
        out.display(),
        summary.bytes,
        started.elapsed().as_secs_f64(),
        describe(&summary),
        summary.sha256
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn check(from: &Path) -> anyhow::Result<ExitCode> {
    let summary = backup::check(from)
        .await
        .with_context(|| format!("{} cannot be restored", from.display()))?;
    println!("{}: a complete, unchanged backup", from.display());
    println!("  {}", describe(&summary));
    println!("  {} bytes, sha256 {}", summary.bytes, summary.sha256);
    for (table, rows) in &summary.rows {
        println!("  {table:<20} {rows:>9} rows");
    }
    Ok(ExitCode::SUCCESS)
}

/// What keeps every olo from reconciling while a restore runs: the branch's lock file in the
/// state folder (`olo serve` and `olo apply` hold it) and, with PostgreSQL, the leader's advisory
/// lock (the replica that leads holds it; a replica that starts meanwhile stays a follower).
struct HoldOff {
    _lock: crate::branch_lock::BranchLock,
    election: Option<Election>,
}

/// Takes both locks, or says which olo is running.
async fn hold_off(settings: &Settings, url: &str) -> anyhow::Result<HoldOff> {
    let branch = settings.tracked_branch();
    let mut election = None;
    if url.starts_with("postgres") {
        let mut e =
            Election::new(url, &branch).context("state.database is not a PostgreSQL URL")?;
        let free = e
            .try_lead()
            .await
            .with_context(|| format!("could not reach {}", store_name(url)))?;
        if !free {
            anyhow::bail!(
                "a replica of `olo serve` leads branch {branch} on {}: stop every replica before \
                 restoring (a restore under a running olo would mix its writes with the backup's)",
                store_name(url)
            );
        }
        election = Some(e);
    }
    let Some(lock) = crate::branch_lock::try_lock_branch(settings)? else {
        if let Some(e) = election.as_mut() {
            e.resign().await;
        }
        anyhow::bail!(
            "an `olo serve` or `olo apply` is using the state folder {} for branch {branch}: stop \
             it before restoring (a restore under a running olo would mix its writes with the \
             backup's)",
            settings.state.dir.display()
        );
    };
    Ok(HoldOff {
        _lock: lock,
        election,
    })
}

pub async fn restore(settings: &Settings, from: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let url = settings.database_url();
    let started = Instant::now();
    let mut held = hold_off(settings, &url)
        .await
        .with_context(|| format!("did not restore {}", store_name(&url)))?;
    let restored = backup::restore(&url, from, force, &progress("restore")).await;
    if let Some(e) = held.election.as_mut() {
        e.resign().await;
    }
    let summary = match restored {
        Ok(summary) => summary,
        Err(e @ BackupError::NotEmpty { .. }) => {
            return Err(anyhow::anyhow!(
                "{e}: restore into an empty store (a new SQLite file, or a new PostgreSQL \
                 database), or pass --force to delete these rows and restore the backup in their \
                 place, in one transaction"
            ))
            .with_context(|| format!("did not restore {}", store_name(&url)));
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "could not restore {} from {}",
                    store_name(&url),
                    from.display()
                )
            })
        }
    };
    tracing::info!(
        file = %from.display(),
        "restore: restored {} in {:.1} s: {}",
        from.display(),
        started.elapsed().as_secs_f64(),
        describe(&summary)
    );
    Ok(ExitCode::SUCCESS)
}
