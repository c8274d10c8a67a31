//! End to end: `olo serve` as a process, driven over HTTP. Real git repositories (a `file://`
//! remote, so only webhooks and the API trigger reconciles), SQLite state; GitHub is a wiremock
//! server that records the calls olo makes.

use crate::common;

use std::time::Duration;

use crate::common::daemon::{assert_error_shape, fixture, push_payload, sign, Daemon, TOKEN, WHO};
use crate::common::{job, Repo};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_push_applies_and_forged_or_repeated_deliveries_change_nothing() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let c1 = repo.commit("add one", WHO);
    let d = Daemon::start(&repo, &[]).await;
    assert_eq!(d.last_applied().await.as_deref(), Some(c1.as_str()));

    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    let c2 = repo.commit("add two", ("Grace", "grace@example.com"));
    let body = push_payload("refs/heads/main", &c2);

    // Forged: a signature made with another secret, and none at all.
    let (status, err) = d.deliver("push", "forged-1", &body, "sha256=00ff").await;
    assert_eq!(status, 401);
    assert_error_shape(&err, "unauthorized");
    let (status, _) = d.deliver("push", "forged-2", &body, "").await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(d.last_applied().await.as_deref(), Some(c1.as_str()));
    assert!(!d.olo.dags().join("w__two.py").exists());

    // Signed: 202 at once, then the commit is applied.
    let (status, ack) = d.deliver("push", "delivery-1", &body, &sign(&body)).await;
    assert_eq!(
        (status, ack["result"].as_str()),
        (202, Some("reconcile queued"))
    );
    d.wait_until("the push to be applied", |d| {
        let c2 = c2.clone();
        async move { d.last_applied().await.as_deref() == Some(c2.as_str()) }
    })
    .await;
    assert!(d.olo.dags().join("w__two.py").exists());
    let audit = d.olo.audit();
    assert_eq!(audit[0]["action"], "apply");
    assert_eq!(audit[0]["actor"], "Grace <grace@example.com>");
    assert_eq!(audit[0]["revision"], c2.as_str());

    // The same delivery again: acknowledged, ignored.
    let (status, ack) = d.deliver("push", "delivery-1", &body, &sign(&body)).await;
    assert_eq!(
        (status, ack["result"].as_str()),
        (200, Some("duplicate delivery, ignored"))
    );
    // A push to another branch, and a ping.
    let other = push_payload("refs/heads/feature", &c2);
    let (status, ack) = d.deliver("push", "delivery-2", &other, &sign(&other)).await;
    assert_eq!(
        (status, ack["result"].as_str()),
        (202, Some("not the tracked branch, ignored"))
    );
    let ping = serde_json::to_vec(&fixture("ping-payload.json")).unwrap();
    let (status, ack) = d.deliver("ping", "delivery-3", &ping, &sign(&ping)).await;
    assert_eq!((status, ack["result"].as_str()), (200, Some("pong")));
    // A signed body that is not a push payload.
    let junk = b"{\"ref\": 7}".to_vec();
    let (status, err) = d.deliver("push", "delivery-4", &junk, &sign(&junk)).await;
    assert_eq!(status, 400);
    assert_error_shape(&err, "bad_request");
    // Over GitHub's 25 MB: refused on its Content-Length, before a byte of the body is read.
    // Sent by hand: a client still writing the 25 MB when olo answers and closes would see a
    // broken pipe instead of the answer (it did, under load).
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let addr = d.base.trim_start_matches("http://").to_string();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /webhooks/github HTTP/1.1\r\nHost: {addr}\r\nX-GitHub-Event: push\r\n\
             X-GitHub-Delivery: delivery-5\r\nX-Hub-Signature-256: sha256=00\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            25 * 1024 * 1024 + 1
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The answer, read until the error's code has come (or olo closed the connection).
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("payload_too_large") {
            let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut chunk))
                .await
                .expect("olo answers an oversized delivery without waiting for its body")
                .unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("\"payload_too_large\""), "{answer}");
    }

    let metrics = d.get_text("/metrics").await;
    for line in [
        "olo_webhook_deliveries_total{event=\"push\",result=\"queued\"} 1",
        "olo_webhook_deliveries_total{event=\"push\",result=\"duplicate\"} 1",
        // Counted under the event its header names (a bounded set), though unverified.
        "olo_webhook_deliveries_total{event=\"push\",result=\"bad_signature\"} 2",
        "olo_webhook_deliveries_total{event=\"push\",result=\"ignored\"} 1",
        "olo_reconciles_total{outcome=\"applied\"} 2",
        // Every phase of both reconciles was timed (the shared files were rendered once).
        "olo_reconcile_phase_duration_seconds_count{phase=\"validate\"} 2",
        "olo_reconcile_phase_duration_seconds_count{phase=\"apply\"} 2",
        "olo_reconcile_phase_duration_seconds_count{phase=\"render shared\"} 1",
    ] {
        assert!(metrics.contains(line), "no `{line}` in:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_the_live_state_pages_lists_and_guards_writes() {
    let repo = Repo::new();
    for name in ["a", "b"] {
        repo.write(
            &format!("workspaces/w/jobs/{name}.yaml"),
            &job(name, "echo"),
        );
    }
    repo.write(
        "workspaces/w/jobs/c.yaml",
        "apiVersion: olo/v1\nkind: Job\nmetadata: {name: c}\nspec:\n  params:\n    days: {type: integer, default: 7}\n    mode: {type: string, default: full, enum: [full, delta]}\n  tasks:\n    - id: a\n      bash: {command: echo}\n",
    );
    let c1 = repo.commit("three jobs", WHO);
    let d = Daemon::start(&repo, &[]).await;

    let (status, body) = d.get("/api/v1/status").await;
    assert_eq!(status, 200);
    assert_eq!(body["sync"]["state"], "Ready");
    assert_eq!(body["catalog_revision"], c1.as_str());

    // Pages of jobs, one at a time.
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/workspaces/w/jobs?limit=1&cursor={c}"),
            None => "/api/v1/workspaces/w/jobs?limit=1".to_string(),
        };
        let (status, page) = d.get(&q).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        names.push(page["items"][0]["name"].as_str().unwrap().to_string());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["a", "b", "c"]);
    let (_, job) = d.get("/api/v1/workspaces/w/jobs/b").await;
    assert_eq!(job["dag_id"], "w__b");
    assert_eq!(job["recent_runs"], json!([]));

    let (status, err) = d.get("/api/v1/workspaces/nope").await;
    assert_eq!(status, 404);
    assert_error_shape(&err, "not_found");
    // The request id: the caller's, in the header and the error body.
    let r = d
        .http
        .get(format!("{}/api/v1/workspaces/nope", d.base))
        .header("x-request-id", "proxy-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "proxy-7f3a");
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["request_id"], "proxy-7f3a", "{err}");
    let (status, err) = d.get("/api/v1/runs?limit=0").await;
    assert_eq!(status, 400);
    assert_error_shape(&err, "bad_request");
    let (status, err) = d.get("/api/v1/audit?cursor=garbage").await;
    assert_eq!(status, 400);
    assert_error_shape(&err, "bad_request");

    // Writes need a token; the token's name is the audit identity.
    let (status, err) = d.post("/api/v1/reconcile", None, json!({})).await;
    assert_eq!(status, 401);
    assert_error_shape(&err, "unauthorized");
    let (status, _) = d
        .post("/api/v1/reconcile", Some("olo_wrong"), json!({}))
        .await;
    assert_eq!(status, 401);
    let (status, ack) = d.post("/api/v1/reconcile", Some(TOKEN), json!({})).await;
    assert_eq!(
        (status, ack["result"].as_str()),
        (202, Some("reconcile queued"))
    );
    // ... and it reconciles the unchanged commit again (the start was the first reconcile).
    d.wait_until("the API's reconcile", |d| async move {
        d.get_text("/metrics")
            .await
            .contains("olo_reconciles_total{outcome=\"applied\"} 2")
    })
    .await;
    let (_, audit) = d.get("/api/v1/audit?limit=1").await;
    assert_eq!(audit["items"][0]["action"], "reconcile_request");
    assert_eq!(audit["items"][0]["actor"], "ci-bot");
    assert!(audit["next_cursor"].is_string());

    // Runs need Airflow, which this server has not got.
    let (status, err) = d
        .post(
            "/api/v1/workspaces/w/jobs/a/runs",
            Some(TOKEN),
            json!({"conf": {}}),
        )
        .await;
    assert_eq!(status, 503);
    assert_error_shape(&err, "airflow_not_configured");
    let (status, err) = d
        .post("/api/v1/workspaces/w/jobs/a/runs", None, json!({}))
        .await;
    assert_eq!(status, 401);
    assert_error_shape(&err, "unauthorized");
    // A run's request is checked before Airflow is asked: each refusal names what is wrong.
    let refused = [
        (
            "a",
            json!({"conf": {"olo": {"triggered_by": "someone else"}}}),
            "bad_request",
            "`conf.olo` is olo's own",
        ),
        ("a", json!({"conf": [1]}), "bad_request", "`conf` must be a JSON object"),
        (
            "a",
            json!({"logical_date": "yesterday"}),
            "bad_request",
            "`logical_date` must be an RFC 3339 time",
        ),
        ("a", json!({"logical_date": "2026-03-01T00:00:00"}), "bad_request", "with an offset"),
        ("a", json!({"note": "n".repeat(1001)}), "bad_request", "limit of 1000 characters"),
        ("a", json!({"run_id": "mine"}), "bad_request", "unknown field `run_id`"),
        (
            "c",
            json!({"conf": {"days": "7", "mode": "partial"}}),
            "invalid_conf",
            "param `days` must be of type integer, got a string (\"7\"); param `mode` must be one of \"full\", \"delta\", got \"partial\"",
        ),
    ];
    for (job_name, body, code, says) in refused {
        let (status, err) = d
            .post(
                &format!("/api/v1/workspaces/w/jobs/{job_name}/runs"),
                Some(TOKEN),
                body.clone(),
            )
            .await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_error_shape(&err, code);
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    // Right types, a date-only logical date and a note pass the checks (then need Airflow).
    let (status, err) = d
        .post(
            "/api/v1/workspaces/w/jobs/c/runs",
            Some(TOKEN),
            json!({"conf": {"days": 3, "mode": "delta", "other": true}, "logical_date": "2026-03-01", "note": "n"}),
        )
        .await;
    assert_eq!(status, 503, "{err}");
    assert_error_shape(&err, "airflow_not_configured");
    let (status, runs) = d.get("/api/v1/runs").await;
    assert_eq!((status, runs["items"].clone()), (200, json!([])));

    // The OpenAPI document is served and names every route.
    let (status, doc) = d.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/runs/{id}/tasks/{task}/logs/{try_number}"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_can_require_a_token() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let d = Daemon::start(&repo, &[("OLO_API__READ_REQUIRES_TOKEN", "true")]).await;
    let (status, err) = d.get("/api/v1/workspaces").await;
    assert_eq!(status, 401);
    assert_error_shape(&err, "unauthorized");
    let r = d
        .http
        .get(format!("{}/api/v1/workspaces", d.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Marquez's read routes too, the new ones as the old ones.
    for path in [
        "/api/v1/namespaces",
        "/api/v1/lineage/?nodeId=job:w:one",
        "/api/v1/search?q=one",
        "/api/v1/column-lineage?nodeId=dataset:w:x",
        "/api/v1/events/lineage",
    ] {
        let (status, err) = d.get(path).await;
        assert_eq!(status, 401, "{path}: {err}");
    }
    let r = d
        .http
        .get(format!("{}/api/v1/events/lineage", d.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"events": [], "totalCount": 0})
    );
    // Health and metrics stay open for probes and scrapers.
    assert_eq!(d.get("/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_airflow_stalls_the_apply_and_refuses_runs_with_a_clear_error() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
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
    // The DAG file is written, but the apply is not done until Airflow parsed it.
    assert!(d.olo.dags().join("w__one.py").exists());
    let (_, status) = d.get("/api/v1/status").await;
    assert_eq!(status["sync"]["state"], "Stalled", "{status}");
    let message = status["sync"]["message"].as_str().unwrap();
    assert!(
        message
            .contains("Airflow did not parse this DAG within 2 s: w__one (Airflow did not answer"),
        "{message}"
    );
    let (_, rev) = d.get(&format!("/api/v1/revisions/{c1}")).await;
    assert_eq!(rev["plans"][0]["outcome"], "failed");

    let (code, err) = d
        .post("/api/v1/workspaces/w/jobs/one/runs", Some(TOKEN), json!({}))
        .await;
    assert_eq!(code, 503);
    assert_error_shape(&err, "airflow_unavailable");
    let (_, runs) = d.get("/api/v1/runs").await;
    assert_eq!(runs["items"], json!([]), "a refused trigger records no run");
    assert_eq!(d.get("/healthz").await.0, 200);
}

/// Airflow knows the DAG but fails the trigger itself: olo records a run before it asks Airflow
/// (so that a trigger it cannot record never starts), and removes that record when Airflow
/// refuses; the caller gets Airflow's answer and nothing is left behind. Airflow is a wiremock
/// server answering as Airflow 3.3's API does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_airflow_fails_leaves_no_run() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let airflow = airflow_knowing_w_one().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/dags/w__one/dagRuns"))
        .respond_with(ResponseTemplate::new(503).set_body_string("the scheduler is restarting"))
        .mount(&airflow)
        .await;
    let (d, _repo) = olo_following(&airflow, &[("OLO_AIRFLOW__TIMEOUT_SECONDS", "2")]).await;
    let (code, err) = d
        .post("/api/v1/workspaces/w/jobs/one/runs", Some(TOKEN), json!({}))
        .await;
    assert_eq!(code, 503, "{err}");
    assert_error_shape(&err, "airflow_unavailable");
    let asked = airflow
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/api/v2/dags/w__one/dagRuns")
        .count();
    assert!(asked >= 1, "olo asked Airflow to start the run");
    let (_, runs) = d.get("/api/v1/runs").await;
    assert_eq!(runs["items"], json!([]), "the refused trigger left no run");
}

/// An Airflow (wiremock) whose runs of `w__one` succeed after two looks, with one task `a` and
/// its log, and an olo following it.
async fn olo_on_an_airflow_whose_runs_succeed() -> (Daemon, wiremock::MockServer, Repo) {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, ResponseTemplate};
    let airflow = airflow_knowing_w_one().await;
    let dag_run = |state: &str| {
        json!({
            "dag_id": "w__one", "dag_run_id": "olo__x", "state": state,
            "logical_date": "2026-03-01T00:00:00Z", "start_date": null, "end_date": null,
            "conf": {}
        })
    };
    Mock::given(method("POST"))
        .and(path("/api/v2/dags/w__one/dagRuns"))
        .respond_with(ResponseTemplate::new(200).set_body_json(dag_run("queued")))
        .mount(&airflow)
        .await;
    // Running for olo's first two looks (about 2 s), so a follower sees the run unfinished first.
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/v2/dags/w__one/dagRuns/[^/]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(dag_run("running")))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&airflow)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/v2/dags/w__one/dagRuns/[^/]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(dag_run("success")))
        .mount(&airflow)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/api/v2/dags/w__one/dagRuns/[^/]+/taskInstances$",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "task_instances": [{
                "task_id": "a", "map_index": -1, "try_number": 1, "state": "success",
                "start_date": "2026-03-01T00:00:01Z", "end_date": "2026-03-01T00:00:02Z",
                "duration": 1.0
            }],
            "total_entries": 1
        })))
        .mount(&airflow)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/api/v2/dags/w__one/dagRuns/[^/]+/taskInstances/a/logs/1$",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "content": [
                {"timestamp": "2026-03-01T00:00:01Z", "level": "info", "event": "Running command: echo 1"},
                {"timestamp": "2026-03-01T00:00:01Z", "level": "info", "event": "1"},
                {"timestamp": "2026-03-01T00:00:02Z", "level": "info", "event": "Command exited with return code 0"}
            ],
            "continuation_token": null
        })))
        .mount(&airflow)
        .await;
    let (d, repo) = olo_following(&airflow, &[("OLO_AIRFLOW__POLL_SECONDS", "1")]).await;
    (d, airflow, repo)
}

