//! The state the dashboard tests read: a daemon with two applied commits and an invalid one
//! (the branch Stalled with diagnostics), runs with task instances, a drift repair and observed
//! lineage, written through olo's own API and state store.

use crate::common;

use crate::common::daemon::{push_payload, sign, Daemon, WHO};
use crate::common::Repo;
use chrono::Utc;
use olo_reconciler::store::{NewAudit, NewRun, RunTrigger, RunUpdate, TaskInstanceRow};
use serde_json::json;

pub(super) const WORKSPACE: &str = "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: w, owners: [data-eng@example.com]}\nspec:\n  description: The test lakehouse.\n  lakehouse: {catalog: lake, warehouse: 's3://lake-bucket/w', namespaces: [raw, gold]}\n  access: {admin: ['group:platform'], viewer: ['group:analysts', 'user:ada@example.com']}\n";

/// A job whose description carries markup that must reach the page as text.
pub(super) fn orders(schedule: &str) -> String {
    format!(
        "apiVersion: olo/v1\nkind: Job\nmetadata: {{name: orders}}\nspec:\n  description: \"Orders <script>window.__pwned = 1</script> & more\"\n  schedule: '{schedule}'\n  start_date: 2026-01-01\n  tags: [sales]\n  tasks:\n    - id: extract\n      bash: {{command: 'echo extract'}}\n      outputs: [raw.orders]\n    - id: transform\n      bash: {{command: 'echo transform'}}\n      depends_on: [extract]\n      inputs: [raw.orders]\n      outputs: [gold.revenue]\n    - id: publish\n      bash: {{command: 'echo publish'}}\n      depends_on: [transform]\n      inputs: [gold.revenue]\n"
    )
}

pub(super) const LOADER: &str = "apiVersion: olo/v1\nkind: Job\nmetadata: {name: loader}\nspec:\n  paused: true\n  tasks:\n    - id: load\n      bash: {command: 'echo load'}\n";

/// A job that depends on a task it does not have: the commit is invalid.
pub(super) const BROKEN: &str = "apiVersion: olo/v1\nkind: Job\nmetadata: {name: broken}\nspec:\n  tasks:\n    - id: a\n      bash: {command: 'echo a'}\n      depends_on: [nope]\n";

pub(super) struct Seeded {
    pub(super) d: Daemon,
    pub(super) _repo: Repo,
    /// The first and second (applied) commits and the invalid third.
    pub(super) c1: String,
    pub(super) c2: String,
    pub(super) c3: String,
    /// Runs: a finished one of orders (with tries), a failed one of orders, a running loader.
    pub(super) ok_run: i64,
    pub(super) failed_run: i64,
    pub(super) running_run: i64,
}

pub(super) async fn push(d: &Daemon, sha: &str, delivery: &str) {
    let body = push_payload("refs/heads/main", sha);
    let (status, _) = d.deliver("push", delivery, &body, &sign(&body)).await;
    assert_eq!(status, 202);
}

pub(super) async fn seeded() -> Seeded {
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
    // A job olo does not declare, in a namespace of its own, read w's gold.revenue and failed.
    let (status, v) = d
        .post(
            "/api/v1/lineage",
            Some(common::daemon::TOKEN),
            json!({
                "eventType": "FAIL",
                "eventTime": "2026-11-27T05:00:00Z",
                "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark",
                "run": {"runId": "01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b12", "facets": {
                    "errorMessage": {
                        "_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/integration/spark",
                        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json",
                        "message": "Table not found: gold.revenue_v2",
                        "programmingLanguage": "scala"
                    }
                }},
                "job": {"namespace": "analytics", "name": "weekly_report"},
                "inputs": [{"namespace": "w", "name": "gold.revenue"}],
                "outputs": [{"namespace": "analytics", "name": "reports.weekly"}]
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

pub(super) async fn page(d: &Daemon, path: &str) -> (u16, String, String) {
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
