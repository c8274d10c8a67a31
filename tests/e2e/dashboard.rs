//! The dashboard end to end: `olo serve` seeded with real reconciles (two applied commits and
//! an invalid one, so the branch is Stalled with diagnostics) and runs written into its SQLite
//! state store, read over plain HTTP and in headless Chromium driven through chromedriver
//! (W3C WebDriver, spoken directly with reqwest). Every page is checked for the seeded data,
//! its links and filters are followed, the browser's console must stay free of errors, and a
//! screenshot of each page is saved under `target/screenshots/`.
//!
//! `OLO_TEST_CHROMEDRIVER` names chromedriver (scripts/chromium.sh installs it); the browser
//! test fails when it is unset.

use crate::common;

use crate::common::browser::{check_page, Browser};
use crate::common::daemon::{push_payload, sign, Daemon, WHO};
use crate::common::Repo;
use chrono::Utc;
use olo_reconciler::store::{NewAudit, NewRun, RunTrigger, RunUpdate, TaskInstanceRow};
use serde_json::{json, Value};

const WORKSPACE: &str = "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: w, owners: [data-eng@example.com]}\nspec:\n  description: The test lakehouse.\n  lakehouse: {catalog: lake, warehouse: 's3://lake-bucket/w', namespaces: [raw, gold]}\n  access: {admin: ['group:platform'], viewer: ['group:analysts', 'user:ada@example.com']}\n";

/// A job whose description carries markup that must reach the page as text.
fn orders(schedule: &str) -> String {
    format!(
        "apiVersion: olo/v1\nkind: Job\nmetadata: {{name: orders}}\nspec:\n  description: \"Orders <script>window.__pwned = 1</script> & more\"\n  schedule: '{schedule}'\n  start_date: 2026-01-01\n  tags: [sales]\n  tasks:\n    - id: extract\n      bash: {{command: 'echo extract'}}\n      outputs: [raw.orders]\n    - id: transform\n      bash: {{command: 'echo transform'}}\n      depends_on: [extract]\n      inputs: [raw.orders]\n      outputs: [gold.revenue]\n    - id: publish\n      bash: {{command: 'echo publish'}}\n      depends_on: [transform]\n      inputs: [gold.revenue]\n"
    )
}

const LOADER: &str = "apiVersion: olo/v1\nkind: Job\nmetadata: {name: loader}\nspec:\n  paused: true\n  tasks:\n    - id: load\n      bash: {command: 'echo load'}\n";

/// A job that depends on a task it does not have: the commit is invalid.
const BROKEN: &str = "apiVersion: olo/v1\nkind: Job\nmetadata: {name: broken}\nspec:\n  tasks:\n    - id: a\n      bash: {command: 'echo a'}\n      depends_on: [nope]\n";

struct Seeded {
    d: Daemon,
    _repo: Repo,
    /// The first and second (applied) commits and the invalid third.
    c1: String,
    c2: String,
    c3: String,
    /// Runs: a finished one of orders (with tries), a failed one of orders, a running loader.
    ok_run: i64,
    failed_run: i64,
    running_run: i64,
}

async fn push(d: &Daemon, sha: &str, delivery: &str) {
    let body = push_payload("refs/heads/main", sha);
    let (status, _) = d.deliver("push", delivery, &body, &sign(&body)).await;
    assert_eq!(status, 202);
}

