//! End to end: OpenLineage events posted to a real `olo serve` (SQLite state), the lineage graph
//! in Marquez's shape, declared against observed lineage, and the graph surviving a restart.

use crate::common::daemon::{assert_error_shape, Daemon, TOKEN, WHO};
use crate::common::Repo;
use serde_json::{json, Value};

const WORKSPACE: &str = "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: w}\nspec:\n  lakehouse: {catalog: lake, warehouse: 's3://lake/w', namespaces: [raw, gold]}\n";

fn job(name: &str, inputs: &str, outputs: &str) -> String {
    format!("apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  tasks:\n    - id: t\n      bash: {{command: 'echo {name}'}}\n      inputs: [{inputs}]\n      outputs: [{outputs}]\n")
}

/// What Airflow's OpenLineage provider sends for a task of `w__refine` that read raw.orders
/// through Trino and wrote gold.revenue and a table the job does not declare.
fn airflow_event(event_type: &str, time: &str) -> Value {
    json!({
        "eventType": event_type,
        "eventTime": time,
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.3.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "01930f5e-7b7e-7c4c-9a52-4c1a5e0f2b11", "facets": {}},
        "job": {"namespace": "default", "name": "w__refine.t"},
        "inputs": [{"namespace": "trino://trino:8080", "name": "lake.raw.orders"}],
        "outputs": [
            {"namespace": "w", "name": "gold.revenue"},
            {"namespace": "s3://lake", "name": "w/gold/scratch"}
        ]
    })
}

