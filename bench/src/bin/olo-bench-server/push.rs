//! Phase 1: push to DAG, a signed `push` webhook per commit until the job's DAG file changes.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use olo_bench::{job_name, workspace_name};
use olo_reconciler::engine::short;
use tokio::time::Instant;

use super::daemon::Daemon;
use super::percentiles::Percentiles;
use super::push_webhook::{push_payload, sign, webhook};
use super::setup::git;
use super::{Args, BRANCH};

/// The debounce `olo serve` has had after a wake-up (`src/serve.rs`). Whether a push-to-DAG
/// figure includes it is read off the figures (see [`PushFigures::debounced`]), not assumed.
const DEBOUNCE_MS: f64 = 300.0;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(super) struct PushFigures {
    pub(super) latency: Percentiles,
    /// Until `/api/v1/status` reports the commit applied (polled every 5 ms).
    pub(super) until_applied: Percentiles,
    /// olo's own reconcile time, from its log.
    pub(super) reconcile: Option<Percentiles>,
    /// Latency minus olo's own reconcile time: delivery, queueing, any debounce, the poll.
    pub(super) outside_reconcile: Option<Percentiles>,
    pub(super) commit: Percentiles,
    pub(super) webhook_answer: Percentiles,
}

impl PushFigures {
    /// Whether the daemon waited out a debounce between the webhook and the reconcile: what is
    /// left of the latency outside olo's own reconcile time is at least the debounce. `None`
    /// when olo's log gave no reconcile times.
    pub(super) fn debounced(&self) -> Option<bool> {
        self.outside_reconcile.map(|o| o.p50 >= DEBOUNCE_MS)
    }

    pub(super) fn debounce_note(&self) -> String {
        match (self.debounced(), &self.outside_reconcile) {
            (Some(true), Some(o)) => format!(
                "included: the daemon waits out its {DEBOUNCE_MS:.0} ms debounce (p50 {:.1} ms outside olo's reconcile)",
                o.p50
            ),
            (Some(false), Some(o)) => format!(
                "none: p50 {:.1} ms outside olo's reconcile, so this olo reconciles on a webhook at once (no {DEBOUNCE_MS:.0} ms wait)",
                o.p50
            ),
            _ => "unknown: olo's log gave no reconcile times".into(),
        }
    }
}

/// One job's file: the `metadata.description` line is what each push changes.
pub(super) fn edit_job(path: &Path, token: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = String::with_capacity(text.len() + 40);
    let mut edited = false;
    for line in text.lines() {
        if !edited && line.starts_with("  description: Synthetic job ") {
            let base = line
                .split(". ")
                .next()
                .unwrap_or(line)
                .trim_end_matches('.');
            let _ = writeln!(out, "{base}. {token}");
            edited = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    ensure!(
        edited,
        "{} has no metadata description line",
        path.display()
    );
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub(super) async fn push_to_dag(
    args: &Args,
    repo: &Path,
    daemon: &Daemon,
    http: &reqwest::Client,
) -> anyhow::Result<PushFigures> {
    let mut latency = Vec::with_capacity(args.pushes);
    let mut until_applied = Vec::with_capacity(args.pushes);
    let mut reconcile = Vec::with_capacity(args.pushes);
    let mut outside = Vec::with_capacity(args.pushes);
    let mut commit = Vec::with_capacity(args.pushes);
    let mut answer = Vec::with_capacity(args.pushes);
    let pid = std::process::id();
    for i in 0..args.pushes {
        let ws = workspace_name(i % args.workspaces);
        let job = job_name((i / args.workspaces) % args.jobs);
        let file = repo.join(format!("workspaces/{ws}/jobs/{job}.yaml"));
        let dag = daemon.dags.join(format!("{ws}__{job}.py"));
        ensure!(
            dag.exists(),
            "no DAG file {} after the first reconcile",
            dag.display()
        );
        let token = format!("Edit {i} by olo-bench-server.");
        edit_job(&file, &token)?;

        let c0 = Instant::now();
        git(
            repo,
            &["commit", "-qam", &format!("bench: edit {ws}/{job} ({i})")],
        )?;
        let sha = git(repo, &["rev-parse", "HEAD"])?;
        commit.push(c0.elapsed());
        let body = push_payload(&format!("refs/heads/{BRANCH}"), &sha)?;
        let signature = sign(&body);
        let delivery = format!("bench-push-{pid}-{i}");

        let t0 = Instant::now();
        let r = webhook(http, &daemon.base, &delivery, body, &signature)
            .send()
            .await
            .context("delivering the push webhook")?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        answer.push(t0.elapsed());
        ensure!(
            status == 202 && text.contains("reconcile queued"),
            "push webhook answered {status}: {text}"
        );
        let deadline = t0 + Duration::from_secs(120);
        loop {
            if std::fs::read_to_string(&dag).is_ok_and(|t| t.contains(&token)) {
                latency.push(t0.elapsed());
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{} did not change within 120 s of push {i}; olo's log:\n{}",
                dag.display(),
                daemon.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Let the reconcile finish (status recorded) before the next push, so pushes never
        // queue behind one another.
        loop {
            if daemon.last_applied(http).await.as_deref() == Some(sha.as_str()) {
                until_applied.push(t0.elapsed());
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{} not applied within 120 s; olo's log:\n{}",
                short(&sha),
                daemon.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The status is recorded just before olo logs the line: give the log a moment.
        for _ in 0..100 {
            if let Some(d) = daemon.reported_reconcile(&sha) {
                reconcile.push(d);
                outside.push(latency.last().expect("one per push").saturating_sub(d));
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if (i + 1) % 20 == 0 || i + 1 == args.pushes {
            eprintln!(
                "  push {}/{}: {:.0} ms to the DAG file",
                i + 1,
                args.pushes,
                ms(*latency.last().expect("one per push"))
            );
        }
    }
    let none = || anyhow::anyhow!("no pushes measured (--pushes 0)");
    Ok(PushFigures {
        latency: Percentiles::of(latency).ok_or_else(none)?,
        until_applied: Percentiles::of(until_applied).ok_or_else(none)?,
        reconcile: Percentiles::of(reconcile),
        outside_reconcile: Percentiles::of(outside),
        commit: Percentiles::of(commit).ok_or_else(none)?,
        webhook_answer: Percentiles::of(answer).ok_or_else(none)?,
    })
}