async fn seeded() -> Seeded {
    let repo = Repo::new();
    repo.write("workspaces/w/workspace.yaml", WORKSPACE);
    repo.write("workspaces/w/jobs/orders.yaml", &orders("0 3 * * *"));
    repo.write("workspaces/w/jobs/loader.yaml", LOADER);
    let c1 = repo.commit(
        "Add orders <script>alert('commit')</script>\n\nbody line",
        WHO,
    );
    let d = Daemon::start(&repo, &[]).await;
    assert_eq!(d.last_applied().await.as_deref(), Some(c1.as_str()));

    repo.write("workspaces/w/jobs/orders.yaml", &orders("30 4 * * *"));
    let c2 = repo.commit("Run orders at 04:30", ("Grace", "grace@example.com"));
    push(&d, &c2, "dash-1").await;
    d.wait_until("the second commit to be applied", |d| {
        let c2 = c2.clone();
        async move { d.last_applied().await.as_deref() == Some(c2.as_str()) }
    })
    .await;

    repo.write("workspaces/w/jobs/broken.yaml", BROKEN);
    let c3 = repo.commit("Add a broken job", WHO);
    push(&d, &c3, "dash-2").await;
    d.wait_until(
        "the branch to stall on the invalid commit",
        |d| async move {
            let (_, s) = d.get("/api/v1/status").await;
            s["sync"]["state"] == "Stalled"
        },
    )
    .await;

    // Runs go straight into the daemon's SQLite store (the daemon has it open too).
    let url = format!("sqlite:{}", d.olo.state.path().join("state.db").display());
    let store = olo_reconciler::store::open(&url).await.unwrap();
    let new_run = |job: &str, id: &str| NewRun {
        workspace: "w".into(),
        job: job.into(),
        dag_id: format!("w__{job}"),
        airflow_run_id: id.into(),
        state: "queued".into(),
        trigger: RunTrigger::Api,
        triggered_by: Some("ci-bot".into()),
        revision: Some(c2.clone()),
        conf: json!({"day": "2026-11-26"}),
    };
    let now = Utc::now();
    let t = |secs: i64| Some(now - chrono::Duration::seconds(600 - secs));
    let ti = |task: &str, try_number, state: &str, s: i64, e: Option<i64>| TaskInstanceRow {
        task_id: task.into(),
        map_index: -1,
        try_number,
        state: Some(state.into()),
        started_at: t(s),
        ended_at: e.and_then(t),
        duration_seconds: e.map(|e| (e - s) as f64),
    };

    let ok = store
        .insert_run(&new_run("orders", "olo__ok"))
        .await
        .unwrap();
    store
        .update_run(
            ok.id,
            &RunUpdate {
                state: "success".into(),
                logical_date: t(0),
                started_at: t(0),
                ended_at: t(300),
            },
        )
        .await
        .unwrap();
    store
        .upsert_task_instances(
            ok.id,
            &[
                ti("extract", 1, "success", 0, Some(60)),
                ti("transform", 1, "failed", 60, Some(90)),
                ti("transform", 2, "success", 120, Some(240)),
                ti("publish", 1, "success", 240, Some(300)),
            ],
        )
        .await
        .unwrap();

    let failed = store
        .insert_run(&new_run("orders", "olo__failed"))
        .await
        .unwrap();
    store
        .update_run(
            failed.id,
            &RunUpdate {
                state: "failed".into(),
                logical_date: t(320),
                started_at: t(320),
                ended_at: t(400),
            },
        )
        .await
        .unwrap();
    store
        .upsert_task_instances(failed.id, &[ti("extract", 1, "failed", 320, Some(400))])
        .await
        .unwrap();

    let running = store
        .insert_run(&new_run("loader", "olo__running"))
        .await
        .unwrap();
    store
        .update_run(
            running.id,
            &RunUpdate {
                state: "running".into(),
                logical_date: t(500),
                started_at: t(500),
                ended_at: None,
            },
        )
        .await
        .unwrap();
    store
        .upsert_task_instances(running.id, &[ti("load", 1, "running", 500, None)])
        .await
        .unwrap();

    // Observed lineage: orders' extract task wrote raw.orders (declared) and a table it does not
    // declare.
    let (status, v) = d
        .post(
            "/api/v1/lineage",
            Some(common::daemon::TOKEN),
            json!({
                "eventType": "COMPLETE",
                "eventTime": "2026-11-27T04:30:00Z",
                "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.3.0",
                "run": {"runId": "01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11"},
                "job": {"namespace": "default", "name": "w__orders.extract"},
                "outputs": [
                    {"namespace": "w", "name": "raw.orders"},
                    {"namespace": "w", "name": "raw.orders_rejected"}
                ]
            }),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // A drift repair, as the engine records it (tests/e2e/reconcile.rs makes a real one).
    store
        .append_audit(&NewAudit {
            actor: "olo".into(),
            action: "drift_repaired".into(),
            target: "files".into(),
            revision: Some(c2.clone()),
            details: json!({"count": 1, "resources": ["dags/w__orders.py"]}),
        })
        .await
        .unwrap();

    Seeded {
        d,
        _repo: repo,
        c1,
        c2,
        c3,
        ok_run: ok.id,
        failed_run: failed.id,
        running_run: running.id,
    }
}

async fn page(d: &Daemon, path: &str) -> (u16, String, String) {
    let r = d
        .http
        .get(format!("{}{path}", d.base))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ctype, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_answer_with_the_right_status_and_escape_what_users_wrote() {
    let s = seeded().await;
    let d = &s.d;

    for path in [
        "/".to_string(),
        "/revisions".into(),
        format!("/revisions/{}", s.c1),
        format!("/revisions/{}", s.c3),
        "/audit".into(),
        "/workspaces".into(),
        "/workspaces/w".into(),
        "/workspaces/w/jobs/orders".into(),
        "/runs".into(),
        "/runs?workspace=w&job=&state=failed".into(),
        format!("/runs/{}", s.ok_run),
        format!("/runs/{}/tasks/transform/logs/2", s.ok_run),
    ] {
        let (status, ctype, body) = page(d, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(ctype, "text/html; charset=utf-8", "{path}");
        assert!(body.starts_with("<!doctype html>"), "{path}");
        assert!(
            body.contains(r#"<link rel="stylesheet" href="/assets/olo.css">"#),
            "{path}"
        );
        // Nothing is fetched from elsewhere: no absolute URL in src or stylesheet links.
        assert!(!body.contains("src=\"http"), "{path}");
        assert!(!body.contains("<script"), "{path} has a script: {body}");
    }

    let (status, ctype, css) = page(d, "/assets/olo.css").await;
    assert_eq!((status, ctype.as_str()), (200, "text/css; charset=utf-8"));
    assert!(css.contains("prefers-color-scheme: dark"));
    assert!(
        !css.contains("@import") && !css.contains("url("),
        "self-contained CSS"
    );

    for path in [
        "/workspaces/nope".to_string(),
        "/workspaces/w/jobs/nope".into(),
        "/workspaces/nope/jobs/orders".into(),
        "/revisions/0000000000000000000000000000000000000000".into(),
        "/runs/999999".into(),
        "/runs/not-a-number".into(),
        format!("/runs/{}/tasks/extract/logs/0", s.ok_run),
        "/runs/999999/tasks/extract/logs/1".into(),
    ] {
        let (status, ctype, body) = page(d, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(ctype, "text/html; charset=utf-8", "{path}");
        assert!(body.contains("<h1>Not found</h1>"), "{path}: {body}");
    }
    let (status, _, body) = page(d, "/runs?cursor=yesterday").await;
    assert_eq!(status, 400, "{body}");
    for bad_page in [
        "/workspaces/w?page=0",
        "/workspaces/w?page=2",
        "/workspaces/w?page=x",
    ] {
        let (status, _, body) = page(d, bad_page).await;
        assert_eq!(status, 400, "{bad_page}: {body}");
    }
    let (status, _, body) = page(d, "/workspaces/w?page=1").await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("job-pages"), "one page of jobs has no pager");
    let (status, _, body) = page(d, "/runs?since=2h").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("1h, 24h, 7d, 30d"), "{body}");
    let (status, _, body) = page(d, "/runs?since=24h&state=failed").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("#{}", s.failed_run)), "{body}");
    assert!(!body.contains(&format!("#{}", s.ok_run)), "{body}");
    let (status, v) = d.get("/api/v1/runs?since=yesterday").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{v}"
    );
    let (status, v) = d.get("/api/v1/runs?since=2000-01-01T00:00:00Z").await;
    assert_eq!(
        (status, v["items"].as_array().map(Vec::len)),
        (200, Some(3)),
        "{v}"
    );
    let (status, v) = d.get("/api/v1/runs?since=2999-01-01T00:00:00Z").await;
    assert_eq!(
        (status, v["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    let (_, v) = d.get("/api/v1/status").await;
    assert_eq!(
        v["last_drift_repair"]["details"]["resources"],
        json!(["dags/w__orders.py"]),
        "{v}"
    );

    // What users wrote is text, not markup.
    let (_, _, job) = page(d, "/workspaces/w/jobs/orders").await;
    assert!(
        job.contains("Orders &lt;script&gt;window.__pwned = 1&lt;&#x2f;script&gt; &amp; more"),
        "{job}"
    );
    let (_, _, revisions) = page(d, "/revisions").await;
    assert!(
        revisions
            .contains("Add orders &lt;script&gt;alert(&#x27;commit&#x27;)&lt;&#x2f;script&gt;"),
        "{revisions}"
    );
    assert!(
        !revisions.contains("body line"),
        "the list shows the first line"
    );
    let (_, _, rev) = page(d, &format!("/revisions/{}", s.c1)).await;
    assert!(
        rev.contains("body line"),
        "the revision page shows the whole message"
    );

    // The log page follows a run that has not finished, and only such a run.
    let (_, _, running) = page(d, &format!("/runs/{}/tasks/load/logs/1", s.running_run)).await;
    assert!(
        running.contains(r#"<meta http-equiv="refresh" content="5">"#),
        "{running}"
    );
    assert!(running.contains("Airflow is not configured"), "{running}");
    let (_, _, done) = page(d, &format!("/runs/{}/tasks/transform/logs/2", s.ok_run)).await;
    assert!(!done.contains("http-equiv=\"refresh\""), "{done}");

    // The API and probes are untouched by the dashboard's routes.
    let (status, v) = d.get("/api/v1/status").await;
    assert_eq!(
        (status, v["sync"]["state"].as_str()),
        (200, Some("Stalled"))
    );
    let (status, v) = d.get("/api/v1/workspaces/nope").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _, _) = page(d, "/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_closed_when_reads_need_a_token() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &common::job("one", "echo 1"));
    repo.commit("add one", WHO);
    let d = Daemon::start(&repo, &[("OLO_API__READ_REQUIRES_TOKEN", "true")]).await;
    for path in [
        "/",
        "/runs",
        "/workspaces/w",
        "/lineage",
        "/sql",
        "/audit",
        "/revisions",
    ] {
        let (status, _, body) = page(&d, path).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("requires an identity for reads"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_with_many_jobs_is_paged() {
    let repo = Repo::new();
    for n in 0..201 {
        let name = format!("j{n:03}");
        repo.write(
            &format!("workspaces/w/jobs/{name}.yaml"),
            &common::job(&name, "echo 1"),
        );
    }
    repo.commit("201 jobs", WHO);
    let d = Daemon::start(&repo, &[]).await;
    let rows = |body: &str| body.matches("<td class=\"mono\">w__j").count();

    let (status, _, first) = page(&d, "/workspaces/w").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(rows(&first), 200);
    assert!(first.contains("201, page 1 of 2"), "{first}");
    assert!(first.contains("w__j000") && first.contains("w__j199"));
    assert!(
        first.contains(r#"<a rel="next" href="/workspaces/w?page=2">"#),
        "{first}"
    );
    let (status, _, second) = page(&d, "/workspaces/w?page=2").await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(rows(&second), 1);
    assert!(second.contains("w__j200") && !second.contains("w__j199"));
    assert!(
        second.contains(r#"href="/workspaces/w?page=1">"#),
        "{second}"
    );
    let (_, _, list) = page(&d, "/workspaces").await;
    assert!(list.contains(r#"<td class="num">201</td>"#), "{list}");
}

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
    let nodes = b
        .js("return [...document.querySelectorAll('#lineage-graph a.node')].map(n => n.dataset.id)")
        .await;
    assert_eq!(
        nodes,
        json!([
            "job:w:orders",
            "dataset:w:gold.revenue",
            "dataset:w:raw.orders",
            "dataset:w:raw.orders_rejected"
        ])
    );
    let edges = b
        .js("return [...document.querySelectorAll('#lineage-graph path.edge')].map(e => e.classList[1]).sort()")
        .await;
    assert_eq!(
        edges,
        // orders → raw.orders (both), raw.orders → orders, orders ⇄ gold.revenue (declared),
        // orders → raw.orders_rejected (observed).
        json!([
            "edge-both",
            "edge-declared",
            "edge-declared",
            "edge-declared",
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
    let mismatched = b
        .js("return [...document.querySelectorAll('#lineage-mismatched tbody tr')].map(r => r.innerText.split('\t'))")
        .await;
    assert_eq!(mismatched, json!([["job:w:orders", "3", "1"]]));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_airflow_shows_as_a_failed_plan_and_an_unavailable_log() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &common::job("one", "echo 1"));
    let c1 = repo.commit("one", WHO);
    // Nothing listens on port 9 of this host (discard; closed here).
    let d = Daemon::start(
        &repo,
        &[
            ("OLO_AIRFLOW__URL", "http://127.0.0.1:9"),
            ("OLO_AIRFLOW__PASSWORD_ENV", "TEST_AIRFLOW_PASSWORD"),
            ("TEST_AIRFLOW_PASSWORD", "x"),
            ("OLO_AIRFLOW__PARSE_TIMEOUT_SECONDS", "2"),
            ("OLO_AIRFLOW__TIMEOUT_SECONDS", "2"),
        ],
    )
    .await;
    let (status, _, rev) = page(&d, &format!("/revisions/{c1}")).await;
    assert_eq!(status, 200);
    assert!(
        rev.contains(r#"<pre class="error-text">Airflow did not parse this DAG within 2 s: w__one (Airflow did not answer"#),
        "{rev}"
    );
    let (_, _, overview) = page(&d, "/").await;
    assert!(
        overview.contains(r#"<span class="badge tone-bad">Stalled</span>"#),
        "{overview}"
    );

    let url = format!("sqlite:{}", d.olo.state.path().join("state.db").display());
    let store = olo_reconciler::store::open(&url).await.unwrap();
    let run = store
        .insert_run(&NewRun {
            workspace: "w".into(),
            job: "one".into(),
            dag_id: "w__one".into(),
            airflow_run_id: "olo__dead".into(),
            state: "failed".into(),
            trigger: RunTrigger::Api,
            triggered_by: None,
            revision: None,
            conf: json!({}),
        })
        .await
        .unwrap();
    let (status, _, log) = page(&d, &format!("/runs/{}/tasks/a/logs/1", run.id)).await;
    assert_eq!(status, 503, "{log}");
    assert!(log.contains("Airflow did not answer"), "{log}");
    assert!(
        !log.contains("http-equiv=\"refresh\""),
        "a failed run is finished: {log}"
    );
}
