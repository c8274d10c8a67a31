//! Phase 5: OpenLineage ingest throughput, then depth-5 graph queries.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::daemon::Daemon;
use super::percentiles::Percentiles;
use super::Args;

/// Event `k` of the lineage benchmark: job `bench.job{k}` reads `t{k}` and a far table, writes
/// `t{2k+1}` and `t{2k+2}` (a connected, branching graph).
pub(super) fn lineage_event(k: usize, tables: usize) -> Value {
    let t = |i: usize| json!({"namespace": "bench", "name": format!("db.t{}", i % tables)});
    json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-11-27T04:30:00Z",
        "producer": "https://github.com/openlake/olo/bench",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": uuid::Uuid::new_v4().to_string()},
        "job": {"namespace": "bench", "name": format!("job{k}")},
        "inputs": [t(k), t(k.wrapping_mul(7919) + 13)],
        "outputs": [t(2 * k + 1), t(2 * k + 2)],
    })
}

pub(super) struct LineageFigures {
    pub(super) events: usize,
    pub(super) seconds: f64,
    pub(super) errors: usize,
    pub(super) latency: Percentiles,
    pub(super) edges: u64,
    pub(super) query: Percentiles,
    pub(super) query_nodes: Percentiles,
}

/// Posts `--lineage-events` events over `--connections` connections, then asks for depth-5
/// graphs around random jobs.
pub(super) async fn lineage_bench(args: &Args, daemon: &Daemon) -> anyhow::Result<LineageFigures> {
    let n = args.lineage_events;
    let tables = 2 * n + 3;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (next, url) = (next.clone(), format!("{}/api/v1/lineage", daemon.base));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        workers.spawn(async move {
            let (mut latency, mut errors) = (Vec::new(), 0usize);
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if k >= n {
                    break;
                }
                let body = serde_json::to_vec(&lineage_event(k, tables)).unwrap_or_default();
                let sent = Instant::now();
                let ok = match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                latency.push(sent.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (latency, errors)
        });
    }
    let (mut latency, mut errors) = (Vec::with_capacity(n), 0);
    while let Some(r) = workers.join_next().await {
        let (l, e) = r?;
        latency.extend(l);
        errors += e;
    }
    let seconds = start.elapsed().as_secs_f64();
    ensure!(errors == 0, "{errors} lineage events were not accepted");

    let http = reqwest::Client::new();
    let (mut query, mut nodes) = (Vec::new(), Vec::new());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..args.lineage_queries + 5 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let k = (seed % n as u64) as usize;
        let url = format!(
            "{}/api/v1/lineage?nodeId=job:bench:job{k}&depth=5",
            daemon.base
        );
        let sent = std::time::Instant::now();
        let r = http.get(&url).send().await?;
        ensure!(r.status() == 200, "GET {url} answered {}", r.status());
        let v: Value = r.json().await?;
        let took = sent.elapsed();
        let count = v["graph"].as_array().map_or(0, Vec::len);
        ensure!(count > 1, "the graph around job{k} has {count} nodes");
        if i >= 5 {
            query.push(took);
            // Node counts through the same percentile code (1 ms = 1 node).
            nodes.push(Duration::from_millis(count as u64));
        }
    }
    Ok(LineageFigures {
        events: n,
        seconds,
        errors,
        latency: Percentiles::of(latency).context("no events")?,
        edges: 4 * n as u64,
        query: Percentiles::of(query).context("no queries")?,
        query_nodes: Percentiles::of(nodes).context("no queries")?,
    })
}
