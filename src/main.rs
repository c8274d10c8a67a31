//! `olo`: the command line. Wiring only: parse arguments, call the crates, print, exit.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use olo_reconciler::text::count;
use olo_schema::json_schema::DocKind;
use olo_schema::{Snapshot, Validation};

pub(crate) use args::{AuditFormat, PlanFormat, StartArgs};
use args::{Cli, Command, Format, JobAction, SchemaKind};

mod args;
mod backup;
mod branch_lock;
mod cli_config;
mod client;
mod commands;
mod components;
mod inspect;
mod job_write;
mod lakehouse;
mod output;
mod process;
mod serve;
mod settings;

use settings::{LogFormat, Settings};

// Many small allocations across threads (YAML trees, rendered files): mimalloc returns memory
// and scales across threads better than the system allocator here (BENCHMARKS.md, section 4).
// Built without transparent huge pages (the `no_thp` feature): with them the kernel backs each
// touched 2 MiB of the heap whole: ~35 MiB more peak RSS, and a cold reconcile ~10% slower
// (the kernel zeroing whole huge pages). Hosts with THP set to `always` also need MIMALLOC_ALLOW_THP=0 (the
// container image sets it).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let on_error = cli.command.error_exit_code();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(on_error)
        }
    }
}

/// What `olo serve` and `olo apply` log goes to stderr: readable lines by default, one JSON object
/// per line with `[log] format = "json"` or `OLO_LOG_FORMAT=json`; `RUST_LOG` filters (default:
/// olo's info, others' warnings). What commands print for people (plans, diagnostics, status) is
/// output, not logs. Called once, as soon as the format is known.
fn init_logs(format: LogFormat) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,olo=info,olo_reconciler=info,olo_server=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
    }
}

/// The settings (defaults, `config`, `OLO_` variables), and the logs in their format.
fn load_settings(config: Option<&Path>) -> anyhow::Result<Settings> {
    let settings = Settings::load(config)?;
    init_logs(settings.log.format);
    Ok(settings)
}

impl Command {
    /// The exit code of an error. `olo plan` exits 2 when changes are pending, so its errors (and
    /// those of the commands that reconcile) exit 1; the others document 2 for usage and I/O
    /// errors.
    fn error_exit_code(&self) -> u8 {
        match self {
            Command::Plan { .. } | Command::Apply { .. } | Command::Serve { .. } => 1,
            _ => 2,
        }
    }

    /// Whether the command reads the settings (and so starts the logs in their format).
    fn reads_settings(&self) -> bool {
        matches!(
            self,
            Command::Render { .. }
                | Command::Plan { .. }
                | Command::Apply { .. }
                | Command::Serve { .. }
                | Command::Audit { .. }
                | Command::Backup { .. }
                | Command::Status { .. }
                | Command::Restore { check: false, .. }
        )
    }
}

