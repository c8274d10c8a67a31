//! Soak (`--soak-minutes N`): the daemon under a steady mix for N minutes, its resident memory
//! and open files sampled every 10 s:
//!
//! - a commit changing one job, pushed (signed webhook) every 10 s;
//! - signed pushes for an untracked branch at 20/s (verified, recorded, answered 202);
//! - API and dashboard reads at 40/s (runs list, status, a workspace's jobs, the overview page);
//! - OpenLineage events at 40/s, over a fixed set of 200 jobs (each a new run).
//!
//! What it reports: the samples, and resident memory and open files at the end of the first
//! minute (warm-up) beside the last sample and the highest; every request's outcome per stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use olo_bench::{job_name, workspace_name};
use tokio::time::Instant;

use super::daemon::Daemon;
use super::lineage::lineage_event;
use super::push::edit_job;
use super::push_webhook::{push_payload, sign, webhook};
use super::setup::git;
use super::{Args, BRANCH};

/// Resident memory and open files of the daemon at one moment.
pub(super) struct Sample {
    pub(super) seconds: f64,
    pub(super) rss_kib: u64,
    /// The anonymous part of it (the heap, SQLite's page cache), and the part mapped from files.
    pub(super) anon_kib: u64,
    pub(super) file_kib: u64,
    pub(super) open_files: usize,
}

/// Requests of one stream: answered as expected, and not.
#[derive(Default)]
pub(super) struct Counts {
    ok: AtomicUsize,
    failed: AtomicUsize,
}

impl Counts {
    fn record(&self, ok: bool) {
        let c = if ok { &self.ok } else { &self.failed };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn get(&self) -> (usize, usize) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

pub(super) struct SoakFigures {
    pub(super) minutes: f64,
    pub(super) samples: Vec<Sample>,
    /// (stream, counts)
    pub(super) streams: Vec<(&'static str, Arc<Counts>)>,
    /// Commits pushed, and whether the last one was applied by the end.
    pub(super) commits: usize,
    pub(super) last_applied: bool,
}

fn sample(pid: u32, start: Instant) -> anyhow::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading the daemon's /proc status (is it running?)")?;
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    Ok(Sample {
        seconds: start.elapsed().as_secs_f64(),
        rss_kib: kib("VmRSS:"),
        anon_kib: kib("RssAnon:"),
        file_kib: kib("RssFile:"),
        open_files,
    })
}

/// Runs `request` every `1 / rate` seconds until `until`, counting its outcomes.
fn stream<F, Fut>(
    rate: f64,
    until: Instant,
    counts: Arc<Counts>,
    request: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(usize) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut i = 0;
        while Instant::now() < until {
            tick.tick().await;
            counts.record(request(i).await);
            i += 1;
        }
    })
}

