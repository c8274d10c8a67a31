//! Phase 2: webhook throughput, C connections sending signed pushes for an untracked branch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::daemon::Daemon;
use super::percentiles::Percentiles;
use super::push_webhook::{push_payload, sign, webhook};
use super::Args;

pub(super) struct WebhookFigures {
    pub(super) body_bytes: usize,
    pub(super) seconds: f64,
    pub(super) accepted: usize,
    pub(super) non_2xx: usize,
    pub(super) transport_errors: usize,
    /// 2xx answers other than 202 "not the tracked branch, ignored".
    pub(super) unexpected: usize,
    pub(super) statuses: BTreeMap<u16, usize>,
    pub(super) latency: Option<Percentiles>,
}

#[derive(Default)]
struct WorkerTally {
    latency: Vec<Duration>,
    statuses: BTreeMap<u16, usize>,
    transport_errors: usize,
    unexpected: usize,
}

pub(super) async fn webhook_throughput(
    args: &Args,
    daemon: &Daemon,
) -> anyhow::Result<WebhookFigures> {
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