fn tokio() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if !cli.command.reads_settings() {
        init_logs(LogFormat::from_env());
    }
    match cli.command {
        Command::Validate { path, rev, format } => {
            let snapshot = read_snapshot(&path, rev.as_deref())?;
            let validation = olo_schema::validate(snapshot);
            print_diagnostics(&validation, format)?;
            summarize(&path, &validation);
            Ok(exit_for(&validation))
        }
        Command::Render {
            path,
            rev,
            out,
            config,
        } => {
            let settings = load_settings(config.as_deref())?;
            let snapshot = read_snapshot(&path, rev.as_deref())?;
            let validation = olo_schema::validate(snapshot);
            let Some(repo) = &validation.repo else {
                print_diagnostics(&validation, Format::Text)?;
                summarize(&path, &validation);
                return Ok(ExitCode::from(1));
            };
            print_diagnostics(&validation, Format::Text)?;
            let rendered = olo_templates::render(repo, &settings.render)
                .context("could not render the repository")?;
            let written = output::write_tree(&out, &rendered.files)?;
            let dags = rendered
                .files
                .keys()
                .filter(|p| {
                    p.starts_with("dags/")
                        && p.ends_with(".py")
                        && !p.starts_with("dags/olo_assets/")
                })
                .count();
            eprintln!(
                "rendered {} into {} ({}, {} changed, {} removed)",
                count(rendered.files.len(), "file"),
                out.display(),
                count(dags, "DAG"),
                written.changed,
                written.removed
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            path,
            rev,
            config,
            format,
        } => {
            let settings = load_settings(config.as_deref())?;
            let snapshot = match (path, &settings.source.url) {
                (Some(path), _) => read_snapshot(&path, rev.as_deref())?,
                (None, Some(_)) => commands::configured_snapshot(&settings, rev.as_deref())?,
                // Like `olo validate`: the current folder, unless a source path is configured.
                (None, None)
                    if config.is_some() || std::env::var_os("OLO_SOURCE__PATH").is_some() =>
                {
                    read_snapshot(&settings.source.path, rev.as_deref())?
                }
                (None, None) => read_snapshot(Path::new("."), rev.as_deref())?,
            };
            tokio()?.block_on(commands::plan(&settings, snapshot, format))
        }
        Command::Apply {
            path,
            config,
            start,
        } => {
            let mut settings = load_settings(config.as_deref())?;
            if let Some(path) = path {
                settings.source.path = path;
                settings.source.url = None;
            }
            let ready = tokio()?.block_on(serve::serve(&settings, true, start))?;
            Ok(if ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Serve {
            config,
            once,
            start,
        } => {
            let settings = load_settings(config.as_deref())?;
            let ready = tokio()?.block_on(serve::serve(&settings, once, start))?;
            Ok(if ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Token { name } => {
            let (token, sha256) = olo_server::auth::new_token();
            println!("token (give it to {name}; it is not stored anywhere):\n  {token}\n");
            println!("settings entry:\n[[api.tokens]]\nname = {name:?}\nsha256 = \"{sha256}\"");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            config,
            limit,
            format,
        } => {
            let settings = load_settings(config.as_deref())?;
            tokio()?.block_on(commands::audit(&settings, limit, format))
        }
        Command::Backup { out, config } => {
            let settings = load_settings(config.as_deref())?;
            tokio()?.block_on(backup::backup(&settings, &out))
        }
        Command::Restore {
            from,
            config,
            force,
            check,
        } => {
            if check {
                return tokio()?.block_on(backup::check(&from));
            }
            let settings = load_settings(config.as_deref())?;
            tokio()?.block_on(backup::restore(&settings, &from, force))
        }
        Command::Settings { config, format } => {
            let settings = Settings::load(config.as_deref())?;
            match format {
                Format::Text => print!(
                    "{}",
                    toml::to_string_pretty(&settings).context("printing the settings")?
                ),
                Format::Json => println!("{}", serde_json::to_string_pretty(&settings)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { config } => {
            let settings = load_settings(config.as_deref())?;
            tokio()?.block_on(commands::status(&settings))
        }
        Command::Run {
            job,
            conf,
            logical_date,
            note,
            wait,
            logs,
            format,
            api,
        } => {
            let args = client::RunArgs {
                job,
                conf,
                logical_date,
                note,
                wait,
                logs,
                json: matches!(format, Format::Json),
            };
            tokio()?.block_on(client::run(&api, args))
        }
        Command::Backfill {
            job,
            from,
            to,
            conf,
            reprocess,
            max_active_runs,
            backwards,
            wait,
            format,
            api,
        } => tokio()?.block_on(client::backfill(
            &api,
            client::BackfillArgs {
                job,
                from,
                to,
                conf,
                reprocess,
                max_active_runs,
                backwards,
                wait,
                json: matches!(format, Format::Json),
            },
        )),
        Command::Clear {
            run,
            wait,
            logs,
            format,
            api,
        } => tokio()?.block_on(client::clear(
            &api,
            run,
            wait,
            logs,
            matches!(format, Format::Json),
        )),
        Command::Job {
            action:
                JobAction::Apply {
                    file,
                    workspace,
                    if_match,
                    format,
                    api,
                },
        } => tokio()?.block_on(job_write::apply(
            &api,
            &file,
            workspace.as_deref(),
            if_match.as_deref(),
            matches!(format, Format::Json),
        )),
        Command::Job {
            action:
                JobAction::Delete {
                    job,
                    if_match,
                    format,
                    api,
                },
        } => tokio()?.block_on(job_write::delete(
            &api,
            &job,
            if_match.as_deref(),
            matches!(format, Format::Json),
        )),
        Command::Jobs {
            workspace,
            format,
            api,
        } => tokio()?.block_on(inspect::jobs(
            &api,
            workspace.as_deref(),
            matches!(format, Format::Json),
        )),
        Command::Runs {
            job,
            state,
            limit,
            format,
            api,
        } => tokio()?.block_on(inspect::runs(
            &api,
            job.as_deref(),
            state.as_deref(),
            limit,
            matches!(format, Format::Json),
        )),
        Command::Logs {
            run,
            task,
            try_number,
            api,
        } => tokio()?.block_on(inspect::logs(&api, run, task.as_deref(), try_number)),
        Command::Sql { sql, format, api } => {
            tokio()?.block_on(inspect::sql(&api, &sql, matches!(format, Format::Json)))
        }
        Command::Lineage { job, format, api } => {
            tokio()?.block_on(inspect::lineage(&api, &job, matches!(format, Format::Json)))
        }
        Command::Cancel { run, format, api } => {
            tokio()?.block_on(client::cancel(&api, run, matches!(format, Format::Json)))
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
    let warn = if warnings > 0 {
        format!(", {}", count(warnings, "warning"))
    } else {
        String::new()
    };
    match &validation.repo {
        Some(repo) => {
            let jobs: usize = repo.workspaces.values().map(|w| w.jobs.len()).sum();
            eprintln!(
                "{}: valid ({}, {}{warn})",
                path.display(),
                count(repo.workspaces.len(), "workspace"),
                count(jobs, "job")
            );
        }
        None => eprintln!(
            "{}: invalid ({}{warn})",
            path.display(),
            count(errors, "error")
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
