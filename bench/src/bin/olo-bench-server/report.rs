//! The summary (text) and the figures (JSON) of a whole run.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitStatus;

use anyhow::Context as _;
use serde_json::json;

use super::api_rate::ApiFigures;
use super::lineage::LineageFigures;
use super::pages::PageFigures;
use super::percentiles::Percentiles;
use super::push::PushFigures;
use super::webhook_throughput::WebhookFigures;
use super::Args;

/// What the phases measured, and how the daemon ended.
pub(super) struct Figures {
    pub(super) cold: ApiFigures,
    pub(super) push: PushFigures,
    pub(super) hooks: WebhookFigures,
    pub(super) api: ApiFigures,
    pub(super) pages: Vec<PageFigures>,
    pub(super) lineage: LineageFigures,
    pub(super) exited: Option<ExitStatus>,
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

/// Prints the summary (to stderr when the JSON goes to stdout) and writes the JSON if asked.
pub(super) fn report(args: &Args, olo: &Path, figures: Figures) -> anyhow::Result<()> {
    let Figures {
        cold,
        push,
        hooks,
        api,
        pages,
        lineage,
        exited,
    } = figures;
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
        "0. GET /api/v1/runs while the first (cold) reconcile of all {jobs} jobs runs, open loop at {} req/s",
        args.rate
    );
    api_lines(&mut out, &cold);
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
    api_lines(&mut out, &api);
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
            "api_during_cold_reconcile": {
                "jobs": jobs,
                "target_rate": args.rate,
                "seconds": cold.seconds,
                "sent": cold.sent,
                "ok": cold.ok,
                "errors": cold.errors,
                "latency_from_schedule": cold.latency.json(),
                "service_time": cold.service.json(),
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

/// An open-loop API phase's lines.
fn api_lines(out: &mut String, api: &ApiFigures) {
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
}