pub(super) async fn soak(
    args: &Args,
    repo: &std::path::Path,
    daemon: &Daemon,
    minutes: f64,
) -> anyhow::Result<SoakFigures> {
    ensure!(minutes > 0.0, "--soak-minutes must be positive");
    let pid = daemon.child.id();
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(minutes * 60.0);
    let http = reqwest::Client::new();
    let base = daemon.base.clone();
    let mut streams: Vec<(&'static str, Arc<Counts>)> = Vec::new();
    let mut tasks = Vec::new();

    let hooks = Arc::new(Counts::default());
    streams.push(("webhooks (untracked branch), 20/s", hooks.clone()));
    let run = std::process::id();
    tasks.push(stream(20.0, until, hooks, {
        let (http, base) = (http.clone(), base.clone());
        move |i| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let sha = format!("{i:040x}");
                let Ok(body) = push_payload("refs/heads/soak-untracked", &sha) else {
                    return false;
                };
                let signature = sign(&body);
                let delivery = format!("soak-{run}-{i}");
                webhook(&http, &base, &delivery, body, &signature)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 202)
            }
        }
    }));

    let reads = Arc::new(Counts::default());
    streams.push(("API and dashboard reads, 40/s", reads.clone()));
    let first_ws = workspace_name(0);
    tasks.push(stream(40.0, until, reads, {
        let (http, base) = (http.clone(), base.clone());
        move |i| {
            let paths = [
                "/api/v1/runs".to_string(),
                "/api/v1/status".to_string(),
                format!("/api/v1/workspaces/{first_ws}/jobs"),
                "/".to_string(),
            ];
            let url = format!("{base}{}", paths[i % paths.len()]);
            let http = http.clone();
            async move {
                match http.get(&url).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        }
    }));

    let events = Arc::new(Counts::default());
    streams.push(("OpenLineage events (200 jobs), 40/s", events.clone()));
    tasks.push(stream(40.0, until, events, {
        let (http, base) = (http.clone(), base.clone());
        move |i| {
            let (http, url) = (http.clone(), format!("{base}/api/v1/lineage"));
            async move {
                let body = serde_json::to_vec(&lineage_event(i % 200, 403)).unwrap_or_default();
                http.post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        }
    }));

    // Commits, every 10 s, and the samples, on this task.
    let pushes = Arc::new(Counts::default());
    streams.push(("commits pushed, every 10 s", pushes.clone()));
    let mut samples = vec![sample(pid, start)?];
    let mut commits = 0;
    let mut last_sha = String::new();
    let mut next_sample = start + Duration::from_secs(10);
    while Instant::now() < until {
        let ws = workspace_name(commits % args.workspaces);
        let job = job_name((commits / args.workspaces) % args.jobs);
        edit_job(
            &repo.join(format!("workspaces/{ws}/jobs/{job}.yaml")),
            &format!("Soak edit {commits}."),
        )?;
        git(repo, &["commit", "-qam", &format!("soak: edit {ws}/{job}")])?;
        last_sha = git(repo, &["rev-parse", "HEAD"])?;
        let body = push_payload(&format!("refs/heads/{BRANCH}"), &last_sha)?;
        let signature = sign(&body);
        let ok = webhook(
            &http,
            &base,
            &format!("soak-push-{run}-{commits}"),
            body,
            &signature,
        )
        .send()
        .await
        .is_ok_and(|r| r.status() == 202);
        pushes.record(ok);
        commits += 1;
        let next_commit = Instant::now() + Duration::from_secs(10);
        while Instant::now() < next_commit.min(until) {
            if Instant::now() >= next_sample {
                samples.push(sample(pid, start)?);
                let s = samples.last().expect("just pushed");
                eprintln!(
                    "  {:>4.0} s: {:.1} MiB resident ({:.1} anonymous, {:.1} from files), {} open files",
                    s.seconds,
                    s.rss_kib as f64 / 1024.0,
                    s.anon_kib as f64 / 1024.0,
                    s.file_kib as f64 / 1024.0,
                    s.open_files
                );
                next_sample += Duration::from_secs(10);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    samples.push(sample(pid, start)?);
    // The last commit, applied within a minute of the end.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_applied = false;
    while Instant::now() < deadline {
        if daemon.last_applied(&http).await.as_deref() == Some(last_sha.as_str()) {
            last_applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(SoakFigures {
        minutes,
        samples,
        streams,
        commits,
        last_applied,
    })
}

/// The summary: memory and open files after the warm-up minute, at the end and at most, and
/// each stream's requests.
pub(super) fn report(f: &SoakFigures) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let warm = f
        .samples
        .iter()
        .find(|s| s.seconds >= 60.0)
        .unwrap_or(&f.samples[0]);
    let last = f.samples.last().expect("at least one sample");
    let max_rss = f.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let max_files = f.samples.iter().map(|s| s.open_files).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "soak: {:.0} minutes, {} samples",
        f.minutes,
        f.samples.len()
    );
    let _ = writeln!(
        out,
        "  resident memory: {:.1} MiB after the first minute, {:.1} MiB at the end ({:+.1} MiB), {:.1} MiB at most",
        mib(warm.rss_kib),
        mib(last.rss_kib),
        mib(last.rss_kib) - mib(warm.rss_kib),
        mib(max_rss)
    );
    let _ = writeln!(
        out,
        "    of which anonymous (heap, SQLite's page cache): {:.1} MiB after the first minute, {:.1} MiB at the end",
        mib(warm.anon_kib),
        mib(last.anon_kib)
    );
    let _ = writeln!(
        out,
        "  open files: {} after the first minute, {} at the end, {} at most",
        warm.open_files, last.open_files, max_files
    );
    for (name, counts) in &f.streams {
        let (ok, failed) = counts.get();
        let _ = writeln!(out, "  {name}: {ok} answered as expected, {failed} not");
    }
    let _ = writeln!(
        out,
        "  {} commits; the last one {}",
        f.commits,
        if f.last_applied {
            "applied"
        } else {
            "NOT applied within a minute of the end"
        }
    );
    out
}
