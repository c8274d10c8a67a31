//! The command line olo takes: every command, its arguments and their help (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::client;

#[derive(Parser)]
#[command(
    name = "olo",
    version,
    about = "OpenLake Orchestrator: a GitOps control plane for a lakehouse",
    long_about = "OpenLake Orchestrator keeps every lakehouse workspace, job, Iceberg namespace and \
access rule as YAML in one Git repository, validates every commit, renders it into Airflow DAGs \
and Trino/Iceberg configuration, and applies it with an audit trail.\n\n\
Settings come from defaults, then the --config TOML file, then OLO_ environment variables \
(OLO_SOURCE__URL, OLO_APPLY__PRUNE, ...); see docs/settings.md."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        /// Settings file (TOML); its `[render]` section and `OLO_RENDER__*` variables shape the
        /// files exactly as `olo apply` would.
        #[arg(long, env = "OLO_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Show what applying a config repository would change in the live state, without changing it.
    ///
    /// Compares the rendered repository with the configured DAG folder / rendered branch and
    /// olo's inventory. Exit code 0 when nothing would change, 2 when something would, 1 on error
    /// (like `terraform plan -detailed-exitcode`).
    Plan {
        /// The config repository folder (default: the configured source, the newest commit of
        /// `source.url`'s tracked branch or the `source.path` folder of --config/OLO_SOURCE__PATH;
        /// with neither, the current folder, as `olo validate`).
        path: Option<PathBuf>,
        /// Plan this git revision, read from git objects.
        #[arg(long)]
        rev: Option<String>,
        /// Settings file (TOML).
        #[arg(long, env = "OLO_CONFIG")]
        config: Option<PathBuf>,
        /// text (summary and diffs), markdown (as on pull requests) or json.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Run one reconcile of the configured source (newest commit of the tracked branch) and exit.
    ///
    /// Exit code 0 when the branch is Ready afterwards, 1 when the commit is invalid, the apply
    /// failed or on any other error. Beside an `olo serve` on the same state folder it stops at
    /// once (exit 1): ask the daemon to reconcile instead (`POST /api/v1/reconcile`).
    ///
    /// An empty state store beside files olo rendered (a lost or replaced store) is refused (exit
    /// 1): restore the store (`olo restore`), or pass --adopt.
    Apply {
        /// A local config repository to apply instead of the configured source (`source.path`,
        /// `source.url`).
        path: Option<PathBuf>,
        /// Settings file (TOML).
        #[arg(long, env = "OLO_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        start: StartArgs,
    },
    /// Run the daemon: follow the tracked branch (polling, GitHub push webhooks, the API, and
    /// file changes for a local path), validate every new commit, and apply each valid one. An
    /// invalid commit is recorded and never applied; the last good state stays live. Pull
    /// requests (GitHub webhook) get a plan comment and an `olo/plan` commit status.
    ///
    /// Serves on server.listen (default 127.0.0.1:8080): POST /webhooks/github, the REST API
    /// under /api/v1 (OpenAPI at /api/v1/openapi.json), /healthz, /readyz and /metrics.
    ///
    /// With no settings: the bundled examples-repo, SQLite at ./.olo/state.db, DAGs in ./.olo/dags,
    /// Trino files in ./.olo/trino; no Airflow, no GitHub.
    ///
    /// It does not start on an empty state store beside files olo rendered (DAG files and Trino
    /// catalogs with olo's header): the store was lost or replaced, and olo would forget what it
    /// owns. Restore the store (`olo restore`), or pass --adopt. See docs/server.md.
    Serve {
        /// Settings file (TOML).
        #[arg(long, env = "OLO_CONFIG")]
        config: Option<PathBuf>,
        /// Reconcile once and exit (exit 1 when not Ready afterwards).
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        start: StartArgs,
    },
    /// Make an API token: prints the token (give it to the caller, once) and the settings entry
    /// with its SHA-256 (olo keeps only the hash).
    Token {
        /// Who will hold it: the identity recorded in the audit log for its calls.
        #[arg(long)]
        name: String,
    },
    /// Print the audit log: every applied revision (author, committer, signed, plan summary,
    /// outcome) and every rejected commit, newest first.
    ///
    /// `--format jsonl` exports the whole log instead: every entry, oldest first, one JSON object
    /// per line (id, at, actor, action, target, revision, details), read page by page.
    Audit {
        /// Settings file (TOML).
        #[arg(long, env = "OLO_CONFIG")]
        config: Option<PathBuf>,
        /// How many entries, newest first [default: 50] (text and json; jsonl exports them all).
        #[arg(long)]
        limit: Option<u32>,
        /// text, json (the newest entries, one JSON object per line) or jsonl (every entry,
        /// oldest first, one JSON object per line: for export).
        #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
        format: AuditFormat,
    },
    /// Write a backup of the state store to one file, while olo keeps running.
    ///
    /// The backup holds every table olo's migrations create (revisions, plans, audit log,
    /// inventory of owned resources, branch status, runs and task instances, lineage events and
    /// edges, webhook deliveries), read in one consistent snapshot, from SQLite or PostgreSQL
    /// (state.database). The file is JSON lines: a header (backend, schema version, tables and
    /// their columns), one line per row, and a trailer with the rows of each table and a SHA-256
    /// of all lines before it. It is written beside FILE and renamed onto FILE once complete.
    /// Progress (rows per table) goes to stderr. Check a file with `olo restore --from FILE
    /// --check`; see docs/operations/backup-restore.md.
    Backup {
        /// The backup file to write (an existing file is replaced once the new one is complete).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Settings file (TOML): state.database names the store.
        #[arg(long, env = "OLO_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Restore the state store from a file `olo backup` wrote. Stop every `olo serve` on the
    /// store first.
    ///
    /// The whole file is checked first: a truncated or edited file (row counts or SHA-256 that
    /// do not match) is refused before the store is touched. The store must be empty: a new
    /// SQLite file or a new PostgreSQL database, where olo creates its tables at the backup's
    /// schema version (a backup of a newer olo's schema is refused; an older one is restored,
    /// then upgraded). --force restores into a store holding rows by deleting them first. All
    /// rows load in one transaction (a failure part-way leaves the store as it was), and the id
    /// sequences are set past every restored id. A backup of one backend restores into the
    /// other (SQLite to PostgreSQL and back).
    Restore {
        /// The backup file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Settings file (TOML): state.database names the store.
        #[arg(long, env = "OLO_CONFIG")]
        config: Option<PathBuf>,
        /// Restore into a store that holds rows: delete olo's rows and load the backup's, in
        /// one transaction.
        #[arg(long)]
        force: bool,
        /// Only check the file (complete, unchanged, of a schema this olo can restore) and print
        /// what it holds; the store is not touched.
        #[arg(long, conflicts_with = "force")]
        check: bool,
    },
    /// Print the sync status of the tracked branch: Ready, Reconciling or Stalled, with the last
    /// attempted and last applied revisions, the diagnostics of an invalid commit, and the state
    /// store read. Exit 1 when Stalled, 0 otherwise.
    Status {
        /// Settings file (TOML).
        #[arg(long, env = "OLO_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Trigger a run of a job through a running olo's API, and with --wait follow it to the end.
    ///
    /// The run stands for --logical-date (`{{ ds }}`), now by default. With --wait it prints each
    /// task's state as it changes and exits 0 when the run succeeded, 1 when it failed; with
    /// --logs it then prints every task's log. Exit 2 when olo refused the run (the message says
    /// why) or could not be reached. Needs an operator's token (--token or OLO_TOKEN).
    Run {
        /// The job, as <workspace>/<job> (e.g. sales/orders_daily).
        job: String,
        /// The run's conf as a JSON object: declared params by name (checked against their types).
        #[arg(long)]
        conf: Option<String>,
        /// The logical date: RFC 3339 with an offset, or a date (midnight UTC).
        #[arg(long)]
        logical_date: Option<String>,
        /// A note shown beside the run in Airflow.
        #[arg(long)]
        note: Option<String>,
        /// Follow the run until it finishes; the exit code says how it ended.
        #[arg(long)]
        wait: bool,
        /// With --wait: print each task's log when the run has finished.
        #[arg(long, requires = "wait")]
        logs: bool,
        /// Output format: text (lines as the run goes) or json (the run at the end).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Backfill a job over a date range through a running olo's API: Airflow makes a run for each
    /// interval of the job's schedule whose logical date lies from --from to --to, and olo
    /// records and follows each.
    ///
    /// With --wait it follows every run to its end and exits 0 when all succeeded, 1 otherwise.
    /// Exit 2 when olo refused the backfill (the message says why: a paused job, one backfill
    /// at a time per job, ...) or could not be reached. Needs an operator's token.
    Backfill {
        /// The job, as <workspace>/<job> (e.g. sales/orders_daily).
        job: String,
        /// The first logical date: a date (midnight UTC) or RFC 3339 with an offset.
        #[arg(long)]
        from: String,
        /// The last logical date (included).
        #[arg(long)]
        to: String,
        /// Every run's conf as a JSON object (checked against the job's params).
        #[arg(long)]
        conf: Option<String>,
        /// An interval that already has a run: leave it (none), run it again when it failed
        /// (failed), or always (completed).
        #[arg(long, default_value = "none", value_parser = ["none", "failed", "completed"])]
        reprocess: String,
        /// How many of the backfill's runs Airflow runs at once (1 to 100).
        #[arg(long, default_value_t = 1)]
        max_active_runs: u32,
        /// Run the newest interval first.
        #[arg(long)]
        backwards: bool,
        /// Follow every run until it finishes; the exit code says how they ended.
        #[arg(long)]
        wait: bool,
        /// Output format: text (lines as the runs go) or json (the backfill and its runs).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Re-run the failed tasks of a finished run (Airflow clears them and queues the run again);
    /// with --wait follow it to its end (exit 0 success, 1 failed). Needs an operator's token.
    Clear {
        /// olo's run id (from `olo run` or the dashboard).
        run: i64,
        /// Follow the run until it finishes again; the exit code says how it ended.
        #[arg(long)]
        wait: bool,
        /// With --wait: print each task's log when the run has finished.
        #[arg(long, requires = "wait")]
        logs: bool,
        /// Output format: text or json.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Stop a run that has not finished (Airflow marks it failed). Needs an operator's token.
    Cancel {
        /// olo's run id (from `olo run` or the dashboard).
        run: i64,
        /// Output format: text or json.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Write a job through a running olo's API: it becomes a commit in the config repository, or
    /// a pull request (`api.writes`). Needs an operator's token.
    Job {
        #[command(subcommand)]
        action: JobAction,
    },
    /// List the live jobs of every workspace the token may read (or of one workspace): schedule,
    /// paused or active, task count.
    Jobs {
        /// Only this workspace's jobs.
        workspace: Option<String>,
        /// Output format: text (a table) or json.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// List runs, newest first: state, logical date, what triggered them and who.
    Runs {
        /// Only this job's runs, as <workspace>/<job>.
        #[arg(long)]
        job: Option<String>,
        /// Only runs in this state (queued, running, success, failed).
        #[arg(long)]
        state: Option<String>,
        /// At most this many runs (up to 500).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Output format: text (a table) or json.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Print a run's task logs from Airflow: one task's (its newest try, or --try), or every
    /// task's newest try.
    Logs {
        /// olo's run id (from `olo run`, `olo runs` or the dashboard).
        run: i64,
        /// Only this task.
        task: Option<String>,
        /// This try of the task instead of the newest.
        #[arg(long = "try", requires = "task")]
        try_number: Option<i64>,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Run one SQL statement in Trino as yourself, with the repository's access rules applied
    /// (olo's SQL runner: read-only statements, rows capped by `[trino] max_rows`).
    Sql {
        /// The statement, e.g. 'SELECT * FROM lake."sales.gold".revenue LIMIT 10'.
        sql: String,
        /// Output format: text (a table) or json (columns and rows).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Show a job's lineage: where what it declares (task inputs/outputs) and what its
    /// OpenLineage events show differ, and what its outputs feed downstream.
    Lineage {
        /// The job, as <workspace>/<job>.
        job: String,
        /// Output format: text or json.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Print the settings olo would run with: the defaults, then the settings file, then the
    /// `OLO_<SECTION>__<KEY>` environment variables, checked as `olo serve` checks them at
    /// start. Exit 0 when they are valid, 2 with the reason when not. Secrets are never in
    /// settings (only the names of the environment variables that hold them).
    Settings {
        /// Settings file (TOML).
        #[arg(long, env = "OLO_CONFIG")]
        config: Option<PathBuf>,
        /// Output format: text (TOML, as a settings file) or json.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Print the JSON Schema (draft 2020-12) of a document kind, for editors and other tools.
    Schema {
        /// Which document: job (workspaces/<ws>/jobs/<job>.yaml), workspace
        /// (workspaces/<ws>/workspace.yaml) or repository (olo.yaml).
        #[arg(value_enum)]
        kind: SchemaKind,
    },
}

/// How `olo serve` and `olo apply` treat a state store that lost olo's earlier work.
#[derive(clap::Args, Clone, Copy)]
pub(crate) struct StartArgs {
    /// On an empty state store beside files olo rendered (a lost or replaced store): take every
    /// file with olo's header (DAG files and Trino catalogs) back into the inventory, with the
    /// content hash and revision its header names, so that olo owns them again and prunes them
    /// once they leave the repository. Files without olo's header are never adopted. Does
    /// nothing on a store that holds olo's work.
    #[arg(long)]
    pub(crate) adopt: bool,
}

#[derive(Subcommand)]
pub(crate) enum JobAction {
    /// Create or replace a job from its file (YAML, or JSON with a .json name): the job's name is
    /// the document's metadata.name, its workspace the folder of workspaces/<ws>/jobs/ or
    /// --workspace. olo validates the repository with it and commits it as you.
    Apply {
        /// The job's file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// The workspace (default: from the file's path).
        #[arg(long)]
        workspace: Option<String>,
        /// Refuse (409) unless the tracked branch is still at this revision.
        #[arg(long = "if-match")]
        if_match: Option<String>,
        /// Output format: text or json.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Delete a job (its file) through the API, as a commit or a pull request.
    Delete {
        /// <workspace>/<job>
        job: String,
        /// Refuse (409) unless the tracked branch is still at this revision.
        #[arg(long = "if-match")]
        if_match: Option<String>,
        /// Output format: text or json.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        api: client::ApiArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuditFormat {
    Text,
    Json,
    Jsonl,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PlanFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum SchemaKind {
    Job,
    Workspace,
    Repository,
}
