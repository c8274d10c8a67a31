//! The `olo serve` process under test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context as _};
use olo_reconciler::engine::short;
use serde_json::Value;
use tokio::time::Instant;

use super::push_webhook::SECRET;
use super::BRANCH;

const SECRET_ENV: &str = "OLO_BENCH_WEBHOOK_SECRET";

/// A running `olo serve`, killed when dropped.
pub(super) struct Daemon {
    pub(super) child: Child,
    pub(super) base: String,
    log: PathBuf,
    pub(super) dags: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Starts `olo serve` on a `file://` remote of `repo` (branch main, polling once an hour:
    /// only webhooks trigger reconciles) and waits until it listens; its first reconcile runs
    /// then ([`Daemon::wait_ready`]).
    pub(super) async fn spawn(olo: &Path, repo: &Path, state: &Path) -> anyhow::Result<Daemon> {
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
        let deadline = Instant::now() + Duration::from_secs(60);
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
        eprintln!("olo serve listening on {}", daemon.base);
        Ok(daemon)
    }

    /// Waits until `/readyz` says the first reconcile is done.
    pub(super) async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        let started = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let ready = http
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                break;
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("olo serve exited ({status}):\n{}", self.log_tail());
            }
            ensure!(
                Instant::now() < deadline,
                "olo serve did not become ready:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "olo serve ready {} ms after it listened",
            started.elapsed().as_millis()
        );
        Ok(())
    }

    /// The time olo itself reports for the reconcile of `sha` ("main <sha>: Ready (…) in N ms").
    pub(super) fn reported_reconcile(&self, sha: &str) -> Option<Duration> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        let marker = format!("{BRANCH} {}: Ready (", short(sha));
        let line = text.lines().rev().find(|l| l.contains(&marker))?;
        // "…: Ready (…) in 172.6 ms created=… elapsed_ms=…": the first " in <n> ms".
        let after = line.split(" in ").skip(1).find_map(|rest| {
            let (n, _) = rest.split_once(" ms")?;
            n.trim().parse::<f64>().ok()
        })?;
        Some(Duration::from_secs_f64(after / 1e3))
    }

    pub(super) async fn last_applied(&self, http: &reqwest::Client) -> Option<String> {
        let r = http
            .get(format!("{}/api/v1/status", self.base))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["sync"]["last_applied"].as_str().map(str::to_string)
    }
}
