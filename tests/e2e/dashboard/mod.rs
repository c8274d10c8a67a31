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

use crate::common::daemon::{Daemon, WHO};
use crate::common::Repo;
use olo_reconciler::store::{NewRun, RunTrigger};
use serde_json::json;

mod in_browser;
mod seed;

use seed::*;

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
    assert!(!rev.contains(r#"id="live""#), "c1 is not live any more");
    // The live revision is marked, in the list and on its page; its page shows the YAML change.
    assert_eq!(revisions.matches(">live</span>").count(), 1, "{revisions}");
    // Each revision's newest plan, in counts: c2 changed the orders DAG.
    assert!(
        revisions.contains("<td class=\"small\">1 changed</td>"),
        "{revisions}"
    );
    let (_, _, rev) = page(d, &format!("/revisions/{}", s.c2)).await;
    assert!(rev.contains(r#"id="live""#), "{rev}");
    let change = rev
        .split(r#"id="config-change""#)
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap_or_default();
    assert!(
        change
            .contains(">modified</span> <code>workspaces&#x2f;w&#x2f;jobs&#x2f;orders.yaml</code>")
            && change.contains(r#"<span class="dd">-"#)
            && change.contains("0 3 * * *")
            && change.contains(r#"<span class="da">+"#)
            && change.contains("30 4 * * *"),
        "{change}"
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
async fn the_lineage_overview_is_never_blank_and_pages_its_namespaces() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &common::job("one", "echo 1"));
    repo.commit("one", WHO);
    let d = Daemon::start(&repo, &[]).await;
    // No lineage at all: the page says where lineage comes from.
    let (status, _, empty) = page(&d, "/lineage").await;
    assert_eq!(status, 200, "{empty}");
    assert!(empty.contains(r#"id="lineage-empty""#), "{empty}");

    // 31 namespaces, one job each writing 15 tables: 2 pages of namespaces, 12 jobs and 12
    // datasets listed per namespace and the rest counted.
    for n in 0..31 {
        let outputs: Vec<_> = (0..15)
            .map(|t| json!({"namespace": format!("ns{n:02}"), "name": format!("t{t:02}")}))
            .collect();
        let (status, v) = d
            .post(
                "/api/v1/lineage",
                Some(common::daemon::TOKEN),
                json!({
                    "eventType": "COMPLETE",
                    "eventTime": "2026-11-27T04:30:00Z",
                    "producer": "https://example.com/loader",
                    "run": {"runId": format!("01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b{n:02}")},
                    "job": {"namespace": format!("ns{n:02}"), "name": "loader"},
                    "outputs": outputs,
                }),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let clusters = |body: &str| body.matches(r#"<section class="card cluster""#).count();
    let (status, _, first) = page(&d, "/lineage").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(clusters(&first), 30);
    assert!(first.contains("31 namespaces"), "{first}");
    assert!(first.contains("page 1 of 2"), "{first}");
    assert!(first.contains(r#"data-namespace="ns29""#));
    assert!(!first.contains(r#"data-namespace="ns30""#));
    assert!(
        first.contains(r#"lineage?namespace=ns00">and 3 more</a>"#),
        "{first}"
    );
    let (_, _, second) = page(&d, "/lineage?page=2").await;
    assert_eq!(clusters(&second), 1);
    assert!(second.contains(r#"data-namespace="ns30""#), "{second}");
    // "and 3 more" lists the whole namespace.
    let (_, _, all) = page(&d, "/lineage?namespace=ns00").await;
    assert!(all.contains("16 matches"), "{all}");
    let (_, _, jobs) = page(&d, "/lineage?q=load&kind=job").await;
    assert!(jobs.contains("31 matches"), "{jobs}");
    for bad in [
        "/lineage?page=0",
        "/lineage?page=x",
        "/lineage?kind=table&q=a",
    ] {
        let (status, _, body) = page(&d, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
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
