//! In-process timings of olo's pipeline on a config repository, phase by phase: read the working
//! tree (`from_worktree`), validate, render. Several runs; prints the median (and min, max) of
//! each phase, the process's peak RSS, and (from one more run with a counting allocator) the heap
//! each phase holds and peaks at. Used by `scripts/bench.sh`.
//!
//!     target/release/olo-bench /tmp/repo --runs 5 [--json out.json]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use olo_schema::Entry;

#[derive(Parser)]
#[command(
    about = "Time read (from_worktree), validate and render of a config repository in-process"
)]
struct Args {
    /// The config repository folder.
    path: PathBuf,
    /// Timed runs (after one untimed warm-up run).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Also write the figures as JSON into this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The system allocator, counting live heap bytes and their peak while `TRACK` is on (off during
/// the timed runs: then it costs one relaxed load per call).
struct Counting;

static TRACK: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grow(n: usize) {
    let now = LIVE.fetch_add(n as isize, Relaxed) + n as isize;
    PEAK.fetch_max(now, Relaxed);
}

fn shrink(n: usize) {
    LIVE.fetch_sub(n as isize, Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && TRACK.load(Relaxed) {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && TRACK.load(Relaxed) {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        if TRACK.load(Relaxed) {
            shrink(layout.size());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && TRACK.load(Relaxed) {
            if new_size >= layout.size() {
                grow(new_size - layout.size());
            } else {
                shrink(layout.size() - new_size);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes live now, and the peak since the last call (which resets the peak to now).
fn heap() -> (usize, usize) {
    let live = LIVE.load(Relaxed);
    let peak = PEAK.swap(live, Relaxed);
    (live.max(0) as usize, peak.max(0) as usize)
}

/// Heap of one untimed run, in bytes: what each phase leaves live and the peak during it.
#[derive(Debug, Default)]
struct HeapProfile {
    snapshot_live: usize,
    read_peak: usize,
    validated_live: usize,
    validate_peak: usize,
    rendered_live: usize,
    render_peak: usize,
}

fn heap_run(args: &Args) -> anyhow::Result<HeapProfile> {
    let mut h = HeapProfile::default();
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    TRACK.store(true, Relaxed);
    let snapshot = olo_reconciler::snapshot::from_worktree(&args.path)?;
    (h.snapshot_live, h.read_peak) = heap();
    let validation = olo_schema::validate(snapshot);
    (h.validated_live, h.validate_peak) = heap();
    let repo = validation.repo.as_ref().context("invalid repository")?;
    let rendered = olo_templates::render(repo, &olo_templates::RenderSettings::default())?;
    (h.rendered_live, h.render_peak) = heap();
    drop(rendered);
    drop(validation);
    TRACK.store(false, Relaxed);
    Ok(h)
}

/// Durations of one run, in order: read, validate, render.
type Run = [Duration; 3];

const PHASES: [&str; 3] = ["read", "validate", "render"];

fn one_run(args: &Args) -> anyhow::Result<(Run, RepoSize)> {
    let t0 = Instant::now();
    let snapshot = olo_reconciler::snapshot::from_worktree(&args.path)
        .with_context(|| format!("reading {}", args.path.display()))?;
    let t1 = Instant::now();
    let size = RepoSize::of(&snapshot);
    let t1b = Instant::now();
    let validation = olo_schema::validate(snapshot);
    let t2 = Instant::now();
    let Some(repo) = &validation.repo else {
        bail!(
            "{} is invalid ({} errors): benchmarks need a valid repository",
            args.path.display(),
            validation.errors()
        );
    };
    let rendered = olo_templates::render(repo, &olo_templates::RenderSettings::default())
        .context("rendering")?;
    let t3 = Instant::now();
    let size = RepoSize {
        workspaces: repo.workspaces.len(),
        jobs: repo.workspaces.values().map(|w| w.jobs.len()).sum(),
        rendered_files: rendered.files.len(),
        rendered_bytes: rendered.files.values().map(Vec::len).sum(),
        ..size
    };
    // Dropping the repository and the rendered files is not part of any phase.
    drop(rendered);
    drop(validation);
    Ok(([t1 - t0, t2 - t1b, t3 - t2], size))
}

#[derive(Debug, Clone, Copy, Default)]
struct RepoSize {
    files: usize,
    bytes: usize,
    workspaces: usize,
    jobs: usize,
    rendered_files: usize,
    rendered_bytes: usize,
}

impl RepoSize {
    fn of(snapshot: &olo_schema::Snapshot) -> RepoSize {
        let bytes = snapshot
            .files
            .values()
            .map(|e| match e {
                Entry::File(b) => b.len(),
                Entry::Symlink(t) => t.len(),
            })
            .sum();
        RepoSize {
            files: snapshot.files.len(),
            bytes,
            ..RepoSize::default()
        }
    }
}

/// Median, minimum and maximum, in seconds.
fn stats(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    (median, xs[0], xs[n - 1])
}

/// Peak resident set size of this process (`VmHWM`), in KiB; Linux only.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let (_, size) = one_run(&args)?; // warm-up: page cache, allocator, rayon's pool
    let mut runs = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        runs.push(one_run(&args)?.0);
    }
    let peak = peak_rss_kib();
    let h = heap_run(&args)?;

    println!(
        "olo-bench {}: {} workspaces, {} jobs, {} files ({:.1} MB) -> {} rendered files ({:.1} MB); median of {} runs (min .. max)",
        args.path.display(),
        size.workspaces,
        size.jobs,
        size.files,
        size.bytes as f64 / 1e6,
        size.rendered_files,
        size.rendered_bytes as f64 / 1e6,
        args.runs
    );
    let column = |f: &dyn Fn(&Run) -> Duration| -> Vec<f64> {
        runs.iter().map(|r| f(r).as_secs_f64()).collect()
    };
    let mut rows: Vec<(String, (f64, f64, f64))> = Vec::new();
    for (i, name) in PHASES.iter().enumerate() {
        rows.push((name.to_string(), stats(column(&|r| r[i]))));
    }
    rows.push(("read+validate".into(), stats(column(&|r| r[0] + r[1]))));
    rows.push(("validate+render".into(), stats(column(&|r| r[1] + r[2]))));
    rows.push((
        "read+validate+render".into(),
        stats(column(&|r| r[0] + r[1] + r[2])),
    ));
    for (name, (median, min, max)) in &rows {
        println!("  {name:<22} {median:>8.3} s   ({min:.3} .. {max:.3})");
    }
    if let Some(kib) = peak {
        println!(
            "  {:<22} {:>8.1} MiB (whole process, all runs)",
            "peak RSS",
            kib as f64 / 1024.0
        );
    }

    let mb = |b: usize| b as f64 / 1e6;
    println!(
        "  heap (one more run, counting allocator): read holds {:.0} MB (peak {:.0}); validate holds {:.0} MB (peak {:.0}); render output {:.0} MB more (peak {:.0})",
        mb(h.snapshot_live),
        mb(h.read_peak),
        mb(h.validated_live),
        mb(h.validate_peak),
        mb(h.rendered_live.saturating_sub(h.validated_live)),
        mb(h.render_peak)
    );

    if let Some(path) = &args.json {
        let mut json = String::from("{\n");
        json.push_str(&format!(
            "  \"runs\": {},\n  \"files\": {},\n  \"bytes\": {},\n  \"workspaces\": {},\n  \"jobs\": {},\n  \"rendered_files\": {},\n",
            args.runs, size.files, size.bytes, size.workspaces, size.jobs, size.rendered_files
        ));
        json.push_str(&format!(
            "  \"peak_rss_kib\": {},\n",
            peak.map_or("null".into(), |k| k.to_string())
        ));
        json.push_str(&format!(
            "  \"heap_bytes\": {{ \"snapshot_live\": {}, \"read_peak\": {}, \"validated_live\": {}, \"validate_peak\": {}, \"rendered_live\": {}, \"render_peak\": {} }},\n",
            h.snapshot_live, h.read_peak, h.validated_live, h.validate_peak, h.rendered_live, h.render_peak
        ));
        let body: Vec<String> = rows
            .iter()
            .map(|(name, (median, min, max))| {
                format!("  \"{name}\": {{ \"median\": {median:.6}, \"min\": {min:.6}, \"max\": {max:.6} }}")
            })
            .collect();
        json.push_str(&body.join(",\n"));
        json.push_str("\n}\n");
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
