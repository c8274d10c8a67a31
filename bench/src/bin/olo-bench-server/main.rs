//! Benchmarks of `olo serve` as a process, driven over HTTP on loopback:
//!
//! 1. push to DAG: a signed `push` webhook for a fresh commit that changes one job, until that
//!    job's DAG file holds the change (and whether a 300 ms debounce of the daemon is in it);
//! 2. webhook throughput: C connections sending signed ~7 KB pushes for an untracked branch
//!    (each one verified, recorded, parsed and answered 202) for D seconds;
//! 3. the runs list (`GET /api/v1/runs`, default page) at a constant open-loop request rate, with
//!    latency measured from each request's scheduled start (no coordinated omission);
//!
//! and before them (0.) the same runs list at the same rate while the daemon's first reconcile
//! of the whole repository runs (cold: every DAG file rendered and written), which shows whether
//! a reconcile holds up the API.
//!
//! Used by `scripts/bench-server.sh`.
//!
//!     target/release/olo-bench-server [--olo target/release/olo] [--json out.json]

mod api_rate;
mod daemon;
mod lineage;
mod pages;
mod percentiles;
mod push;
mod push_webhook;
mod report;
mod setup;
mod soak;
mod webhook_throughput;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context as _};
use clap::Parser;

use daemon::Daemon;

const BRANCH: &str = "main";

#[derive(Parser)]
#[command(
    about = "Measure a running `olo serve` over HTTP: push-to-DAG latency, webhook throughput, API latency at a fixed rate",
    after_help = "Progress goes to stderr, the summary to stdout. The client runs on the same machine as the daemon."
)]
struct Args {
    /// The olo binary (default: `olo` next to this binary, else target/release/olo).
    #[arg(long)]
    olo: Option<PathBuf>,
    /// Workspaces of the generated repository.
    #[arg(long, default_value_t = 10)]
    workspaces: usize,
    /// Jobs per workspace.
    #[arg(long, default_value_t = 100)]
    jobs: usize,
    /// Seed of the generated repository.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Pushes of the push-to-DAG benchmark (one commit changing one job each).
    #[arg(long, default_value_t = 200)]
    pushes: usize,
    /// Concurrent connections of the webhook throughput benchmark.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of the webhook throughput benchmark.
    #[arg(long, default_value_t = 10.0)]
    webhook_seconds: f64,
    /// Runs seeded into the state store before the daemon starts.
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    /// Requests per second of the API benchmark (open loop).
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Seconds of the API benchmark.
    #[arg(long, default_value_t = 10.0)]
    api_seconds: f64,
    /// Sequential requests per page of the dashboard benchmark (after 5 unmeasured ones).
    #[arg(long, default_value_t = 100)]
    page_requests: usize,
    /// OpenLineage events of the lineage benchmark (each shows 4 edges: 25,000 events make a
    /// graph of 100,000 edges).
    #[arg(long, default_value_t = 25_000)]
    lineage_events: usize,
    /// Depth-5 graph queries of the lineage benchmark (one connection, in a row).
    #[arg(long, default_value_t = 200)]
    lineage_queries: usize,
    /// Instead of the benchmarks: a soak of this many minutes (a steady mix of commits, webhooks,
    /// API reads and OpenLineage events; resident memory and open files sampled every 10 s).
    #[arg(long)]
    soak_minutes: Option<f64>,
    /// Folder for the repository, the state and the daemon's log (default: a new folder under
    /// the system's temporary folder, removed at the end unless --keep).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Keep the work folder.
    #[arg(long)]
    keep: bool,
    /// Also write the figures as JSON into this file (`-`: the JSON to stdout, the summary to
    /// stderr).
    #[arg(long)]
    json: Option<PathBuf>,
}

fn default_olo() -> PathBuf {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("olo")));
    match sibling {
        Some(p) if p.is_file() => p,
        _ => PathBuf::from("target/release/olo"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.workspaces > 0 && args.jobs > 0,
        "--workspaces and --jobs must be at least 1"
    );
    ensure!(args.connections > 0, "--connections must be at least 1");
    ensure!(args.rate > 0.0, "--rate must be positive");
    let olo = args.olo.clone().unwrap_or_else(default_olo);
    ensure!(
        olo.is_file(),
        "no olo binary at {} (build it with `cargo build --release -p olo`, or pass --olo)",
        olo.display()
    );

    let work = match &args.work {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("olo-bench-server-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = run(&args, &olo, &work).await;
    if args.keep {
        eprintln!("kept {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

async fn run(args: &Args, olo: &Path, work: &Path) -> anyhow::Result<()> {
    let repo = work.join("repo");
    let state = work.join("state");
    ensure!(
        !repo.exists() && !state.exists(),
        "{} already holds a repo/ or state/ folder; pick an empty --work folder",
        work.display()
    );
    std::fs::create_dir_all(&state)?;
    setup::prepare_repo(args, &repo)?;
    setup::seed_runs(args, &state).await?;

    let http = reqwest::Client::new();
    let mut daemon = Daemon::spawn(olo, &repo, &state).await?;
    if let Some(minutes) = args.soak_minutes {
        daemon.wait_ready(&http).await?;
        eprintln!("soak: {minutes} minutes of commits, webhooks, API reads and OpenLineage events");
        let figures = soak::soak(args, &repo, &daemon, minutes).await?;
        let exited = daemon.child.try_wait()?;
        ensure!(
            exited.is_none(),
            "olo serve exited during the soak ({exited:?}):\n{}",
            daemon.log_tail()
        );
        print!("{}", soak::report(&figures));
        return Ok(());
    }
    eprintln!(
        "0/5 GET /api/v1/runs at {} req/s while the first (cold) reconcile runs",
        args.rate
    );
    let cold = api_rate::during_cold_reconcile(args, &daemon, &http).await?;
    daemon.wait_ready(&http).await?;

    eprintln!(
        "1/5 push to DAG: {} pushes, one job changed each",
        args.pushes
    );
    let push = push::push_to_dag(args, &repo, &daemon, &http).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    eprintln!(
        "2/5 webhook throughput: {} connections for {} s",
        args.connections, args.webhook_seconds
    );
    let hooks = webhook_throughput::webhook_throughput(args, &daemon).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    eprintln!(
        "3/5 GET /api/v1/runs at {} req/s for {} s (open loop)",
        args.rate, args.api_seconds
    );
    let api = api_rate::api_rate(args, &daemon, &http).await?;
    eprintln!(
        "4/5 dashboard pages, {} requests each in a row",
        args.page_requests
    );
    let pages = pages::dashboard(args, &daemon, &http).await?;
    eprintln!(
        "5/5 lineage: {} OpenLineage events over {} connections, then {} depth-5 graph queries",
        args.lineage_events, args.connections, args.lineage_queries
    );
    let lineage = lineage::lineage_bench(args, &daemon).await?;
    // It should still be running; it is stopped when dropped.
    let exited = daemon.child.try_wait()?;
    drop(daemon);

    report::report(
        args,
        olo,
        report::Figures {
            cold,
            push,
            hooks,
            api,
            pages,
            lineage,
            exited,
        },
    )
}
