//! The runs list at a constant open-loop request rate: phase 3 on an idle daemon, and phase 0
//! while the daemon's first (cold) reconcile runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use serde_json::Value;

use super::daemon::Daemon;
use super::percentiles::Percentiles;
use super::Args;

pub(super) struct ApiFigures {
    pub(super) sent: usize,
    pub(super) ok: usize,
    pub(super) errors: usize,
    pub(super) seconds: f64,
    /// From each request's scheduled start (corrects coordinated omission).
    pub(super) latency: Percentiles,
    /// From the moment the request was actually sent (without the schedule's wake-up delay).
    pub(super) service: Percentiles,
}

/// Phase 3: `--rate` requests a second for `--api-seconds` on the idle daemon.
pub(super) async fn api_rate(
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
    open_loop(http, url, args.rate, move |i| i >= total).await
}

/// Phase 0: `--rate` requests a second from the moment the daemon listens until it is ready,
/// that is for as long as its first reconcile of the whole repository (cold: every DAG file
/// rendered and written) runs.
pub(super) async fn during_cold_reconcile(
    args: &Args,
    daemon: &Daemon,
    http: &reqwest::Client,
) -> anyhow::Result<ApiFigures> {
    let url = format!("{}/api/v1/runs", daemon.base);
    let ready = Arc::new(AtomicBool::new(false));
    let watch = {
        let (http, readyz, ready) = (
            http.clone(),
            format!("{}/readyz", daemon.base),
            ready.clone(),
        );
        tokio::spawn(async move {
            loop {
                let up = http
                    .get(&readyz)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if up {
                    ready.store(true, Ordering::Release);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let stop = ready.clone();
    let figures = open_loop(http, url, args.rate, move |_| stop.load(Ordering::Acquire)).await;
    watch.abort();
    ensure!(
        ready.load(Ordering::Acquire),
        "olo serve did not become ready"
    );
    figures
}

/// Sends GET `url` at `rate` requests a second until `done(requests scheduled)`, each
/// on its own task (a slow answer never delays the next request), and waits for every answer.
async fn open_loop(
    http: &reqwest::Client,
    url: String,
    rate: f64,
    done: impl Fn(usize) -> bool + Send + 'static,
) -> anyhow::Result<ApiFigures> {
    // The schedule runs on its own thread: `std::thread::sleep` wakes within tens of µs, where
    // tokio's timer rounds up to the next millisecond (at 500 req/s, 2 ms apart). Requests run
    // on the runtime.
    let runtime = tokio::runtime::Handle::current();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now() + Duration::from_millis(20);
    let http = http.clone();
    let schedule = std::thread::spawn(move || {
        let mut i = 0;
        loop {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if done(i) {
                return i;
            }
            let (http, url, tx) = (http.clone(), url.clone(), tx.clone());
            runtime.spawn(async move {
                let sent = Instant::now();
                let ok = match http.get(&url).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let done = Instant::now();
                let _ = tx.send((done - at, done - sent, done, ok));
            });
            i += 1;
        }
    });
    let (mut latency, mut service) = (Vec::new(), Vec::new());
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
    let sent = schedule
        .join()
        .map_err(|_| anyhow::anyhow!("the request schedule thread panicked"))?;
    Ok(ApiFigures {
        sent,
        ok,
        errors,
        seconds: (last - start).as_secs_f64(),
        latency: Percentiles::of(latency).context("no requests")?,
        service: Percentiles::of(service).context("no requests")?,
    })
}