/// `olo ARGS --server <d>` with the test token, piped: (exit code, stdout, stderr).
async fn olo_cli(d: &Daemon, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_olo"));
    command
        .args(args)
        .args(["--server", &d.base])
        .env("OLO_TOKEN", TOKEN);
    let out = tokio::task::spawn_blocking(move || command.output().expect("olo runs"))
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A wiremock Airflow that hands out tokens and knows DAG `w__one`, unpaused.
async fn airflow_knowing_w_one() -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let airflow = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"access_token": "jwt"})))
        .mount(&airflow)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/dags/w__one"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "dag_id": "w__one", "is_paused": false, "last_parsed_time": "2026-12-07T00:00:00Z",
            "relative_fileloc": "w__one.py", "file_token": "token"
        })))
        .mount(&airflow)
        .await;
    airflow
}

/// olo on a repository with job `w/one` (task `a`), with `airflow` as its Airflow; the
/// repository lives as long as the caller keeps it.
async fn olo_following(airflow: &wiremock::MockServer, extra: &[(&str, &str)]) -> (Daemon, Repo) {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let url = airflow.uri();
    let mut settings = vec![
        ("OLO_AIRFLOW__URL", url.as_str()),
        ("OLO_AIRFLOW__PASSWORD_ENV", "TEST_AIRFLOW_PASSWORD"),
        ("TEST_AIRFLOW_PASSWORD", "x"),
        ("OLO_AIRFLOW__PARSE_TIMEOUT_SECONDS", "2"),
    ];
    settings.extend_from_slice(extra);
    (Daemon::start(&repo, &settings).await, repo)
}

