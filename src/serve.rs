//! `olo serve` as it stands today: the local-path source loop. It watches a config repository,
//! validates every change, and renders each valid state into the state folder (DAGs, Trino files,
//! Iceberg namespaces); an invalid state is reported and never applied, so the last good one
//! stays live. The HTTP server, git sources and the state store arrive with the server and
//! reconciler issues.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

pub struct ServeOptions {
    pub repo: PathBuf,
    pub state_dir: PathBuf,
    pub interval: Duration,
    pub once: bool,
}

pub fn run(opts: &ServeOptions) -> anyhow::Result<bool> {
    let out = &opts.state_dir;
    eprintln!(
        "olo serve: watching {} (every {:?}), rendering into {}",
        opts.repo.display(),
        opts.interval,
        out.display()
    );
    let mut last_seen: Option<String> = None;
    let mut healthy = true;
    loop {
        let snapshot = olo_reconciler::snapshot::from_worktree(&opts.repo)
            .with_context(|| format!("could not read {}", opts.repo.display()))?;
        let fingerprint = fingerprint(&snapshot);
        if last_seen.as_deref() != Some(fingerprint.as_str()) {
            last_seen = Some(fingerprint.clone());
            healthy = reconcile(snapshot, out, &fingerprint[..12])?;
        }
        if opts.once {
            return Ok(healthy);
        }
        std::thread::sleep(opts.interval);
    }
}

fn reconcile(snapshot: olo_schema::Snapshot, out: &Path, id: &str) -> anyhow::Result<bool> {
    let validation = olo_schema::validate(snapshot);
    let Some(repo) = &validation.repo else {
        print!(
            "{}",
            olo_schema::diagnostic::to_text(&validation.diagnostics)
        );
        eprintln!(
            "state {id}: Stalled: {} errors; the last valid state stays live",
            validation.errors()
        );
        return Ok(false);
    };
    let rendered = olo_templates::render(repo, &olo_templates::RenderSettings::default())
        .context("could not render the repository")?;
    let written = crate::output::write_tree(out, &rendered.files)?;
    let jobs: usize = repo.workspaces.values().map(|w| w.jobs.len()).sum();
    eprintln!(
        "state {id}: Ready: {} workspaces, {jobs} jobs; {} files changed, {} removed",
        repo.workspaces.len(),
        written.changed,
        written.removed
    );
    Ok(true)
}

/// A content hash of the whole snapshot, to notice changes.
fn fingerprint(snapshot: &olo_schema::Snapshot) -> String {
    let mut all = Vec::new();
    for (path, entry) in &snapshot.files {
        all.extend_from_slice(path.as_bytes());
        all.push(0);
        match entry {
            olo_schema::Entry::File(b) => all.extend_from_slice(b),
            olo_schema::Entry::Symlink(t) => all.extend_from_slice(t.as_bytes()),
        }
        all.push(0);
    }
    olo_templates::render::sha256_hex(&all)
}
