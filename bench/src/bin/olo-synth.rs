//! Writes a synthetic olo config repository (and optionally the same jobs for dag-factory).
//!
//!     cargo run --release -p olo-bench --bin olo-synth -- --workspaces 100 --jobs 100 --out /tmp/repo

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use olo_bench::{dag_factory, generate, write_files, SynthOptions};

#[derive(Parser)]
#[command(about = "Write a synthetic olo config repository of N workspaces × M jobs")]
struct Args {
    /// Number of workspaces.
    #[arg(long, default_value_t = 10)]
    workspaces: usize,
    /// Jobs per workspace.
    #[arg(long, default_value_t = 10)]
    jobs: usize,
    /// Seed of the shapes (same seed, same files).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Only bash tasks (the shape of the dag-factory comparison).
    #[arg(long)]
    bash_only: bool,
    /// Folder to write the config repository into.
    #[arg(long)]
    out: PathBuf,
    /// Also write the same (bash-only) jobs as dag-factory 1.1 YAML into this folder.
    #[arg(long)]
    dag_factory: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let opts = SynthOptions {
        workspaces: args.workspaces,
        jobs_per_workspace: args.jobs,
        seed: args.seed,
        bash_only: args.bash_only || args.dag_factory.is_some(),
    };
    let files = generate(&opts);
    write_files(&args.out, &files).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wrote {} files into {}", files.len(), args.out.display());
    if let Some(dir) = &args.dag_factory {
        let files = dag_factory(&opts);
        write_files(dir, &files).with_context(|| format!("writing {}", dir.display()))?;
        eprintln!(
            "wrote {} dag-factory files into {}",
            files.len(),
            dir.display()
        );
    }
    Ok(())
}
