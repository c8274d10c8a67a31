//! `olo`: the command line. Wiring only: parse arguments, call the crates, print, exit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use olo_schema::json_schema::DocKind;
use olo_schema::{Snapshot, Validation};

mod output;
mod serve;

#[derive(Parser)]
#[command(
    name = "olo",
    version,
    about = "OpenLake Orchestrator: a GitOps control plane for a lakehouse",
    long_about = "OpenLake Orchestrator keeps every lakehouse workspace, job, Iceberg namespace and \
access rule as YAML in one Git repository, validates every commit, and renders it into Airflow DAGs \
and Trino/Iceberg configuration.\n\nExit codes: 0 success, 1 invalid configuration, 2 usage or I/O error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config repository: YAML, JSON Schema and semantic checks, every error at once.
    ///
    /// Prints one diagnostic per line as `path:line:col: error: message` (paths relative to the
    /// repository root). Exit code 0 when valid, 1 when invalid, 2 on usage or I/O errors.
    Validate {
        /// The config repository folder (holding olo.yaml and workspaces/).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Read the files of this git revision (commit, branch, tag) from git objects instead of
        /// the working tree.
        #[arg(long)]
        rev: Option<String>,
        /// Output format: text (one line per diagnostic) or json (an array).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Render a valid config repository into the files the platform runs on.
    ///
    /// Writes DIR/dags/<workspace>__<job>.py (one Airflow DAG per job) with the files its tasks
    /// run under DIR/dags/olo_assets/, DIR/trino/catalog/<catalog>.properties, DIR/trino/rules.json,
    /// DIR/iceberg/namespaces.json and DIR/manifest.json. The same revision always renders the
    /// same bytes. An invalid repository renders nothing (exit 1, with the diagnostics of
    /// `olo validate`).
    Render {
        /// The config repository folder.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Render this git revision, read from git objects.
        #[arg(long)]
        rev: Option<String>,
        /// Output folder (created if missing; a folder from an earlier render is updated and its
        /// stale files removed; any other non-empty folder is refused).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the daemon: watch a config repository, validate every change, and render each valid
    /// state into the state folder (DAGs in STATE_DIR/dags, Trino files in STATE_DIR/trino,
    /// Iceberg namespaces in STATE_DIR/iceberg). An invalid change is reported and never applied.
    Serve {
        /// The config repository to watch.
        #[arg(long, default_value = "examples-repo", env = "OLO_REPO")]
        repo: PathBuf,
        /// Where olo keeps its state and rendered files.
        #[arg(long, default_value = ".olo", env = "OLO_STATE_DIR")]
        state_dir: PathBuf,
        /// How often to look for changes, in seconds.
        #[arg(long, default_value_t = 2, env = "OLO_POLL_SECONDS")]
        poll_seconds: u64,
        /// Reconcile once and exit (exit 1 when the repository is invalid).
        #[arg(long)]
        once: bool,
    },
    /// Print the JSON Schema (draft 2020-12) of a document kind, for editors and other tools.
    Schema {
        /// Which document: job (workspaces/<ws>/jobs/<job>.yaml), workspace
        /// (workspaces/<ws>/workspace.yaml) or repository (olo.yaml).
        #[arg(value_enum)]
        kind: SchemaKind,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaKind {
    Job,
    Workspace,
    Repository,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { path, rev, format } => {
            let snapshot = read_snapshot(&path, rev.as_deref())?;
            let validation = olo_schema::validate(snapshot);
            print_diagnostics(&validation, format)?;
            summarize(&path, &validation);
            Ok(exit_for(&validation))
        }
        Command::Render { path, rev, out } => {
            let snapshot = read_snapshot(&path, rev.as_deref())?;
            let validation = olo_schema::validate(snapshot);
            let Some(repo) = &validation.repo else {
                print_diagnostics(&validation, Format::Text)?;
                summarize(&path, &validation);
                return Ok(ExitCode::from(1));
            };
            print_diagnostics(&validation, Format::Text)?;
            let rendered = olo_templates::render(repo, &olo_templates::RenderSettings::default())
                .context("could not render the repository")?;
            let written = output::write_tree(&out, &rendered.files)?;
            eprintln!(
                "rendered {} files into {} ({} DAGs, {} changed, {} removed)",
                rendered.files.len(),
                out.display(),
                rendered
                    .files
                    .keys()
                    .filter(|p| p.starts_with("dags/")
                        && p.ends_with(".py")
                        && !p.starts_with("dags/olo_assets/"))
                    .count(),
                written.changed,
                written.removed
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            repo,
            state_dir,
            poll_seconds,
            once,
        } => {
            let opts = serve::ServeOptions {
                repo,
                state_dir,
                interval: std::time::Duration::from_secs(poll_seconds.max(1)),
                once,
            };
            let healthy = serve::run(&opts)?;
            Ok(if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Schema { kind } => {
            let kind = match kind {
                SchemaKind::Job => DocKind::Job,
                SchemaKind::Workspace => DocKind::Workspace,
                SchemaKind::Repository => DocKind::Repository,
            };
            print!("{}", kind.schema_source());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_snapshot(path: &Path, rev: Option<&str>) -> anyhow::Result<Snapshot> {
    match rev {
        Some(rev) => olo_reconciler::snapshot::from_commit(path, rev)
            .with_context(|| format!("could not read revision {rev} of {}", path.display())),
        None => olo_reconciler::snapshot::from_worktree(path)
            .with_context(|| format!("could not read {}", path.display())),
    }
}

fn print_diagnostics(validation: &Validation, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Text => print!(
            "{}",
            olo_schema::diagnostic::to_text(&validation.diagnostics)
        ),
        Format::Json => println!("{}", serde_json::to_string_pretty(&validation.diagnostics)?),
    }
    Ok(())
}

fn summarize(path: &Path, validation: &Validation) {
    let errors = validation.errors();
    let warnings = validation.diagnostics.len() - errors;
    match &validation.repo {
        Some(repo) => {
            let jobs: usize = repo.workspaces.values().map(|w| w.jobs.len()).sum();
            eprintln!(
                "{}: valid ({} workspaces, {jobs} jobs{})",
                path.display(),
                repo.workspaces.len(),
                if warnings > 0 {
                    format!(", {warnings} warnings")
                } else {
                    String::new()
                }
            );
        }
        None => eprintln!(
            "{}: invalid ({errors} error{}{})",
            path.display(),
            if errors == 1 { "" } else { "s" },
            if warnings > 0 {
                format!(", {warnings} warnings")
            } else {
                String::new()
            }
        ),
    }
}

fn exit_for(validation: &Validation) -> ExitCode {
    if validation.repo.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
