//! Every page in headless Chromium: the seeded state shown, links and filters followed, no
//! console error, dark mode, and a screenshot of each page under `target/screenshots/`.

use crate::common::browser::{check_page, Browser};
use chrono::Utc;
use serde_json::{json, Value};

use super::seed::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_shows_the_seeded_state_in_headless_chromium() {
    let s = seeded().await;
    let base = s.d.base.clone();
    let b = Browser::start().await;

    // The console log is read for real: an error logged on purpose is seen.
    b.goto(&format!("{base}/healthz")).await;
    b.js("console.error('olo-probe')").await;
    let probe = b.log().await;
    assert!(
        probe
            .iter()
            .any(|e| e["level"] == "SEVERE"
                && e["message"].as_str().unwrap_or("").contains("olo-probe")),
        "the browser log does not report console errors: {probe:?}"
    );

    // Overview: Stalled with the diagnostics of the broken job, and the counts.
    b.goto(&format!("{base}/")).await;
    let text = check_page(&b, &base, "overview").await;
    assert!(text.contains("Stalled"), "{text}");
    // Which repository olo follows, as Argo shows it.
    let tracked = format!("tracking file://{}", s._repo.path().display());
    assert!(text.contains(&tracked), "{tracked} not in {text}");
    let diagnostics = b
        .js("return document.getElementById('diagnostics').innerText")
        .await;
    assert!(
        diagnostics
            .as_str()
            .unwrap()
            .contains("workspaces/w/jobs/broken.yaml"),
        "{diagnostics}"
    );
    assert_eq!(
        b.attr("#last-applied a", "title").await.as_deref(),
        Some(s.c2.as_str())
    );
    assert_eq!(
        b.attr("#last-attempted a", "title").await.as_deref(),
        Some(s.c3.as_str())
    );
    let count = |id: &str| {
        let b = &b;
        let id = id.to_string();
        async move {
            b.js(&format!("return document.getElementById('{id}').innerText"))
                .await
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(count("workspace-count").await, "1");
    assert_eq!(count("job-count").await, "2");
    assert_eq!(count("failed-count").await, "1");
    assert_eq!(count("drift").await, "just now");
    let drift = b
        .js("return document.getElementById('drift-card').innerText")
        .await;
    assert!(
        drift.as_str().unwrap().contains("dags/w__orders.py"),
        "{drift}"
    );

    // Dark mode follows the system.
    let light_bg = b
        .js("return getComputedStyle(document.body).backgroundColor")
        .await;
    b.post(
        "/goog/cdp/execute",
        json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}}),
    )
    .await;
    let dark_bg = b
        .js("return getComputedStyle(document.body).backgroundColor")
        .await;
    assert_ne!(light_bg, dark_bg, "no dark mode");
    assert_eq!(dark_bg, "rgb(13, 17, 23)");
    b.screenshot("overview-dark").await;
    b.post(
        "/goog/cdp/execute",
        json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [{"name": "prefers-color-scheme", "value": "light"}]}}),
    )
    .await;

    // Workspaces → workspace → job, by clicking.
    b.click("nav a[href='/workspaces']").await;
    assert_eq!(
        b.wait_for_url("/workspaces").await,
        format!("{base}/workspaces")
    );
    let text = check_page(&b, &base, "workspaces").await;
    assert!(text.contains("The test lakehouse."), "{text}");
    assert!(text.contains("data-eng@example.com"), "{text}");
    b.click("#workspaces a[href='/workspaces/w']").await;
    b.wait_for_url("/workspaces/w").await;
    let text = check_page(&b, &base, "workspace").await;
    // Each job's newest run, linked.
    let last_runs = b
        .js("return [...document.querySelectorAll('#jobs tbody tr')].map(r => [r.cells[0].innerText, r.querySelector('.last-run').innerText.trim(), (r.querySelector('.last-run a') || {}).pathname || ''])")
        .await;
    assert_eq!(
        last_runs,
        json!([
            ["loader", "running", format!("/runs/{}", s.running_run)],
            ["orders", "failed", format!("/runs/{}", s.failed_run)]
        ]),
        "{last_runs}"
    );
    let namespaces = b
        .js("return document.getElementById('namespaces').innerText")
        .await;
    assert_eq!(namespaces, "raw gold");
    let roles = b
        .js("return document.getElementById('roles').innerText")
        .await;
    assert_eq!(
        roles,
        "admin: group:platform\noperator: —\nviewer: group:analysts user:ada@example.com"
    );
    assert!(
        text.contains("w__orders") && text.contains("w__loader"),
        "{text}"
    );
    assert!(
        text.contains("30 4 * * *"),
        "the live (second) commit: {text}"
    );
    b.click("#jobs a[href='/workspaces/w/jobs/orders']").await;
    assert_eq!(
        b.wait_for_url("/jobs/orders").await,
        format!("{base}/workspaces/w/jobs/orders")
    );
    let text = check_page(&b, &base, "job").await;
    // The task graph: a box per task, in dependency order, with the newest run's states.
    assert_eq!(
        b.js("return [...document.querySelectorAll('#task-graph .task')].map(g => [g.dataset.id, g.dataset.state])")
            .await,
        json!([["extract", "failed"], ["transform", ""], ["publish", ""]])
    );
    assert_eq!(
        b.js("return document.getElementById('job-description').innerText")
            .await,
        "Orders <script>window.__pwned = 1</script> & more"
    );
    assert_eq!(b.js("return window.__pwned === undefined").await, true);
    assert_eq!(
        b.js("return document.getElementById('dag-id').innerText")
            .await,
        "w__orders"
    );
    let tasks = b
        .js("return [...document.querySelectorAll('#tasks tbody tr')].map(r => [...r.cells].map(c => c.innerText.trim()))")
        .await;
    assert_eq!(
        tasks,
        json!([
            ["extract", "bash", "—", "—", "raw.orders"],
            ["transform", "bash", "extract", "raw.orders", "gold.revenue"],
            ["publish", "bash", "transform", "gold.revenue", "—"],
        ])
    );
    assert_eq!(
        b.attr("#spec-link", "href").await,
        Some(format!(
            "https://github.com/Codertocat/Hello-World/blob/{}/workspaces/w/jobs/orders.yaml",
            s.c2
        ))
    );
    assert!(text.contains(&format!("#{}", s.ok_run)), "{text}");
    assert!(text.contains(&format!("#{}", s.failed_run)), "{text}");
    assert!(!text.contains(&format!("#{}", s.running_run)), "{text}");
    // Schedule and next run (04:30 UTC, today or tomorrow), the spec as written at the live
    // commit, and the DAG file as deployed (folded until opened).
    let next = b
        .js("return document.querySelector('#next-run time').dateTime")
        .await;
    let next = chrono::DateTime::parse_from_rfc3339(next.as_str().unwrap()).unwrap();
    let ahead = next.with_timezone(&Utc) - Utc::now();
    assert!(
        ahead > chrono::Duration::zero() && ahead <= chrono::Duration::hours(24),
        "{next}"
    );
    assert_eq!(next.format("%H:%M:%S").to_string(), "04:30:00");
    let spec = b
        .js("return document.getElementById('spec-source').textContent")
        .await;
    assert_eq!(spec.as_str().unwrap(), orders("30 4 * * *"));
    assert_eq!(
        b.js("return document.getElementById('dag-source').checkVisibility()")
            .await,
        false
    );
    b.click("#dag-details summary").await;
    let dag = b
        .js("return document.getElementById('dag-source').textContent")
        .await;
    let dag = dag.as_str().unwrap();
    assert!(dag.starts_with("# Generated by olo"), "{dag}");
    assert!(dag.contains("dag_id='w__orders'"), "{dag}");
    assert!(dag.contains("schedule='30 4 * * *'"), "{dag}");
    b.screenshot("job-dag-source").await;

    // Lineage: the job's card names the undeclared table; its graph is drawn as SVG.
    let undeclared = b
        .js("return document.getElementById('observed-not-declared').innerText")
        .await;
    assert_eq!(undeclared, "writes dataset:w:raw.orders_rejected");
    let declared_only = b
        .js("return document.getElementById('declared-not-observed').innerText")
        .await;
    assert_eq!(
        declared_only,
        // Task by task the job reads what its own earlier tasks write.
        "reads dataset:w:gold.revenue\nreads dataset:w:raw.orders\nwrites dataset:w:gold.revenue"
    );
    b.click("#lineage-link").await;
    b.wait_for_url("/lineage?node=job%3Aw%3Aorders").await;
    check_page(&b, &base, "lineage").await;
    // The job's card: declared in the repository and seen in events, its latest run as the
    // extract task's COMPLETE event reported it.
    assert_eq!(
        b.js("return document.getElementById('lineage-node-sources').innerText")
            .await,
        json!("declared and observed")
    );
    let run = b
        .js("return document.getElementById('lineage-node-run').innerText")
        .await;
    assert!(run.as_str().unwrap().starts_with("completed"), "{run}");
    let nodes = b
        .js("return [...document.querySelectorAll('#lineage-graph a.node')].map(n => n.dataset.id)")
        .await;
    assert_eq!(
        nodes,
        json!([
            "job:w:orders",
            "dataset:w:gold.revenue",
            "dataset:w:raw.orders",
            "dataset:w:raw.orders_rejected",
            // Two edges away: the job of another namespace that read gold.revenue.
            "job:analytics:weekly_report"
        ])
    );
    let edges = b
        .js("return [...document.querySelectorAll('#lineage-graph path.edge')].map(e => e.classList[1]).sort()")
        .await;
    assert_eq!(
        edges,
        // orders → raw.orders (both), raw.orders → orders, orders ⇄ gold.revenue (declared),
        // orders → raw.orders_rejected (observed), gold.revenue → weekly_report (observed).
        json!([
            "edge-both",
            "edge-declared",
            "edge-declared",
            "edge-declared",
            "edge-observed",
            "edge-observed"
        ])
    );
    // Upstream left of the job, downstream right of it.
    let x = |id: &str| {
        format!("return +document.querySelector(`a.node[data-id='{id}'] rect`).getAttribute('x')")
    };
    let job_x = b.js(&x("job:w:orders")).await.as_f64().unwrap();
    assert!(b.js(&x("dataset:w:gold.revenue")).await.as_f64().unwrap() > job_x);
    b.click("a.node[data-id='dataset:w:raw.orders_rejected']")
        .await;
    b.wait_for_url("node=dataset%3Aw%3Araw.orders_rejected")
        .await;
    check_page(&b, &base, "lineage-dataset").await;
    // Without a node: the overview, with the job whose events disagree, linked to its graph.
    b.click("nav a[href='/lineage']").await;
    b.wait_for_url("/lineage").await;
    check_page(&b, &base, "lineage-overview").await;
    // Each namespace with its jobs and datasets; the edge from w into analytics, observed only.
    let clusters = b
        .js("return [...document.querySelectorAll('#lineage-namespaces .cluster')].map(c => [c.dataset.namespace, [...c.querySelectorAll('li a')].map(a => a.dataset.id)])")
        .await;
    assert_eq!(
        clusters,
        json!([
            [
                "analytics",
                [
                    "job:analytics:weekly_report",
                    "dataset:analytics:reports.weekly"
                ]
            ],
            [
                "w",
                [
                    "job:w:orders",
                    "dataset:w:gold.revenue",
                    "dataset:w:raw.orders",
                    "dataset:w:raw.orders_rejected"
                ]
            ]
        ])
    );
    let weekly = b
        .js("return document.querySelector(\"#lineage-namespaces a[data-id='job:analytics:weekly_report']\").parentElement.innerText")
        .await;
    assert!(
        weekly.as_str().unwrap().contains("failed")
            && weekly.as_str().unwrap().contains("observed only"),
        "{weekly}"
    );
    let crossings = b
        .js("return [...document.querySelectorAll('#lineage-crossings tbody tr')].map(r => r.innerText.split('\t').map(t => t.trim()))")
        .await;
    assert_eq!(
        crossings,
        json!([[
            "w",
            "analytics",
            "1",
            "observed",
            "dataset:w:gold.revenue → job:analytics:weekly_report"
        ]])
    );
    let mismatched = b
        .js("return [...document.querySelectorAll('#lineage-mismatched tbody tr')].map(r => r.innerText.split('\t'))")
        .await;
    assert_eq!(
        mismatched,
        json!([
            ["job:w:orders", "3", "1"],
            ["job:analytics:weekly_report", "0", "2"]
        ])
    );
    // Search by name: both revenue tables' readers and writers are a click away.
    b.fill("#lineage-q", "revenue").await;
    b.click("#lineage-search-form button").await;
    b.wait_for_url("/lineage?q=revenue&namespace=&kind=").await;
    check_page(&b, &base, "lineage-search").await;
    let found = b
        .js("return [...document.querySelectorAll('#lineage-results tbody tr')].map(r => r.innerText.split('\t').map(t => t.trim()))")
        .await;
    assert_eq!(
        found,
        json!([["dataset", "w", "gold.revenue", "declared and observed", ""]])
    );
    // The failed job from the overview: its card says what events said.
    b.click("nav a[href='/lineage']").await;
    b.wait_for_url("/lineage").await;
    b.click("#lineage-namespaces a[data-id='job:analytics:weekly_report']")
        .await;
    b.wait_for_url("node=job%3Aanalytics%3Aweekly_report").await;
    check_page(&b, &base, "lineage-failed-job").await;
    assert_eq!(
        b.js("return document.getElementById('lineage-node-sources').innerText")
            .await,
        json!("observed only")
    );
    let run = b
        .js("return document.getElementById('lineage-node-run').innerText")
        .await;
    assert!(run.as_str().unwrap().starts_with("failed"), "{run}");
    assert_eq!(
        b.js("return document.getElementById('lineage-node-error').innerText")
            .await,
        json!("Table not found: gold.revenue_v2")
    );
    assert_eq!(
        b.attr(
            "#lineage-graph a[data-id='job:analytics:weekly_report']",
            "data-run"
        )
        .await
        .as_deref(),
        Some("failed")
    );
    b.click("nav a[href='/lineage']").await;
    b.wait_for_url("/lineage").await;
    b.click("#lineage-mismatched a").await;
    b.wait_for_url("/lineage?node=job%3Aw%3Aorders").await;
    b.goto(&format!("{base}/workspaces/w/jobs/orders")).await;

    // The job's runs, then the state filter of the runs page.
    b.click("#all-job-runs").await;
    b.wait_for_url("/runs?workspace=w&job=orders").await;
    let text = check_page(&b, &base, "runs-of-job").await;
    assert!(text.contains(&format!("#{}", s.ok_run)), "{text}");
    assert!(!text.contains(&format!("#{}", s.running_run)), "{text}");
    b.click("nav a[href='/runs']").await;
    assert_eq!(b.wait_for_url("/runs").await, format!("{base}/runs"));
    let text = check_page(&b, &base, "runs").await;
    for id in [s.ok_run, s.failed_run, s.running_run] {
        assert!(text.contains(&format!("#{id}")), "{text}");
    }
    b.click("#filter-state option[value='failed']").await;
    b.click("#filter-apply").await;
    b.wait_for_url("state=failed&since=").await;
    let text = check_page(&b, &base, "runs-failed").await;
    let shown = b
        .js("return [...document.querySelectorAll('table.grid tbody tr td:first-child')].map(c => c.innerText)")
        .await;
    assert_eq!(shown, json!([format!("#{}", s.failed_run)]), "{text}");
    // The time window keeps the other filters: every seeded run is from the last hour.
    b.click("#filter-since option[value='1h']").await;
    b.click("#filter-apply").await;
    b.wait_for_url("state=failed&since=1h").await;
    check_page(&b, &base, "runs-failed-last-hour").await;
    let shown = b
        .js("return [...document.querySelectorAll('table.grid tbody tr td:first-child')].map(c => c.innerText)")
        .await;
    assert_eq!(shown, json!([format!("#{}", s.failed_run)]));
    assert!(b.url().await.contains("state=failed"));

    // A run: task instances, the timeline, and the way to a log.
    b.click(&format!("a[href='/runs/{}']", s.failed_run)).await;
    b.wait_for_url(&format!("/runs/{}", s.failed_run)).await;
    check_page(&b, &base, "run-failed").await;
    b.goto(&format!("{base}/runs/{}", s.ok_run)).await;
    let text = check_page(&b, &base, "run").await;
    assert!(
        text.contains("olo__ok") && text.contains("ci-bot"),
        "{text}"
    );
    let rows = b
        .js("return [...document.querySelectorAll('#task-instances tbody tr')].map(r => [r.cells[0].innerText, r.cells[2].innerText, r.cells[3].innerText, r.cells[6].innerText])")
        .await;
    assert_eq!(
        rows,
        json!([
            ["extract", "1", "success", "1m 00s"],
            ["transform", "1", "failed", "30.0 s"],
            ["transform", "2", "success", "2m 00s"],
            ["publish", "1", "success", "1m 00s"],
        ])
    );
    // The bars sit where the tries ran: the run spans 300 s.
    let bars = b
        .js("return [...document.querySelectorAll('#gantt .gantt-bar')].map(e => [e.style.left, e.style.width])")
        .await;
    assert_eq!(
        bars,
        json!([
            ["0%", "20%"],
            ["20%", "10%"],
            ["40%", "40%"],
            ["80%", "20%"]
        ])
    );
    b.click(&format!(
        "a[href='/runs/{}/tasks/transform/logs/2']",
        s.ok_run
    ))
    .await;
    b.wait_for_url("/logs/2").await;
    let text = check_page(&b, &base, "log").await;
    assert!(text.contains("Airflow is not configured"), "{text}");
    assert_eq!(
        b.js("return document.querySelector('meta[http-equiv=refresh]') === null")
            .await,
        true,
        "a finished run's log does not reload"
    );
    b.goto(&format!("{base}/runs/{}/tasks/load/logs/1", s.running_run))
        .await;
    check_page(&b, &base, "log-running").await;
    assert_eq!(
        b.js("return document.querySelector('meta[http-equiv=refresh]').content")
            .await,
        "5"
    );

    // Revisions: newest first, with status; a revision with its plan and diff.
    b.goto(&format!("{base}/revisions")).await;
    let text = check_page(&b, &base, "revisions").await;
    let revs = b
        .js("return [...document.querySelectorAll('#revisions tbody tr')].map(r => [r.cells[0].querySelector('a').title, r.cells[1].innerText, r.cells[2].innerText, r.cells[3].innerText])")
        .await;
    assert_eq!(
        revs,
        json!([
            [s.c3, "Ada", "Add a broken job", "invalid"],
            [s.c2, "Grace", "Run orders at 04:30", "applied"],
            [
                s.c1,
                "Ada",
                "Add orders <script>alert('commit')</script>",
                "applied"
            ],
        ]),
        "{text}"
    );
    b.click(&format!("#revisions a[title='{}']", s.c2)).await;
    b.wait_for_url(&format!("/revisions/{}", s.c2)).await;
    let text = check_page(&b, &base, "revision").await;
    assert!(text.contains("Grace <grace@example.com>"), "{text}");
    assert!(text.contains("dags/w__orders.py"), "{text}");
    let added = b
        .js("return [...document.querySelectorAll('pre.diff .da')].map(e => e.innerText).join('\\n')")
        .await;
    assert!(added.as_str().unwrap().contains("30 4 * * *"), "{added}");
    b.goto(&format!("{base}/revisions/{}", s.c3)).await;
    let text = check_page(&b, &base, "revision-invalid").await;
    assert!(text.contains("broken.yaml"), "{text}");

    // The audit log: who applied what.
    b.click("nav a[href='/audit']").await;
    b.wait_for_url("/audit").await;
    let text = check_page(&b, &base, "audit").await;
    assert!(text.contains("Grace <grace@example.com>"), "{text}");
    assert!(text.contains("Ada <ada@example.com>"), "{text}");
    // Each entry reads as a sentence; its JSON details are folded away.
    assert!(text.contains("refused commit"), "{text}");
    assert!(text.contains("applied "), "{text}");
    let folded = b
        .js("return [...document.querySelectorAll('#audit details')].filter(d => !d.open).length")
        .await;
    assert!(folded.as_u64().unwrap() >= 3, "{folded}");

    // Unknown things: a 404 page in the same layout.
    b.goto(&format!("{base}/workspaces/w/jobs/nope")).await;
    let errors: Vec<Value> = b.log().await;
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().unwrap_or("").contains("404")),
        "{errors:?}"
    );
    let text = b.text().await;
    assert!(text.contains("There is no job w/nope"), "{text}");
    b.screenshot("not-found").await;

    b.close().await;
}
