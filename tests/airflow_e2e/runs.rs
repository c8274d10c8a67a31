//! Commits become DAGs, runs, backfills and logs in the real Airflow of `scripts/test.sh`.

use std::time::Duration;

use crate::airflow_dag;
use crate::common;
use crate::common::airflow::env;
use crate::common::daemon::{push_payload, sign, Daemon, TOKEN, WHO};
use crate::common::Repo;
use serde_json::{json, Value};

fn hello_job(name: &str) -> String {
    format!(
        "apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  paused: false\n  params:\n    greeting: {{type: string, default: hi}}\n  tasks:\n    - id: hello\n      bash: {{command: 'echo \"greeting={{{{ params.greeting }}}} day={{{{ ds }}}}\"'}}\n      outputs: [raw.greetings]\n    - id: calendar\n      python: {{module: calendar, args: ['2026', '1']}}\n      depends_on: [hello]\n      inputs: [raw.greetings]\n"
    )
}

/// A task that logs an MLflow run the way olo asks tasks to: tagged with `OLO_MLFLOW_TAGS`, in
/// `MLFLOW_EXPERIMENT_NAME`, at `MLFLOW_TRACKING_URI` (all set by olo in the rendered DAG). It
/// speaks MLflow's REST API from the standard library, so Airflow's venv needs no MLflow.
const TRAIN_TASK: &str = r#"    - id: train
      depends_on: [calendar]
      mlflow: {experiment: __EXPERIMENT__}
      bash:
        command: |
          python3 - <<'PY'
          import json, os, time, urllib.error, urllib.parse, urllib.request
          base = os.environ["MLFLOW_TRACKING_URI"].rstrip("/") + "/api/2.0/mlflow/"
          def call(path, body=None):
              data = None if body is None else json.dumps(body).encode()
              req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
              return json.load(urllib.request.urlopen(req))
          name = os.environ["MLFLOW_EXPERIMENT_NAME"]
          try:
              exp = call("experiments/get-by-name?experiment_name=" + urllib.parse.quote(name))["experiment"]["experiment_id"]
          except urllib.error.HTTPError:
              exp = call("experiments/create", {"name": name})["experiment_id"]
          tags = [{"key": k, "value": v} for k, v in json.loads(os.environ["OLO_MLFLOW_TAGS"]).items()]
          now = int(time.time() * 1000)
          run = call("runs/create", {"experiment_id": exp, "run_name": "train", "start_time": now, "tags": tags})["run"]["info"]["run_id"]
          call("runs/log-metric", {"run_id": run, "key": "rmse", "value": 0.42, "timestamp": now, "step": 0})
          call("runs/update", {"run_id": run, "status": "FINISHED", "end_time": int(time.time() * 1000)})
          print("mlflow run", run)
          PY
"#;

