//! Benchmarks of `olo serve` as a process, driven over HTTP on loopback:
//!
//! 1. push to DAG: a signed `push` webhook for a fresh commit that changes one job, until that
//!    job's DAG file holds the change (and whether a 300 ms debounce of the daemon is in it);
//! 2. webhook throughput: C connections sending signed ~7 KB pushes for an untracked branch
//!    (each one verified, recorded, parsed and answered 202) for D seconds;
//! 3. the runs list (`GET /api/v1/runs`, default page) at a constant open-loop request rate, with
//!    latency measured from each request's scheduled start (no coordinated omission).
//!
//! Used by `scripts/bench-server.sh`.
//!
//!     target/release/olo-bench-server [--olo target/release/olo] [--json out.json]

mod lineage;
mod pages;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _};
use chrono::TimeZone as _;
use clap::Parser;
use olo_bench::{generate, job_name, workspace_name, write_files, SynthOptions};
use olo_reconciler::engine::short;
use olo_reconciler::store::{NewRun, RunTrigger, TaskInstanceRow};
use serde_json::{json, Value};
use tokio::time::Instant;

/// The debounce `olo serve` has had after a wake-up (`src/serve.rs`). Whether a push-to-DAG
/// figure includes it is read off the figures (see [`PushFigures::debounced`]), not assumed.
const DEBOUNCE_MS: f64 = 300.0;
const SECRET: &str = "olo-bench-server webhook secret";
const SECRET_ENV: &str = "OLO_BENCH_WEBHOOK_SECRET";
const BRANCH: &str = "main";
/// GitHub's real push payload, the one the end-to-end tests deliver (6.5 KB once compacted).
const PUSH_PAYLOAD: &str =
    include_str!("../../../../tests/fixtures/github-webhooks/push-payload.json");

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

