//! Phase 3: the runs list at a constant open-loop request rate.

use std::time::Duration;

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