/// A job whose DAG Airflow refuses to import while olo's validation passes it: the test
/// Airflow has a cluster policy (scripts/airflow.sh writes its airflow_local_settings.py) that
/// refuses DAGs tagged `olo-test-refused`, as a platform team's policies refuse what they refuse.
/// olo cannot know such rules; it learns of them from Airflow's import error.
fn broken_job(name: &str) -> String {
    format!(
        "apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  schedule: '0 0 15W * *'\n  start_date: 2026-01-01\n  tags: [olo-test-refused]\n  tasks:\n    - id: a\n      bash: {{command: echo}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_become_dags_runs_and_logs_in_a_real_airflow() {
    let airflow = env("OLO_TEST_AIRFLOW_URL");
    let dags = common::airflow::own_dag_folder("airflow_e2e");
    let password = env("OLO_TEST_AIRFLOW_PASSWORD");
    // Airflow's database outlives a test run: fresh job names every time.
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let hello = format!("hello_{suffix}");
    let broken = format!("broken_{suffix}");
    let dag_id = format!("e2e__{hello}");

    let repo = Repo::new();
    repo.write(
        "workspaces/e2e/workspace.yaml",
        "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: e2e}\nspec:\n  lakehouse: {catalog: e2e, warehouse: 's3://lake-bucket/e2e', namespaces: [raw]}\n  access: {operator: ['user:ci-bot']}\n",
    );
    std::fs::remove_dir_all(repo.path().join("workspaces/w")).unwrap();
    let experiment = format!("e2e_{suffix}");
    repo.write(
        &format!("workspaces/e2e/jobs/{hello}.yaml"),
        &(hello_job(&hello) + &TRAIN_TASK.replace("__EXPERIMENT__", &experiment)),
    );
    // Two more for `olo run` and `olo cancel`: one that fails, one that runs until stopped.
    let failing = format!("failing_{suffix}");
    let sleepy = format!("sleepy_{suffix}");
    for (name, command) in [(&failing, "exit 3"), (&sleepy, "sleep 600")] {
        repo.write(
            &format!("workspaces/e2e/jobs/{name}.yaml"),
            &format!("apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  paused: false\n  tasks:\n    - id: only\n      bash: {{command: '{command}'}}\n      retries: 0\n"),
        );
    }
    // A daily job for `olo backfill` (written later, through olo's API).
    let daily = format!("daily_{suffix}");
    let daily_yaml = format!("apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {daily}}}\nspec:\n  paused: false\n  schedule: '@daily'\n  start_date: 2026-01-01\n  params:\n    greeting: {{type: string, default: hi}}\n  tasks:\n    - id: hello\n      bash: {{command: 'echo \"greeting={{{{ params.greeting }}}} day={{{{ ds }}}}\"'}}\n      retries: 0\n");
    // A paused job: a run would wait in `queued`, so olo refuses to trigger it.
    let paused = format!("paused_{suffix}");
    repo.write(
        &format!("workspaces/e2e/jobs/{paused}.yaml"),
        &format!("apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {paused}}}\nspec:\n  paused: true\n  tasks:\n    - id: only\n      bash: {{command: 'echo'}}\n"),
    );
    let c1 = repo.commit("add the hello job", WHO);

    // Airflow's OpenLineage provider sends to this port with this token (scripts/airflow.sh).
    let mlflow = env("OLO_TEST_MLFLOW_URL");
    let lineage_port = env("OLO_TEST_LINEAGE_PORT");
    let lineage_token = env("OLO_TEST_LINEAGE_TOKEN");
    let listen = format!("127.0.0.1:{lineage_port}");
    // olo's remote: a bare repository, as a Git server holds them (libgit2 pushes only to bare
    // ones), which takes this test's pushes and olo's API writes.
    let server = Repo {
        dir: tempfile::tempdir().unwrap(),
    };
    let server_path = server.path().display().to_string();
    repo.git(&["clone", "-q", "--bare", ".", &server_path], WHO);
    let server_url = format!("file://{server_path}");
    let d = Daemon::start_with_tokens(
        &repo,
        &[
            ("OLO_SOURCE__URL", server_url.as_str()),
            ("OLO_SERVER__LISTEN", listen.as_str()),
            ("OLO_APPLY__DAGS_FOLDER", dags.as_str()),
            ("OLO_AIRFLOW__URL", airflow.as_str()),
            ("OLO_AIRFLOW__PASSWORD_ENV", "TEST_AIRFLOW_PASSWORD"),
            ("TEST_AIRFLOW_PASSWORD", password.as_str()),
            ("OLO_AIRFLOW__POLL_SECONDS", "1"),
            ("OLO_AIRFLOW__PARSE_TIMEOUT_SECONDS", "150"),
            // Writes through the API become commits on the tracked branch.
            ("OLO_API__WRITES", "commit"),
            ("OLO_MLFLOW__URL", mlflow.as_str()),
            ("OLO_RENDER__MLFLOW_TRACKING_URI", mlflow.as_str()),
        ],
        &[("airflow-openlineage", lineage_token.as_str())],
    )
    .await;
    // Ready only after Airflow parsed the new DAG without an import error.
    let (_, status) = d.get("/api/v1/status").await;
    assert_eq!(status["sync"]["state"], "Ready", "{status}\n{}", d.log());
    assert_eq!(status["sync"]["last_applied"], c1.as_str());
    let dag = airflow_dag(&airflow, &password, &dag_id).await;
    assert_eq!(dag["dag_id"], dag_id.as_str(), "{dag}");
    assert_eq!(
        dag["is_paused"], false,
        "`paused: false` is live in Airflow"
    );

    let (code, err) = d
        .post(
            &format!("/api/v1/workspaces/e2e/jobs/{paused}/runs"),
            Some(TOKEN),
            json!({}),
        )
        .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (409, Some("job_paused")),
        "{err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("set `paused: false` in workspaces/e2e/jobs/"),
        "{err}"
    );

    // A run through olo's API.
    let (code, run) = d
        .post(
            &format!("/api/v1/workspaces/e2e/jobs/{hello}/runs"),
            Some(TOKEN),
            json!({"conf": {"greeting": "from-olo"}, "logical_date": "2026-03-01", "note": "first run"}),
        )
        .await;
    assert_eq!(code, 201, "{run}\n{}", d.log());
    assert_eq!(run["dag_id"], dag_id.as_str());
    assert_eq!(run["trigger"], "api");
    assert_eq!(run["triggered_by"], "ci-bot");
    assert_eq!(run["logical_date"], "2026-03-01T00:00:00Z");
    let id = run["id"].as_i64().unwrap();
    d.wait_within(
        "the run to succeed",
        Duration::from_secs(180),
        |d| async move {
            let (_, run) = d.get(&format!("/api/v1/runs/{id}")).await;
            assert_ne!(run["state"], "failed", "{run}");
            run["state"] == "success"
        },
    )
    .await;
    let (_, run) = d.get(&format!("/api/v1/runs/{id}")).await;
    let tasks: Vec<(String, String)> = run["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["task_id"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        tasks,
        [
            ("hello".to_string(), "success".to_string()),
            ("calendar".to_string(), "success".to_string()),
            ("train".to_string(), "success".to_string()),
        ],
        "{run}"
    );
    // Airflow's own record of the run names who triggered it.
    let airflow_run = common::airflow::get(
        &airflow,
        &password,
        &format!(
            "dags/{dag_id}/dagRuns/{}",
            run["airflow_run_id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(airflow_run["conf"]["greeting"], "from-olo");
    assert_eq!(airflow_run["conf"]["olo"]["triggered_by"], "ci-bot");
    assert_eq!(airflow_run["conf"]["olo"]["trigger"], "api");
    assert_eq!(airflow_run["conf"]["olo"]["revision"], c1.as_str());
    assert_eq!(airflow_run["note"], "first run");
    assert_eq!(airflow_run["logical_date"], "2026-03-01T00:00:00Z");
    let log = d
        .http
        .get(format!("{}/api/v1/runs/{id}/tasks/hello/logs/1", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), 200);
    let log = log.text().await.unwrap();
    // `{{ ds }}` renders: Airflow got a logical date (a null one leaves `ds` undefined).
    assert!(
        log.contains("greeting=from-olo day=2026-03-01"),
        "task log:\n{log}"
    );

    // The train task's MLflow run carries the run's tag: olo links it, on the API and the page.
    let (code, linked) = d.get(&format!("/api/v1/runs/{id}/mlflow")).await;
    assert_eq!(code, 200, "{linked}");
    let runs = linked["items"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{linked}");
    assert_eq!(runs[0]["run_name"], "train");
    assert_eq!(runs[0]["status"], "FINISHED");
    assert_eq!(runs[0]["experiment"], experiment.as_str());
    assert_eq!(runs[0]["metrics"], json!([["rmse", 0.42]]));
    let mlflow_run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let page = d.get_text(&format!("/runs/{id}")).await;
    assert!(page.contains("id=\"mlflow-runs\""), "{page}");
    assert!(
        page.contains(&format!("runs&#x2f;{mlflow_run_id}")),
        "{page}"
    );
    assert!(page.contains("rmse = 0.42"), "{page}");

    // Airflow's OpenLineage provider reported the run's tasks to olo, with the declared tables
    // as the tasks' inlets and outlets: observed lineage now confirms the declared one.
    let job_lineage = format!("/api/v1/workspaces/e2e/jobs/{hello}/lineage");
    d.wait_within(
        "OpenLineage events from Airflow",
        Duration::from_secs(60),
        |d| {
            let path = job_lineage.clone();
            async move {
                let (_, l) = d.get(&path).await;
                l["mismatches"]["observed_any"] == true
                    && l["mismatches"]["declared_not_observed"]
                        .as_array()
                        .is_some_and(Vec::is_empty)
            }
        },
    )
    .await;
    let (_, l) = d.get(&job_lineage).await;
    assert_eq!(l["mismatches"]["observed_not_declared"], json!([]), "{l}");
    let (_, graph) = d
        .get("/api/v1/lineage?nodeId=dataset:e2e:raw.greetings&depth=1")
        .await;
    let greetings = &graph["graph"][0];
    assert_eq!(greetings["id"], "dataset:e2e:raw.greetings", "{graph}");
    for (edges, end) in [("inEdges", "origin"), ("outEdges", "destination")] {
        let edge = &greetings[edges][0];
        assert_eq!(edge[end], format!("job:e2e:{hello}").as_str(), "{graph}");
        assert_eq!(edge["sources"], json!(["declared", "observed"]), "{graph}");
    }
    let (code, _) = d
        .http
        .get(format!("{}/api/v1/runs/{id}/tasks/nope/logs/1", d.base))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(code, 404);

    // A commit Airflow cannot import: pushed through a signed webhook; a forged one first.
    repo.write(
        &format!("workspaces/e2e/jobs/{broken}.yaml"),
        &broken_job(&broken),
    );
    let c2 = repo.commit("add a job Airflow refuses", WHO);
    repo.git(&["push", "-q", &server_path, "main"], WHO);
    let body = push_payload("refs/heads/main", &c2);
    let (code, _) = d.deliver("push", "e2e-forged", &body, "sha256=1234").await;
    assert_eq!(code, 401);
    let (code, _) = d.deliver("push", "e2e-1", &body, &sign(&body)).await;
    assert_eq!(code, 202);
    d.wait_within("the failed apply", Duration::from_secs(200), |d| {
        let c2 = c2.clone();
        async move {
            let (_, s) = d.get("/api/v1/status").await;
            s["sync"]["last_attempted"] == c2.as_str() && s["sync"]["state"] == "Stalled"
        }
    })
    .await;
    let (_, rev) = d.get(&format!("/api/v1/revisions/{c2}")).await;
    assert_eq!(rev["status"], "failed", "{rev}");
    let error = rev["plans"][0]["error"].as_str().unwrap_or_default();
    assert_eq!(rev["plans"][0]["outcome"], "failed");
    assert!(
        error.contains(&format!("Airflow could not import DAG e2e__{broken}"))
            && error.contains(&format!(
                "AirflowClusterPolicyViolation: DAG e2e__{broken} is tagged olo-test-refused"
            )),
        "the plan outcome carries Airflow's import error:\n{error}"
    );
    let (_, audit) = d.get("/api/v1/audit?limit=1").await;
    assert_eq!(audit["items"][0]["details"]["outcome"], "failed");

    // The fix, with a trailer that asks for a run.
    std::fs::remove_file(
        repo.path()
            .join(format!("workspaces/e2e/jobs/{broken}.yaml")),
    )
    .unwrap();
    let c3 = repo.commit(
        &format!("remove the broken job\n\nOlo-Run: e2e/{hello}\n"),
        ("Grace", "grace@example.com"),
    );
    repo.git(&["push", "-q", &server_path, "main"], WHO);
    let body = push_payload("refs/heads/main", &c3);
    let (code, _) = d.deliver("push", "e2e-2", &body, &sign(&body)).await;
    assert_eq!(code, 202);
    d.wait_within("the fix to be applied", Duration::from_secs(200), |d| {
        let c3 = c3.clone();
        async move {
            let (_, s) = d.get("/api/v1/status").await;
            s["sync"]["last_applied"] == c3.as_str() && s["sync"]["state"] == "Ready"
        }
    })
    .await;
    d.wait_within(
        "the trailer's run to succeed",
        Duration::from_secs(180),
        |d| async move {
            let (_, runs) = d.get("/api/v1/runs?state=success").await;
            runs["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["trigger"] == "commit")
        },
    )
    .await;
    let (_, runs) = d.get("/api/v1/runs").await;
    let by_commit = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["trigger"] == "commit")
        .unwrap();
    assert_eq!(by_commit["revision"], c3.as_str());
    assert_eq!(by_commit["triggered_by"], "Grace <grace@example.com>");
    assert_eq!(runs["items"].as_array().unwrap().len(), 2);
    // A trailer's run stands for the time it was triggered: `{{ ds }}` is that day.
    let day = by_commit["logical_date"].as_str().expect("a logical date")[..10].to_string();
    let log = d
        .http
        .get(format!(
            "{}/api/v1/runs/{}/tasks/hello/logs/1",
            d.base, by_commit["id"]
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(log.contains(&format!("day={day}")), "task log:\n{log}");

    // The CLI: `olo run --wait` follows a run to the end; its exit code says how it ended.
    let olo = |args: Vec<String>| {
        let base = d.base.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_olo"))
                .args(&args)
                .args(["--server", &base])
                .env("OLO_TOKEN", TOKEN)
                .output()
                .expect("olo runs")
        })
    };
    let out = olo(vec![
        "run".into(),
        format!("e2e/{hello}"),
        "--conf".into(),
        r#"{"greeting": "from-cli"}"#.into(),
        "--logical-date".into(),
        "2026-04-02".into(),
        "--wait".into(),
        "--logs".into(),
    ])
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "  hello: success",
        "  calendar: success",
        "==> hello (try 1)",
        "greeting=from-cli day=2026-04-02",
    ] {
        assert!(stdout.contains(line), "{line:?} in:\n{stdout}");
    }
    assert!(stdout.trim_end().ends_with(": success"), "{stdout}");
    // `olo runs` lists it (newest first) and `olo logs` prints one task's log.
    let cli_run = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("run "))
        .and_then(|l| l.split_once(' '))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("`olo run` names the run first:\n{stdout}"));
    let out = olo(vec!["runs".into(), "--job".into(), format!("e2e/{hello}")])
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    let first = listed.lines().nth(1).unwrap_or_default();
    assert!(
        first.starts_with(&format!("{cli_run} ")) && first.contains(" success "),
        "`olo runs` lists run {cli_run} first, succeeded:\n{listed}"
    );
    let out = olo(vec!["logs".into(), cli_run.clone(), "hello".into()])
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.starts_with("==> hello (try 1)") && log.contains("greeting=from-cli day=2026-04-02"),
        "`olo logs {cli_run} hello`:\n{log}"
    );
    // A job written through olo's API: a commit by the caller, applied, live in Airflow.
    let put = d
        .http
        .put(format!("{}/api/v1/workspaces/e2e/jobs/{daily}", d.base))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/yaml")
        .body(daily_yaml.clone())
        .send()
        .await
        .unwrap();
    let code = put.status().as_u16();
    let written: Value = put.json().await.unwrap();
    assert_eq!(code, 201, "{written}\n{}", d.log());
    let revision = written["revision"].as_str().unwrap().to_string();
    assert_eq!(
        server.git(&["log", "-1", "--format=%an|%cn", &revision], WHO),
        "ci-bot|olo"
    );
    d.wait_within("the API's job live", Duration::from_secs(180), |d| {
        let revision = revision.clone();
        async move {
            let (_, s) = d.get("/api/v1/status").await;
            assert_ne!(s["sync"]["state"], "Stalled", "{s}");
            s["sync"]["last_applied"] == revision.as_str() && s["sync"]["state"] == "Ready"
        }
    })
    .await;
    let dag = airflow_dag(&airflow, &password, &format!("e2e__{daily}")).await;
    assert_eq!(dag["is_paused"], false, "{dag}");

    // `olo backfill --wait`: Airflow makes a run for each day of the range, each standing for
    // its day (`{{ ds }}`); olo records, follows and audits them like any run.
    let (code, err) = d
        .post(
            &format!("/api/v1/workspaces/e2e/jobs/{daily}/backfills"),
            Some(TOKEN),
            json!({"from_date": "2026-02-03", "to_date": "2026-02-01"}),
        )
        .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{err}"
    );
    // Airflow on SQLite (this test's) refuses to create a backfill while another writer holds
    // its database ("Backfill creation is not supported on SQLite under concurrent access", a
    // 503 that olo passes on as "try again"): the test tries again, as a person would.
    let mut tries = 0;
    let out = loop {
        let out = olo(vec![
            "backfill".into(),
            format!("e2e/{daily}"),
            "--from".into(),
            "2026-02-01".into(),
            "--to".into(),
            "2026-02-02".into(),
            "--conf".into(),
            r#"{"greeting": "backfilled"}"#.into(),
            "--wait".into(),
            "--format".into(),
            "json".into(),
        ])
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        tries += 1;
        if out.status.code() == Some(2)
            && stderr.contains("not supported on SQLite under concurrent access")
            && tries < 30
        {
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        break out;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let backfill: Value = serde_json::from_str(&stdout).expect("json");
    let runs = backfill["runs"].as_array().unwrap();
    let days: Vec<&str> = runs
        .iter()
        .map(|r| r["logical_date"].as_str().unwrap())
        .collect();
    assert_eq!(
        days,
        ["2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z"],
        "{backfill}"
    );
    for run in runs {
        assert_eq!(run["state"], "success", "{run}");
        assert_eq!(run["triggered_by"], "ci-bot", "{run}");
        let id = run["id"].as_i64().unwrap();
        let day = &run["logical_date"].as_str().unwrap()[..10];
        let log = d
            .http
            .get(format!("{}/api/v1/runs/{id}/tasks/hello/logs/1", d.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            log.contains(&format!("greeting=backfilled day={day}")),
            "task log of run {id}:\n{log}"
        );
    }
    let (_, audit) = d.get("/api/v1/audit?limit=50").await;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "run_backfill")
        .unwrap_or_else(|| panic!("a run_backfill entry:\n{audit}"));
    assert_eq!(entry["actor"], "ci-bot");
    assert_eq!(entry["target"], format!("e2e/{daily}").as_str());
    assert_eq!(
        entry["details"]["backfill"], backfill["backfill"]["id"],
        "{entry}"
    );
    assert_eq!(
        entry["details"]["runs"].as_array().map(Vec::len),
        Some(2),
        "{entry}"
    );

    let out = olo(vec![
        "run".into(),
        format!("e2e/{failing}"),
        "--wait".into(),
    ])
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("  only: failed"), "{stdout}");
    // `olo clear` re-runs its failed task (a second try, which fails the same way).
    let (_, failed_runs) = d.get(&format!("/api/v1/runs?job={failing}")).await;
    let failed_id = failed_runs["items"][0]["id"].as_i64().unwrap();
    let out = olo(vec!["clear".into(), failed_id.to_string(), "--wait".into()])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "run {failed_id} of e2e/{failing}: failed tasks cleared"
        )),
        "{stdout}"
    );
    let (_, cleared) = d.get(&format!("/api/v1/runs/{failed_id}")).await;
    let tries: Vec<i64> = cleared["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["try_number"].as_i64().unwrap())
        .collect();
    assert_eq!(tries, [1, 2], "{cleared}");
    let (_, audit) = d.get("/api/v1/audit?limit=1").await;
    assert_eq!(audit["items"][0]["action"], "run_clear", "{audit}");
    // A refused run is exit 2 with olo's reason.
    let out = olo(vec![
        "run".into(),
        format!("e2e/{hello}"),
        "--conf".into(),
        r#"{"greeting": 5}"#.into(),
    ])
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("param `greeting` must be of type string"),
        "{stderr}"
    );

    // `olo cancel` stops a running run: Airflow marks it failed, with a note naming the caller.
    let (code, run) = d
        .post(
            &format!("/api/v1/workspaces/e2e/jobs/{sleepy}/runs"),
            Some(TOKEN),
            json!({}),
        )
        .await;
    assert_eq!(code, 201, "{run}");
    let id = run["id"].as_i64().unwrap();
    d.wait_within(
        "the sleepy run to start",
        Duration::from_secs(120),
        |d| async move {
            let (_, run) = d.get(&format!("/api/v1/runs/{id}")).await;
            run["state"] == "running"
        },
    )
    .await;
    let out = olo(vec!["cancel".into(), id.to_string()]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), format!("run {id} of e2e/{sleepy}: failed"));
    let airflow_run = common::airflow::get(
        &airflow,
        &password,
        &format!(
            "dags/e2e__{sleepy}/dagRuns/{}",
            run["airflow_run_id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(airflow_run["state"], "failed", "{airflow_run}");
    assert_eq!(
        airflow_run["note"], "cancelled through olo by ci-bot",
        "{airflow_run}"
    );
    let out = olo(vec!["cancel".into(), id.to_string()]).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("has already finished (failed)"), "{stderr}");
    let (_, audit) = d.get("/api/v1/audit?limit=1").await;
    assert_eq!(audit["items"][0]["action"], "run_cancel", "{audit}");
}