/// Latency percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, Copy)]
struct Percentiles {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    fn of(mut xs: Vec<Duration>) -> Option<Percentiles> {
        if xs.is_empty() {
            return None;
        }
        xs.sort();
        let n = xs.len();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            xs[rank - 1].as_secs_f64() * 1e3
        };
        Some(Percentiles {
            n,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        })
    }

    fn json(&self) -> Value {
        json!({ "n": self.n, "p50_ms": self.p50, "p90_ms": self.p90, "p99_ms": self.p99, "max_ms": self.max })
    }

    fn text(&self) -> String {
        format!(
            "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.p50, self.p90, self.p99, self.max
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn elapsed_ms(since: std::time::Instant) -> u128 {
    since.elapsed().as_millis()
}

fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=olo-bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .output()
        .context("could not run git")?;
    ensure!(
        out.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn sign(body: &[u8]) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// GitHub's push payload, pointed at `git_ref` and commit `after`.
fn push_payload(git_ref: &str, after: &str) -> anyhow::Result<Vec<u8>> {
    let mut p: Value = serde_json::from_str(PUSH_PAYLOAD)?;
    p["ref"] = json!(git_ref);
    p["after"] = json!(after);
    p["deleted"] = json!(false);
    p["created"] = json!(false);
    Ok(serde_json::to_vec(&p)?)
}

fn webhook(
    client: &reqwest::Client,
    base: &str,
    delivery: &str,
    body: Vec<u8>,
    signature: &str,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/webhooks/github"))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", delivery)
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(body)
}

/// A running `olo serve`, killed when dropped.
struct Daemon {
    child: Child,
    base: String,
    log: PathBuf,
    dags: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Starts `olo serve` on a `file://` remote of `repo` (branch main, polling once an hour:
    /// only webhooks trigger reconciles) and waits until it listens and is ready.
    async fn start(
        olo: &Path,
        repo: &Path,
        state: &Path,
        http: &reqwest::Client,
    ) -> anyhow::Result<Daemon> {
        let log = state.join("serve.log");
        let mut cmd = Command::new(olo);
        cmd.arg("serve");
        // Only the settings below: none of the caller's OLO_ variables.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OLO_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("OLO_SOURCE__URL", format!("file://{}", repo.display()))
            .env("OLO_SOURCE__BRANCH", BRANCH)
            .env("OLO_SOURCE__POLL_SECONDS", "3600")
            .env("OLO_STATE__DIR", state)
            .env("OLO_SERVER__LISTEN", "127.0.0.1:0")
            .env("OLO_GITHUB__WEBHOOK_SECRET_ENV", SECRET_ENV)
            .env(SECRET_ENV, SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(&log)
                    .with_context(|| format!("creating {}", log.display()))?,
            );
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", olo.display()))?;
        let mut daemon = Daemon {
            child,
            base: String::new(),
            log,
            dags: state.join("dags"),
        };
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        daemon.base = loop {
            let text = std::fs::read_to_string(&daemon.log).unwrap_or_default();
            if let Some(rest) = text.split("listening on ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
            if let Some(status) = daemon.child.try_wait()? {
                bail!("olo serve exited ({status}):\n{}", daemon.log_tail());
            }
            ensure!(
                Instant::now() < deadline,
                "olo serve did not start listening:\n{}",
                daemon.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        eprintln!(
            "olo serve listening on {}; waiting for /readyz",
            daemon.base
        );
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let ready = http
                .get(format!("{}/readyz", daemon.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                break;
            }
            if let Some(status) = daemon.child.try_wait()? {
                bail!("olo serve exited ({status}):\n{}", daemon.log_tail());
            }
            ensure!(
                Instant::now() < deadline,
                "olo serve did not become ready:\n{}",
                daemon.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "olo serve ready after {} ms (cold reconcile included)",
            started.elapsed().as_millis()
        );
        Ok(daemon)
    }

    /// The time olo itself reports for the reconcile of `sha` ("main <sha>: Ready (…) in N ms").
    fn reported_reconcile(&self, sha: &str) -> Option<Duration> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        let marker = format!("{BRANCH} {}: Ready (", short(sha));
        let line = text.lines().rev().find(|l| l.contains(&marker))?;
        let n = line.rsplit(" in ").next()?.strip_suffix(" ms")?;
        n.trim().parse().ok().map(Duration::from_millis)
    }

    async fn last_applied(&self, http: &reqwest::Client) -> Option<String> {
        let r = http
            .get(format!("{}/api/v1/status", self.base))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["sync"]["last_applied"].as_str().map(str::to_string)
    }
}

/// Writes the synthetic repository into `repo` and commits it on `main`.
fn prepare_repo(args: &Args, repo: &Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let files = generate(&SynthOptions {
        workspaces: args.workspaces,
        jobs_per_workspace: args.jobs,
        seed: args.seed,
        bash_only: false,
    });
    write_files(repo, &files).with_context(|| format!("writing {}", repo.display()))?;
    git(repo, &["init", "-q", "-b", BRANCH])?;
    git(repo, &["add", "-A"])?;
    git(repo, &["commit", "-qm", "generated by olo-bench-server"])?;
    eprintln!(
        "generated and committed {} files ({} jobs) in {} ms",
        files.len(),
        args.workspaces * args.jobs,
        elapsed_ms(started)
    );
    Ok(())
}

/// Every how many seeded runs one gets three task instances.
const TI_EVERY: usize = 100;

/// Inserts `--runs` finished runs (spread over the jobs) into the state store the daemon will open.
async fn seed_runs(args: &Args, state: &Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let url = format!("sqlite:{}", state.join("state.db").display());
    let store = olo_reconciler::store::open(&url)
        .await
        .with_context(|| format!("opening {url}"))?;
    let first = chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 2, 0, 0)
        .single()
        .context("a valid date")?;
    for i in 0..args.runs {
        let ws = workspace_name(i % args.workspaces);
        let job = job_name((i / args.workspaces) % args.jobs);
        let logical = first + chrono::Duration::hours(i as i64);
        let run = store
            .insert_run(&NewRun {
                dag_id: format!("{ws}__{job}"),
                workspace: ws,
                job,
                airflow_run_id: format!("scheduled__{}", logical.to_rfc3339()),
                state: if i % 10 == 0 { "failed" } else { "success" }.into(),
                trigger: RunTrigger::Schedule,
                triggered_by: None,
                revision: None,
                conf: json!({}),
            })
            .await?;
        if i % TI_EVERY == 0 {
            let tis: Vec<TaskInstanceRow> = (0..3)
                .map(|t| TaskInstanceRow {
                    task_id: format!("t{t}"),
                    map_index: -1,
                    try_number: 1,
                    state: Some("success".into()),
                    started_at: Some(logical + chrono::Duration::seconds(60 * t)),
                    ended_at: Some(logical + chrono::Duration::seconds(60 * t + 50)),
                    duration_seconds: Some(50.0),
                })
                .collect();
            store.upsert_task_instances(run.id, &tis).await?;
        }
        if i > 0 && i % 10_000 == 0 {
            eprintln!("  {i} runs seeded");
        }
    }
    drop(store);
    eprintln!(
        "seeded {} runs into {url} in {} ms",
        args.runs,
        elapsed_ms(started)
    );
    Ok(())
}

struct PushFigures {
    latency: Percentiles,
    /// Until `/api/v1/status` reports the commit applied (polled every 5 ms).
    until_applied: Percentiles,
    /// olo's own reconcile time, from its log.
    reconcile: Option<Percentiles>,
    /// Latency minus olo's own reconcile time: delivery, queueing, any debounce, the poll.
    outside_reconcile: Option<Percentiles>,
    commit: Percentiles,
    webhook_answer: Percentiles,
}

impl PushFigures {
    /// Whether the daemon waited out a debounce between the webhook and the reconcile: what is
    /// left of the latency outside olo's own reconcile time is at least the debounce. `None`
    /// when olo's log gave no reconcile times.
    fn debounced(&self) -> Option<bool> {
        self.outside_reconcile.map(|o| o.p50 >= DEBOUNCE_MS)
    }

    fn debounce_note(&self) -> String {
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
fn edit_job(path: &Path, token: &str) -> anyhow::Result<()> {
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

async fn push_to_dag(
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

struct WebhookFigures {
    body_bytes: usize,
    seconds: f64,
    accepted: usize,
    non_2xx: usize,
    transport_errors: usize,
    /// 2xx answers other than 202 "not the tracked branch, ignored".
    unexpected: usize,
    statuses: BTreeMap<u16, usize>,
    latency: Option<Percentiles>,
}

#[derive(Default)]
struct WorkerTally {
    latency: Vec<Duration>,
    statuses: BTreeMap<u16, usize>,
    transport_errors: usize,
    unexpected: usize,
}

async fn webhook_throughput(args: &Args, daemon: &Daemon) -> anyhow::Result<WebhookFigures> {
    // One body and signature for all deliveries: the client's HMAC is not what is measured; the
    // server verifies every delivery anyway. Delivery ids differ, so every one is recorded.
    let body = push_payload("refs/heads/other", &"5".repeat(40))?;
    let signature = sign(&body);
    let body_bytes = body.len();
    let shared = Arc::new((body, signature));
    let run = std::process::id();
    let duration = Duration::from_secs_f64(args.webhook_seconds);
    let start = Instant::now();
    let stop = start + duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..args.connections {
        let shared = shared.clone();
        let base = daemon.base.clone();
        // One client per worker, holding one connection: C workers, C connections.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        workers.spawn(async move {
            let mut t = WorkerTally::default();
            let mut n = 0u64;
            while Instant::now() < stop {
                let delivery = format!("bench-load-{run}-{w}-{n}");
                n += 1;
                let (body, signature) = &*shared;
                let sent = Instant::now();
                match webhook(&client, &base, &delivery, body.clone(), signature)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let text = r.bytes().await.unwrap_or_default();
                        t.latency.push(sent.elapsed());
                        *t.statuses.entry(status).or_default() += 1;
                        let ignored = text
                            .windows(b"not the tracked branch".len())
                            .any(|x| x == b"not the tracked branch");
                        if (200..300).contains(&status) && (status != 202 || !ignored) {
                            t.unexpected += 1;
                        }
                    }
                    Err(_) => t.transport_errors += 1,
                }
            }
            t
        });
    }
    let mut all = WorkerTally::default();
    while let Some(t) = workers.join_next().await {
        let t = t?;
        all.latency.extend(t.latency);
        for (s, n) in t.statuses {
            *all.statuses.entry(s).or_default() += n;
        }
        all.transport_errors += t.transport_errors;
        all.unexpected += t.unexpected;
    }
    let seconds = start.elapsed().as_secs_f64();
    let accepted = all.statuses.get(&202).copied().unwrap_or(0);
    let non_2xx = all
        .statuses
        .iter()
        .filter(|(s, _)| !(200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    Ok(WebhookFigures {
        body_bytes,
        seconds,
        accepted,
        non_2xx,
        transport_errors: all.transport_errors,
        unexpected: all.unexpected,
        statuses: all.statuses,
        latency: Percentiles::of(all.latency),
    })
}

struct ApiFigures {
    sent: usize,
    ok: usize,
    errors: usize,
    seconds: f64,
    /// From each request's scheduled start (corrects coordinated omission).
    latency: Percentiles,
    /// From the moment the request was actually sent (without the schedule's wake-up delay).
    service: Percentiles,
}

async fn api_rate(
    args: &Args,
    daemon: &Daemon,
    http: &reqwest::Client,
) -> anyhow::Result<ApiFigures> {
    let url = format!("{}/api/v1/runs", daemon.base);
    // Check the answer once, and warm the connection pool.
    let first: Value = http
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let items = first["items"].as_array().map_or(0, Vec::len);
    ensure!(
        items == 50.min(args.runs),
        "GET /api/v1/runs returned {items} runs, expected a full page of 50: {first}"
    );
    for _ in 0..50 {
        http.get(&url).send().await?.bytes().await?;
    }
    let total = (args.rate * args.api_seconds).round() as usize;
    ensure!(
        total > 0,
        "--rate × --api-seconds must be at least 1 request"
    );
    // The schedule runs on its own thread: `std::thread::sleep` wakes within tens of µs, where
    // tokio's timer rounds up to the next millisecond (at 500 req/s, 2 ms apart). Requests run
    // on the runtime.
    let runtime = tokio::runtime::Handle::current();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = std::time::Instant::now() + Duration::from_millis(20);
    let rate = args.rate;
    let http = http.clone();
    let schedule = std::thread::spawn(move || {
        for i in 0..total {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            let now = std::time::Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            let (http, url, tx) = (http.clone(), url.clone(), tx.clone());
            runtime.spawn(async move {
                let sent = std::time::Instant::now();
                let ok = match http.get(&url).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let done = std::time::Instant::now();
                let _ = tx.send((done - at, done - sent, done, ok));
            });
        }
    });
    let (mut latency, mut service) = (Vec::with_capacity(total), Vec::with_capacity(total));
    let (mut ok, mut errors, mut last) = (0, 0, start);
    // Ends when every request has answered (each task holds a sender until then).
    while let Some((l, s, done, good)) = rx.recv().await {
        latency.push(l);
        service.push(s);
        last = last.max(done);
        if good {
            ok += 1;
        } else {
            errors += 1;
        }
    }
    schedule
        .join()
        .map_err(|_| anyhow::anyhow!("the request schedule thread panicked"))?;
    Ok(ApiFigures {
        sent: total,
        ok,
        errors,
        seconds: (last - start).as_secs_f64(),
        latency: Percentiles::of(latency).context("no requests")?,
        service: Percentiles::of(service).context("no requests")?,
    })
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model})")
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
    prepare_repo(args, &repo)?;
    seed_runs(args, &state).await?;

    let http = reqwest::Client::new();
    let mut daemon = Daemon::start(olo, &repo, &state, &http).await?;

    eprintln!(
        "1/5 push to DAG: {} pushes, one job changed each",
        args.pushes
    );
    let push = push_to_dag(args, &repo, &daemon, &http).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    eprintln!(
        "2/5 webhook throughput: {} connections for {} s",
        args.connections, args.webhook_seconds
    );
    let hooks = webhook_throughput(args, &daemon).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    eprintln!(
        "3/5 GET /api/v1/runs at {} req/s for {} s (open loop)",
        args.rate, args.api_seconds
    );
    let api = api_rate(args, &daemon, &http).await?;
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

    let jobs = args.workspaces * args.jobs;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "olo-bench-server: {} against a {jobs}-job repository ({} workspaces × {} jobs), on {}; client and daemon share the machine",
        olo.display(),
        args.workspaces,
        args.jobs,
        machine()
    );
    let _ = writeln!(
        out,
        "1. push to DAG file ({} pushes, one commit changing one job each; webhook sent -> the job's DAG file holds the change)",
        push.latency.n
    );
    let _ = writeln!(
        out,
        "   latency            {} (DAG file polled every ~1 ms)",
        push.latency.text()
    );
    let _ = writeln!(out, "   debounce           {}", push.debounce_note());
    if let Some(r) = &push.reconcile {
        let _ = writeln!(
            out,
            "   olo's reconcile    {} (its own log, whole ms: fetch, plan, apply, record)",
            r.text()
        );
    }
    if let Some(o) = &push.outside_reconcile {
        let _ = writeln!(
            out,
            "   outside it         {} (delivery, queue, any debounce, poll)",
            o.text()
        );
    }
    let _ = writeln!(
        out,
        "   until applied      {} (until /api/v1/status names the commit; polled every 5 ms)",
        push.until_applied.text()
    );
    let _ = writeln!(out, "   webhook answer     {}", push.webhook_answer.text());
    let _ = writeln!(
        out,
        "   git commit         {} (not included)",
        push.commit.text()
    );
    let _ = writeln!(
        out,
        "2. webhook throughput ({} connections, {:.1} s, signed {}-byte push to an untracked branch, unique delivery ids)",
        args.connections, hooks.seconds, hooks.body_bytes
    );
    let _ = writeln!(
        out,
        "   {:.0} deliveries/s ({} answered 202 in {:.1} s); non-2xx answers: {}; transport errors: {}; unexpected 2xx: {}",
        hooks.accepted as f64 / hooks.seconds,
        hooks.accepted,
        hooks.seconds,
        hooks.non_2xx,
        hooks.transport_errors,
        hooks.unexpected
    );
    if let Some(l) = &hooks.latency {
        let _ = writeln!(out, "   latency            {}", l.text());
    }
    let _ = writeln!(
        out,
        "3. GET /api/v1/runs ({} runs stored, default page of 50), open loop at {} req/s for {} s",
        args.runs, args.rate, args.api_seconds
    );
    let _ = writeln!(
        out,
        "   achieved {:.1} req/s ({} sent, {} ok, {} errors in {:.2} s)",
        api.ok as f64 / api.seconds,
        api.sent,
        api.ok,
        api.errors,
        api.seconds
    );
    let _ = writeln!(
        out,
        "   latency            {} (from the scheduled start)",
        api.latency.text()
    );
    let _ = writeln!(
        out,
        "   service time       {} (from the actual send)",
        api.service.text()
    );
    let _ = writeln!(
        out,
        "4. dashboard pages ({} runs stored, {jobs} jobs; {} requests per page in a row, one connection)",
        args.runs, args.page_requests
    );
    for p in &pages {
        let _ = writeln!(
            out,
            "   {:<40} {} ({} bytes)",
            p.path,
            p.latency.text(),
            p.bytes
        );
    }
    let _ = writeln!(
        out,
        "5. lineage: {} OpenLineage RunEvents (4 edges each) over {} connections, SQLite",
        lineage.events, args.connections
    );
    let _ = writeln!(
        out,
        "   {:.0} events/s ({} in {:.2} s, {} errors); latency {}",
        lineage.events as f64 / lineage.seconds,
        lineage.events,
        lineage.seconds,
        lineage.errors,
        lineage.latency.text()
    );
    let _ = writeln!(
        out,
        "   depth-5 graph around a random job, graph of {} edges: {} ({} queries; nodes per answer p50 {:.0}, max {:.0})",
        lineage.edges,
        lineage.query.text(),
        lineage.query.n,
        lineage.query_nodes.p50,
        lineage.query_nodes.max
    );
    if let Some(status) = exited {
        let _ = writeln!(
            out,
            "   warning: olo serve exited during the run ({status})"
        );
    }
    let json_to_stdout = args.json.as_deref() == Some(Path::new("-"));
    if json_to_stdout {
        eprint!("{out}");
    } else {
        print!("{out}");
    }

    if let Some(path) = &args.json {
        let v = json!({
            "olo": olo.display().to_string(),
            "machine": machine(),
            "repository": { "workspaces": args.workspaces, "jobs_per_workspace": args.jobs, "jobs": jobs, "seed": args.seed },
            "push_to_dag": {
                "pushes": push.latency.n,
                "debounce_included": push.debounced(),
                "debounce_note": push.debounce_note(),
                "latency": push.latency.json(),
                "olo_reconcile": push.reconcile.as_ref().map(Percentiles::json),
                "outside_reconcile": push.outside_reconcile.as_ref().map(Percentiles::json),
                "until_applied": push.until_applied.json(),
                "webhook_answer": push.webhook_answer.json(),
                "git_commit_not_included": push.commit.json(),
            },
            "webhook_throughput": {
                "connections": args.connections,
                "seconds": hooks.seconds,
                "body_bytes": hooks.body_bytes,
                "accepted": hooks.accepted,
                "deliveries_per_second": hooks.accepted as f64 / hooks.seconds,
                "non_2xx": hooks.non_2xx,
                "transport_errors": hooks.transport_errors,
                "unexpected_2xx": hooks.unexpected,
                "statuses": hooks.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "latency": hooks.latency.as_ref().map(Percentiles::json),
            },
            "api_runs_list": {
                "runs_stored": args.runs,
                "target_rate": args.rate,
                "seconds": api.seconds,
                "sent": api.sent,
                "ok": api.ok,
                "errors": api.errors,
                "achieved_rate": api.ok as f64 / api.seconds,
                "latency_from_schedule": api.latency.json(),
                "service_time": api.service.json(),
            },
            "lineage": {
                "events": lineage.events,
                "seconds": lineage.seconds,
                "events_per_second": lineage.events as f64 / lineage.seconds,
                "errors": lineage.errors,
                "latency": lineage.latency.json(),
                "edges": lineage.edges,
                "depth5_query": lineage.query.json(),
                "depth5_nodes": lineage.query_nodes.json(),
            },
            "dashboard_pages": {
                "runs_stored": args.runs,
                "requests_per_page": args.page_requests,
                "pages": pages.iter().map(|p| json!({ "path": p.path, "bytes": p.bytes, "latency": p.latency.json() })).collect::<Vec<_>>(),
            },
        });
        let text = serde_json::to_string_pretty(&v)? + "\n";
        if json_to_stdout {
            print!("{text}");
        } else {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