async fn post_event(d: &Daemon, event: &Value, token: Option<&str>) -> (u16, Value) {
    d.post("/api/v1/lineage", token, event.clone()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_become_observed_lineage_beside_the_declared_one() {
    let repo = Repo::new();
    repo.write("workspaces/w/workspace.yaml", WORKSPACE);
    repo.write(
        "workspaces/w/jobs/ingest.yaml",
        &job("ingest", "", "raw.orders"),
    );
    repo.write(
        "workspaces/w/jobs/refine.yaml",
        &job("refine", "raw.orders", "gold.revenue, gold.daily"),
    );
    repo.commit("two jobs", WHO);
    let d = Daemon::start(&repo, &[]).await;

    // Declared lineage is there before any run.
    let (status, g) = d.get("/api/v1/lineage?nodeId=job:w:refine&depth=2").await;
    assert_eq!(status, 200, "{g}");
    let ids: Vec<&str> = g["graph"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "job:w:refine",
            "dataset:w:gold.daily",
            "dataset:w:gold.revenue",
            "dataset:w:raw.orders",
            "job:w:ingest"
        ]
    );
    let (_, m) = d.get("/api/v1/workspaces/w/jobs/refine/lineage").await;
    assert_eq!(m["mismatches"]["observed_any"], false, "{m}");
    assert_eq!(
        m["mismatches"]["declared_not_observed"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Bad events: refused with the reason, nothing recorded.
    let (status, err) =
        post_event(&d, &airflow_event("COMPLETE", "2026-11-27T04:30:00Z"), None).await;
    assert_eq!(
        status, 401,
        "tokens are configured, so lineage needs one: {err}"
    );
    assert_error_shape(&err, "unauthorized");
    let mut bad = airflow_event("COMPLETE", "2026-11-27T04:30:00Z");
    bad["run"]["runId"] = json!("not-a-uuid");
    let (status, err) = post_event(&d, &bad, Some(TOKEN)).await;
    assert_eq!(status, 400, "{err}");
    assert_error_shape(&err, "bad_request");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`run.runId` must be a UUID"),
        "{err}"
    );
    let r = d
        .http
        .post(format!("{}/api/v1/lineage", d.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"eventTime\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // A good event, and the same event again.
    let start = airflow_event("START", "2026-11-27T04:29:00Z");
    let complete = airflow_event("COMPLETE", "2026-11-27T04:30:00Z");
    for (event, want) in [
        (&start, "recorded"),
        (&complete, "recorded"),
        (&complete, "duplicate"),
    ] {
        let (status, v) = post_event(&d, event, Some(TOKEN)).await;
        assert_eq!((status, v["status"].as_str()), (200, Some(want)), "{v}");
    }

    // Observed names were mapped onto olo's: the Trino table and the warehouse path.
    let (status, g) = d
        .get("/api/v1/lineage?nodeId=dataset:w:raw.orders&depth=1")
        .await;
    assert_eq!(status, 200, "{g}");
    let orders = &g["graph"][0];
    assert_eq!(orders["id"], "dataset:w:raw.orders");
    let edge_to_refine = orders["outEdges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["destination"] == "job:w:refine")
        .unwrap();
    assert_eq!(edge_to_refine["sources"], json!(["declared", "observed"]));

    let (_, m) = d.get("/api/v1/workspaces/w/jobs/refine/lineage").await;
    assert_eq!(
        m["mismatches"],
        json!({
            "observed_any": true,
            "declared_not_observed": [{"direction": "out", "dataset": "dataset:w:gold.daily"}],
            "observed_not_declared": [{"direction": "out", "dataset": "dataset:w:gold.scratch"}],
        })
    );
    let (_, ingest) = d.get("/api/v1/workspaces/w/jobs/ingest/lineage").await;
    assert_eq!(
        ingest["impact"],
        json!({
            "writes": ["dataset:w:raw.orders"],
            "downstream_jobs": ["job:w:refine"],
            "downstream_datasets": ["dataset:w:gold.daily", "dataset:w:gold.revenue", "dataset:w:gold.scratch"],
        })
    );

    // Queries that cannot be answered.
    for (path, status) in [
        ("/api/v1/lineage", 400),
        ("/api/v1/lineage?nodeId=table:w:x", 400),
        ("/api/v1/lineage?nodeId=job:w:refine&depth=0", 400),
        ("/api/v1/lineage?nodeId=job:w:nope", 404),
        ("/api/v1/workspaces/w/jobs/nope/lineage", 404),
    ] {
        let (got, v) = d.get(path).await;
        assert_eq!(got, status, "{path}: {v}");
    }
    let (_, metrics) = {
        let r = d
            .http
            .get(format!("{}/metrics", d.base))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    for line in [
        "olo_lineage_events_total{result=\"recorded\"} 2",
        "olo_lineage_events_total{result=\"duplicate\"} 1",
        "olo_lineage_events_total{result=\"invalid\"} 2",
        "olo_lineage_events_total{result=\"unauthorized\"} 1",
        // olo's time is measured for the events it recorded or found again, not the refused.
        "olo_lineage_ingest_duration_seconds_count 3",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }

    // After a restart the observed lineage is still there (read back from the state store),
    // and each of the 2 stored events was read once: after the first reconcile, in the live
    // commit's names (olo used to read them at start, and again then).
    let d = d.restart().await;
    d.wait_until("the run read back under refine", |d| async move {
        let (_, j) = d.get("/api/v1/namespaces/w/jobs/refine").await;
        j["latestRun"]["state"] == "COMPLETED"
    })
    .await;
    let metrics = d
        .http
        .get(format!("{}/metrics", d.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("olo_lineage_events_read_back 2\n"),
        "{metrics}"
    );
    let (_, m) = d.get("/api/v1/workspaces/w/jobs/refine/lineage").await;
    assert_eq!(
        m["mismatches"]["observed_not_declared"],
        json!([{"direction": "out", "dataset": "dataset:w:gold.scratch"}]),
        "{m}"
    );
    assert!(
        d.log().contains("observed lineage edges loaded"),
        "{}",
        d.log()
    );
}

/// Marquez's dashboard figures (`/stats/*`, which its web UI draws): today's run events by type,
/// and the running totals of jobs and datasets, counted from the events' times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marquez_dashboard_figures_count_the_events_of_the_last_day_and_week() {
    let repo = Repo::new();
    repo.write(
        "workspaces/w/jobs/one.yaml",
        &crate::common::job("one", "echo 1"),
    );
    repo.commit("one", WHO);
    let d = Daemon::start(&repo, &[]).await;
    let now = chrono::Utc::now().to_rfc3339();
    for (kind, run) in [("START", 1), ("COMPLETE", 1), ("START", 2), ("FAIL", 2)] {
        let event = json!({
            "eventType": kind,
            "eventTime": now,
            "producer": "https://example.com/loader",
            "run": {"runId": format!("01930f5e-7b7e-7c4c-9a52-00000000000{run}")},
            "job": {"namespace": "etl", "name": "load", "facets": {"sql": {
                "_producer": "https://example.com/loader",
                "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json",
                "query": format!("INSERT INTO etl.table SELECT {run}")
            }}},
            "outputs": [{"namespace": "etl", "name": "table"}]
        });
        let (status, v) = post_event(&d, &event, Some(TOKEN)).await;
        assert_eq!(status, 200, "{v}");
    }
    let last = |v: &Value| v.as_array().unwrap().last().unwrap().clone();
    let (status, day) = d.get("/api/v1/stats/lineage-events?period=DAY").await;
    assert_eq!(status, 200, "{day}");
    assert_eq!(day.as_array().unwrap().len(), 24);
    let hour = last(&day);
    assert_eq!(
        (
            &hour["start"],
            &hour["complete"],
            &hour["fail"],
            &hour["abort"]
        ),
        (&json!(2), &json!(1), &json!(1), &json!(0)),
        "{day}"
    );
    let (status, week) = d
        .get("/api/v1/stats/lineage-events?period=WEEK&timezone=UTC")
        .await;
    assert_eq!(status, 200, "{week}");
    assert_eq!(week.as_array().unwrap().len(), 7);
    assert_eq!(last(&week)["start"], 2, "{week}");
    // One job, one dataset, and its namespace as the one source (Marquez's `sourceName`).
    for (figure, today) in [("jobs", 1), ("datasets", 1), ("sources", 1)] {
        let (status, v) = d.get(&format!("/api/v1/stats/{figure}?period=DAY")).await;
        assert_eq!(status, 200, "{figure}: {v}");
        assert_eq!(last(&v)["count"], today, "{figure}: {v}");
        assert_eq!(v[0]["count"], 0, "{figure}: {v}");
    }
    // A run's job facets are those its own events carried, not the job's latest.
    for run in [1, 2] {
        let (status, v) = d
            .get(&format!(
                "/api/v1/jobs/runs/01930f5e-7b7e-7c4c-9a52-00000000000{run}/facets?type=job"
            ))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["facets"]["sql"]["query"],
            format!("INSERT INTO etl.table SELECT {run}"),
            "{v}"
        );
    }
    for (path, status) in [
        (
            "/api/v1/jobs/runs/01930f5e-7b7e-7c4c-9a52-000000000001/facets",
            400,
        ),
        ("/api/v1/stats/lineage-events?period=WEEK", 400),
        ("/api/v1/stats/lineage-events?period=MONTH", 400),
        ("/api/v1/stats/lineage-events", 400),
        ("/api/v1/stats/owners?period=DAY", 404),
    ] {
        let (got, v) = d.get(path).await;
        assert_eq!(got, status, "{path}: {v}");
        assert_error_shape(
            &v,
            if status == 400 {
                "bad_request"
            } else {
                "not_found"
            },
        );
    }
}

/// A daemon whose first commit is invalid never gets a live catalog: the stored events are read
/// back at start under the names they were sent with, not left unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_commit_stored_events_are_read_back_in_their_own_names() {
    let repo = Repo::new();
    repo.write(
        "workspaces/w/jobs/refine.yaml",
        "apiVersion: olo/v1\nkind: Job\nmetadata: {name: refine}\nspec: {tasks: []}\n",
    );
    repo.commit("an invalid job", WHO);
    let d = Daemon::start(&repo, &[]).await;
    let (status, v) = post_event(
        &d,
        &airflow_event("COMPLETE", "2026-11-27T04:30:00Z"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let d = d.restart().await;
    d.wait_until(
        "the run read back under the name it was sent with",
        |d| async move {
            let (_, j) = d.get("/api/v1/namespaces/default/jobs/w__refine.t").await;
            j["latestRun"]["state"] == "COMPLETED"
        },
    )
    .await;
    let (_, status) = d.get("/api/v1/status").await;
    assert_eq!(status["sync"]["state"], "Stalled", "{status}");
}

/// OpenLineage's and Marquez's own Python clients (PyPI openlineage-python and marquez-python,
/// the venv of scripts/python-env.sh lineage, `OLO_TEST_LINEAGE_PYTHON`) against `olo serve`:
/// gzip bodies, a naive eventTime, a DatasetEvent and a JobEvent are taken in, and Marquez's read
/// calls return what was posted (tests/openlineage/clients.py).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openlineage_and_marquez_clients_work_against_olo() {
    let python = std::env::var("OLO_TEST_LINEAGE_PYTHON").expect(
        "OLO_TEST_LINEAGE_PYTHON must name the python of the lineage venv (scripts/test.sh sets \
         it: $(scripts/python-env.sh lineage)/bin/python)",
    );
    let repo = Repo::new();
    repo.write("workspaces/w/workspace.yaml", WORKSPACE);
    repo.write(
        "workspaces/w/jobs/ingest.yaml",
        &job("ingest", "", "raw.orders"),
    );
    repo.write(
        "workspaces/w/jobs/refine.yaml",
        &job("refine", "raw.orders", "gold.revenue"),
    );
    repo.commit("two jobs", WHO);
    let d = Daemon::start(&repo, &[]).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openlineage/clients.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&d.base)
        .arg(TOKEN)
        .output()
        .await
        .expect("the lineage venv's python runs");
    assert!(
        out.status.success(),
        "the clients failed:\n{}\nolo's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();

    let mut namespaces: Vec<&str> = read["namespaces"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    namespaces.sort();
    assert_eq!(namespaces, ["default", "reports", "w"], "{read}");
    assert_eq!(read["namespace"]["name"], "w");
    assert_eq!(read["namespace"]["createdAt"], "2026-11-27T04:00:00Z");

    // The events' job `default/w__refine.t` is olo's `w/refine`, found by either name; its
    // latest run failed, with the error the run facet gave.
    let refine = read["jobs"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "refine")
        .unwrap_or_else(|| panic!("no refine in {}", read["jobs"]));
    assert_eq!(read["job_by_event_name"], *refine);
    assert_eq!(refine["id"], json!({"namespace": "w", "name": "refine"}));
    assert_eq!(
        refine["latestRun"]["state"], "FAILED",
        "{}",
        refine["latestRun"]
    );
    assert_eq!(
        refine["latestRun"]["errorMessage"],
        "gold.revenue is locked by another writer"
    );
    assert_eq!(
        refine["inputs"],
        json!([{"namespace": "w", "name": "raw.orders"}])
    );
    assert_eq!(
        refine["outputs"],
        json!([{"namespace": "w", "name": "gold.revenue"}])
    );

    // Runs, newest first; the naive START time was read as UTC.
    let runs = read["runs"]["runs"].as_array().unwrap();
    let states: Vec<&str> = runs.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["FAILED", "COMPLETED"]);
    let ok = &runs[1];
    assert_eq!(ok["id"], "01930f5e-7b7e-7c4c-9a52-000000000001");
    assert_eq!(ok["startedAt"], "2026-11-27T04:29:00Z");
    assert_eq!(ok["endedAt"], "2026-11-27T04:30:00Z");
    assert_eq!(ok["durationMs"], 60_000);
    assert_eq!(read["run"], *ok);

    // The JobEvent's static lineage.
    assert_eq!(
        read["static_job"]["inputs"],
        json!([{"namespace": "w", "name": "gold.revenue"}])
    );
    assert_eq!(
        read["static_job"]["outputs"],
        json!([{"namespace": "reports", "name": "weekly"}])
    );
    assert_eq!(read["static_job"]["latestRun"], Value::Null);

    // Schema facets became fields: of the run's output and of the DatasetEvent's dataset.
    let fields = |d: &Value| -> Vec<(String, String)> {
        d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["type"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        fields(&read["dataset"]),
        [
            ("day".to_string(), "DATE".to_string()),
            ("revenue".to_string(), "DECIMAL(18,2)".to_string())
        ]
    );
    assert_eq!(read["dataset"]["lastModifiedAt"], "2026-11-27T04:30:00Z");
    let orders = read["datasets"]["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "raw.orders")
        .unwrap();
    assert_eq!(
        fields(orders),
        [
            ("order_id".to_string(), "BIGINT".to_string()),
            ("amount".to_string(), "DECIMAL(18,2)".to_string())
        ]
    );

    // The graph from the job's event name, with the trailing slash Marquez's web UI uses:
    // upstream, downstream, and the JobEvent's job beside olo's.
    let mut ids: Vec<&str> = read["lineage"]["graph"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "dataset:reports:weekly",
            "dataset:w:gold.revenue",
            "dataset:w:raw.orders",
            "job:default:reporting.weekly",
            "job:w:ingest",
            "job:w:refine",
        ]
    );

    // Column lineage from the columnLineage facets, through marquez-python's own methods:
    // upstream of one field (the Trino-named input mapped onto olo's table, types from the
    // schema facets) ...
    insta::assert_json_snapshot!("column_lineage_of_a_field", read["columns_of_field"]);
    let ids = |graph: &Value| -> Vec<String> {
        graph["graph"]
            .as_array()
            .unwrap_or_else(|| panic!("no graph in {graph}"))
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_string())
            .collect()
    };
    // ... a dataset's fields one edge either way, down to the JobEvent's report ...
    let of_dataset = &read["columns_of_dataset"];
    assert_eq!(
        ids(of_dataset),
        [
            "datasetField:reports:weekly:total",
            "datasetField:w:gold.revenue:day",
            "datasetField:w:gold.revenue:revenue",
            "datasetField:w:raw.orders:amount",
            "datasetField:w:raw.orders:ordered_at",
        ],
        "{of_dataset}"
    );
    let total = &of_dataset["graph"][0];
    assert_eq!(
        total["data"]["inputFields"],
        json!([{
            "namespace": "w", "dataset": "gold.revenue", "datasetVersion": null, "field": "revenue",
            "transformationDescription": "sum(revenue) per week",
            "transformationType": "IDENTITY",
            "transformations": [],
        }]),
        "{total}"
    );
    let day = &of_dataset["graph"][1];
    assert_eq!(day["data"]["fieldType"], "DATE");
    assert_eq!(
        day["data"]["inputFields"][0]["transformationType"],
        "TRANSFORMATION"
    );
    assert_eq!(
        day["inEdges"],
        json!([{"origin": "datasetField:w:gold.revenue:day", "destination": "datasetField:w:raw.orders:ordered_at"}])
    );
    // ... and the fields of what a job writes, the job named as its events name it.
    assert_eq!(
        ids(&read["columns_of_job"]),
        [
            "datasetField:w:gold.revenue:day",
            "datasetField:w:gold.revenue:revenue",
            "datasetField:w:raw.orders:amount",
            "datasetField:w:raw.orders:ordered_at",
        ]
    );

    // Search: names holding the text, any case, by name; datasets only, newest first.
    assert_eq!(
        read["search"],
        json!({"totalCount": 3, "results": [
            {"type": "DATASET", "name": "gold.revenue", "updatedAt": "2026-11-28T04:29:30Z", "namespace": "w", "nodeId": "dataset:w:gold.revenue"},
            {"type": "JOB", "name": "refine", "updatedAt": "2026-11-28T04:29:30Z", "namespace": "w", "nodeId": "job:w:refine"},
            {"type": "JOB", "name": "reporting.weekly", "updatedAt": "2026-11-27T05:00:00Z", "namespace": "default", "nodeId": "job:default:reporting.weekly"},
        ]})
    );
    let found: Vec<&str> = read["search_datasets"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["nodeId"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["dataset:w:gold.revenue", "dataset:w:raw.orders"]);
    assert_eq!(read["search_datasets"]["totalCount"], 3);

    // The run events as received, oldest first from a time, a page of them; and the newest.
    let events = &read["events"];
    assert_eq!(events["totalCount"], 4, "{events}");
    let seen: Vec<(&str, &str)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["eventType"].as_str().unwrap(),
                e["run"]["runId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("COMPLETE", "01930f5e-7b7e-7c4c-9a52-000000000001"),
            ("START", "01930f5e-7b7e-7c4c-9a52-000000000002"),
        ]
    );
    assert_eq!(
        events["events"][0]["outputs"][0]["facets"]["columnLineage"]["fields"]["revenue"]
            ["inputFields"][0]["field"],
        "amount"
    );
    assert_eq!(read["events_newest"]["events"][0]["eventType"], "FAIL");
    assert_eq!(read["events_newest"]["totalCount"], 4);

    // What Marquez's web UI reads besides (checked by hand against its build, docs/server.md):
    // tags (olo keeps none), jobs of every namespace by their latest run's state, a run's facets,
    // a job's tags and a dataset's column lineage.
    assert_eq!(read["tags"], json!({"tags": []}));
    let failed: Vec<&Value> = read["failed_jobs"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        failed
            .iter()
            .map(|j| (
                j["namespace"].as_str().unwrap(),
                j["name"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("w", "refine")],
        "{}",
        read["failed_jobs"]
    );
    assert_eq!(failed[0]["tags"], json!([]));
    assert_eq!(failed[0]["latestRun"]["state"], "FAILED");
    assert_eq!(
        read["run_facets"]["runId"],
        "01930f5e-7b7e-7c4c-9a52-000000000002"
    );
    assert!(
        read["run_facets"]["facets"]["errorMessage"]["message"].is_string(),
        "{}",
        read["run_facets"]
    );
    let columns: Vec<(&str, &str)> = read["dataset"]["columnLineage"]
        .as_array()
        .unwrap_or_else(|| panic!("no columnLineage in {}", read["dataset"]))
        .iter()
        .flat_map(|c| {
            c["inputFields"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |i| (c["name"].as_str().unwrap(), i["field"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(columns, [("day", "ordered_at"), ("revenue", "amount")]);
    // A dataset's versions: the current one (olo keeps only that), made by refine's latest run,
    // read back by its id; the dataset's `currentVersion` is that id.
    let versions = &read["versions"];
    assert_eq!(versions["totalCount"], 1, "{versions}");
    let current = &versions["versions"][0];
    assert_eq!(current["version"], read["dataset"]["currentVersion"]);
    assert_eq!(current["id"]["version"], current["version"]);
    assert_eq!(current["createdByRun"]["state"], "FAILED", "{current}");
    assert_eq!(current["fields"], read["dataset"]["fields"]);
    assert_eq!(read["version"], *current);

    // A Spark job's event, attributed to refine only through its parent run facet (the task's
    // run): its run is one of refine's.
    let spark_run = "01930f5e-7b7e-7c4c-9a52-000000000003";
    let spark = json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-11-29T04:30:00Z",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.37.0/integration/spark",
        "run": {"runId": spark_run, "facets": {"parent": {
            "run": {"runId": "01930f5e-7b7e-7c4c-9a52-000000000001"},
            "job": {"namespace": "default", "name": "w__refine.t"}
        }}},
        "job": {"namespace": "spark", "name": "w_refine.execute_insert_into"},
        "outputs": [{"namespace": "w", "name": "gold.revenue"}]
    });
    let (status, v) = post_event(&d, &spark, Some(TOKEN)).await;
    assert_eq!(status, 200, "{v}");
    let paths = [
        "/api/v1/namespaces/w/jobs/refine",
        "/api/v1/namespaces/w/jobs/refine/runs",
        "/api/v1/namespaces/w/datasets/raw.orders",
        "/api/v1/namespaces/w/datasets/gold.revenue",
        "/api/v1/column-lineage?nodeId=dataset:w:gold.revenue&depth=1&withDownstream=true",
    ];
    let mut before = Vec::new();
    for path in paths {
        let (status, v) = d.get(path).await;
        assert_eq!(status, 200, "{path}: {v}");
        before.push(v);
    }
    assert_eq!(before[1]["runs"][0]["id"], spark_run, "{}", before[1]);
    assert_eq!(before[2], *orders);
    assert_eq!(before[4], *of_dataset);

    // After a restart all of it is read back from the state store, in olo's names once the live
    // commit is read.
    let d = d.restart().await;
    d.wait_until("the lineage events read back", |d| {
        let before = &before;
        async move {
            let mut now = Vec::new();
            for path in paths {
                now.push(d.get(path).await.1);
            }
            now == *before
        }
    })
    .await;
}
