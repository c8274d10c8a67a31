//! `olo plan`, `olo audit`, `olo status`: read-only views of the live state.

use std::io::Write as _;

use anyhow::Context as _;
use std::process::ExitCode;

use olo_reconciler::engine::{desired, Desired, Observe};
use olo_reconciler::report;
use olo_schema::Snapshot;

use crate::components::{engine, open_store};
use crate::settings::Settings;
use crate::{AuditFormat, PlanFormat};

/// The snapshot of the configured remote source (`source.url`): its tracked branch's newest
/// commit, or `rev`, fetched into the state folder's mirror as a reconcile would.
pub fn configured_snapshot(settings: &Settings, rev: Option<&str>) -> anyhow::Result<Snapshot> {
    let mut source = crate::components::make_source(settings)?;
    let tip = source
        .latest()
        .with_context(|| format!("could not read {}", source.describe()))?;
    let rev = rev.unwrap_or(&tip.revision.sha);
    olo_reconciler::snapshot::from_commit(&tip.repo, rev)
        .with_context(|| format!("could not read revision {rev} of {}", source.describe()))
}

pub async fn plan(
    settings: &Settings,
    snapshot: Snapshot,
    format: PlanFormat,
) -> anyhow::Result<ExitCode> {
    let revision = snapshot.revision.clone();
    let (files, repo) = match desired(snapshot, &settings.render)? {
        Desired::Invalid { diagnostics } => {
            print!("{}", olo_schema::diagnostic::to_text(&diagnostics));
            tracing::error!("the repository is invalid: nothing to plan");
            return Ok(ExitCode::from(1));
        }
        Desired::Valid { files, repo, .. } => (files, repo),
    };
    let (settings, _empty_state) = without_new_state(settings)?;
    let settings = &settings;
    let engine = engine(settings, open_store(settings).await?, None).await?;
    let plan = engine
        .plan_desired(revision.as_deref(), &files, &repo, Observe::Full)
        .await
        .map_err(|e| match e {
            olo_reconciler::Error::Lakehouse(_) => anyhow::Error::from(e)
                .context("could not read the lakehouse (settings: [lakehouse])"),
            e => e.into(),
        })?;
    match format {
        PlanFormat::Text => print!("{}", report::text(&plan, true)),
        PlanFormat::Markdown => print!("{}", report::markdown(&plan)),
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
    }
    Ok(if plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The settings `olo plan` reads the live state with. A plan never creates state: a state store or
/// SQL catalog file that does not exist yet (a first `olo plan` in a config repository) is read as
/// an empty one (nothing is live: everything is a create) in a temporary folder, removed when the
/// returned guard drops, instead of being created where the command runs.
fn without_new_state(settings: &Settings) -> anyhow::Result<(Settings, Option<tempfile::TempDir>)> {
    let mut settings = settings.clone();
    let dir = &settings.state.dir;
    let new_store = settings.state.database.is_none() && !dir.join("state.db").exists();
    let new_catalog = settings.lakehouse.catalog == crate::settings::CatalogKind::Sql
        && settings.lakehouse.sql_database.is_none()
        && !dir.join("iceberg-catalog.db").exists();
    if !new_store && !new_catalog {
        return Ok((settings, None));
    }
    tracing::info!(
        "no state in {} yet: planning against an empty live state",
        dir.display()
    );
    let empty = tempfile::tempdir().context("could not create a temporary folder")?;
    if new_store {
        settings.state.database = Some("sqlite::memory:".into());
    }
    if new_catalog {
        let file = empty.path().join("iceberg-catalog.db");
        settings.lakehouse.sql_database = Some(format!("sqlite://{}?mode=rwc", file.display()));
    }
    Ok((settings, Some(empty)))
}

/// Entries per page of a jsonl export.
const EXPORT_PAGE: u32 = 1000;

pub async fn audit(
    settings: &Settings,
    limit: Option<u32>,
    format: AuditFormat,
) -> anyhow::Result<ExitCode> {
    if format == AuditFormat::Jsonl {
        anyhow::ensure!(
            limit.is_none(),
            "--format jsonl exports every entry: leave out --limit, or use --format json for the \
             newest entries"
        );
        return export_audit(settings).await;
    }
    let store = open_store(settings).await?;
    for e in store.audit(limit.unwrap_or(50), None).await? {
        if format == AuditFormat::Json {
            println!("{}", serde_json::to_string(&e)?);
        } else {
            let rev = e
                .revision
                .as_deref()
                .map(olo_reconciler::engine::short)
                .unwrap_or("-");
            println!(
                "{}  {:<12} {}  {}",
                e.at.format("%Y-%m-%d %H:%M:%S"),
                rev,
                e.actor,
                olo_reconciler::audit::sentence(&e)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The whole audit log, oldest first, one JSON object per line. A reader that stops early
/// (`| head`) ends the export without an error.
async fn export_audit(settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut after = None;
    let written = async {
        loop {
            let page = store.audit_oldest_first(EXPORT_PAGE, after).await?;
            for e in &page {
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            }
            match page.last() {
                Some(last) if page.len() == EXPORT_PAGE as usize => after = Some(last.id),
                _ => break,
            }
        }
        out.flush()?;
        anyhow::Ok(())
    }
    .await;
    match written {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.context("could not export the audit log")),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

pub async fn status(settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let branch = settings.tracked_branch();
    // Which store answered: a status read from the wrong one (no --config) looks just as sure.
    let read_from = format!(
        "  state store:    {}",
        olo_reconciler::store::redacted_url(&settings.database_url())
    );
    let Some(s) = store.branch_status(&branch).await? else {
        println!("{branch}: never reconciled");
        println!("{read_from}");
        return Ok(ExitCode::SUCCESS);
    };
    println!("{branch}: {}", s.state.as_str());
    println!(
        "  last attempted: {}",
        s.last_attempted.as_deref().unwrap_or("-")
    );
    println!(
        "  last applied:   {}",
        s.last_applied.as_deref().unwrap_or("-")
    );
    println!("  updated:        {}", s.updated_at.to_rfc3339());
    println!("{read_from}");
    if let Some(m) = s.message {
        println!("  {m}");
    }
    // Every diagnostic of the invalid commit, as `olo validate` prints them.
    let diagnostics: Vec<olo_schema::Diagnostic> =
        serde_json::from_value(s.diagnostics).unwrap_or_default();
    for d in &diagnostics {
        println!("  {d}");
    }
    Ok(if s.state == olo_reconciler::store::SyncState::Stalled {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