/// What a person reads from `olo run --wait --logs`, against an Airflow (wiremock) whose run
/// succeeds within seconds: the run line, each task's state, each log, the end. The Airflow run id is
/// random and the progress lines depend on timing (how many polls see `queued`), so both are
/// normalised before the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn olo_run_wait_logs_as_people_read_it() {
    let (d, _airflow, _repo) = olo_on_an_airflow_whose_runs_succeed().await;
    let (code, stdout, stderr) = olo_cli(
        &d,
        &[
            "run",
            "w/one",
            "--logical-date",
            "2026-03-01",
            "--wait",
            "--logs",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let shown: Vec<String> = stdout
        .lines()
        .filter(|l| {
            !(l.starts_with("run 1: ") && (l.ends_with("queued") || l.ends_with("running")))
        })
        .map(
            |l| match (l.find("Airflow run olo__"), l.find(", logical date")) {
                (Some(a), Some(b)) => {
                    format!("{}Airflow run olo__[time]__[id]{}", &l[..a], &l[b..])
                }
                _ => l.to_string(),
            },
        )
        .collect();
    insta::assert_snapshot!("olo_run_wait_logs", shown.join("\n"));
}

/// What a person reads from `olo backfill` (without --wait): the backfill and a line per run
/// olo recorded, against an Airflow (wiremock) answering as Airflow 3.3.2 did in airflow_e2e.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn olo_backfill_as_people_read_it() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, ResponseTemplate};
    let airflow = airflow_knowing_w_one().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/backfills"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 4, "dag_id": "w__one", "from_date": "2026-02-01T00:00:00Z",
            "to_date": "2026-02-02T00:00:00Z", "dag_run_conf": {}, "is_paused": false,
            "reprocess_behavior": "none", "max_active_runs": 1,
            "created_at": "2026-12-07T17:12:19.837490Z", "completed_at": null,
            "updated_at": "2026-12-07T17:12:19.837490Z", "dag_display_name": "w__one"
        })))
        .mount(&airflow)
        .await;
    let run = |day: &str| {
        json!({
            "dag_id": "w__one", "dag_run_id": format!("backfill__{day}T00:00:00+00:00"),
            "state": "queued", "logical_date": format!("{day}T00:00:00Z"),
            "start_date": null, "end_date": null, "conf": {}
        })
    };
    Mock::given(method("GET"))
        .and(path("/api/v2/dags/w__one/dagRuns"))
        .and(query_param("run_type", "backfill"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "dag_runs": [run("2026-02-01"), run("2026-02-02")], "total_entries": 2
        })))
        .mount(&airflow)
        .await;
    let (d, _repo) = olo_following(&airflow, &[]).await;
    let (code, stdout, stderr) = olo_cli(
        &d,
        &[
            "backfill",
            "w/one",
            "--from",
            "2026-02-01",
            "--to",
            "2026-02-02",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    insta::assert_snapshot!("olo_backfill", stdout);
}

/// On a terminal (a pseudo-terminal from util-linux's `script`), `olo run --wait` redraws a
/// status line in place under the task lines; piped (above), it prints plain lines only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn olo_run_wait_on_a_terminal_draws_a_live_status_line() {
    let (d, _airflow, _repo) = olo_on_an_airflow_whose_runs_succeed().await;
    let command = format!(
        "{} run w/one --wait --server {}",
        env!("CARGO_BIN_EXE_olo"),
        d.base
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("OLO_TOKEN", TOKEN)
            .env("TERM", "xterm")
            .output()
            .expect("util-linux script runs (bsdutils)")
    })
    .await
    .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("\r\x1b[2K"),
        "the line is cleared in place: {shown:?}"
    );
    assert!(shown.contains("tasks done"), "a status line: {shown:?}");
    assert!(shown.contains("  a: success"), "{shown:?}");
    assert!(
        shown.trim_end().ends_with("run 1 of w/one: success"),
        "{shown:?}"
    );
}

#[test]
fn sigint_and_sigterm_stop_the_daemon() {
    for signal in ["-INT", "-TERM"] {
        let repo = Repo::new();
        repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
        repo.commit("one", WHO);
        let olo = common::Olo::new(&repo.path().display().to_string())
            .set("OLO_SOURCE__POLL_SECONDS", "1");
        let log = olo.state.path().join("serve.log");
        let mut child = olo
            .command(&["serve"])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(": Ready")
        {
            assert!(std::time::Instant::now() < deadline, "never Ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Signals arriving while the loop is busy must not be lost: let polls run meanwhile.
        std::thread::sleep(Duration::from_millis(1500));
        let sent = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("olo serve ignored kill {signal}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{signal}: {status:?}");
        assert!(std::fs::read_to_string(&log)
            .unwrap()
            .contains("olo serve: stopping"));
    }
}
