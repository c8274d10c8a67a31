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

/// GitHub's real pull_request payload, pointed at our repository's pull request 2.
fn pull_request_payload(action: &str, head_sha: &str) -> Vec<u8> {
    let mut p = fixture("pull_request-opened.json");
    p["action"] = json!(action);
    p["number"] = json!(2);
    p["pull_request"]["number"] = json!(2);
    p["pull_request"]["head"]["sha"] = json!(head_sha);
    p["pull_request"]["base"]["ref"] = json!("main");
    serde_json::to_vec(&p).unwrap()
}

/// `olo serve` on `repo` with `github` as GitHub's API (token `ghp_test`), which accepts every
/// commit status.
async fn daemon_with_github(repo: &Repo, github: &wiremock::MockServer) -> Daemon {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, ResponseTemplate};
    Mock::given(method("POST"))
        .and(path_regex(
            "^/repos/Codertocat/Hello-World/statuses/[0-9a-f]{40}$",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(github)
        .await;
    Daemon::start(
        repo,
        &[
            ("OLO_GITHUB__API_URL", &github.uri()),
            ("OLO_GITHUB__TOKEN_ENV", "TEST_GITHUB_TOKEN"),
            ("TEST_GITHUB_TOKEN", "ghp_test"),
        ],
    )
    .await
}

async fn github_calls(server: &wiremock::MockServer, verb: &str, path_end: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == verb && r.url.path().ends_with(path_end))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_gets_one_plan_comment_kept_up_to_date_and_a_status() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    // The pull request: changes `one`, adds `three`; GitHub keeps its head at refs/pull/2/head.
    repo.git(&["checkout", "-q", "-b", "feature"], WHO);
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 2"));
    repo.write("workspaces/w/jobs/three.yaml", &job("three", "echo 3"));
    let head1 = repo.commit("change one, add three", WHO);
    repo.git(&["update-ref", "refs/pull/2/head", &head1], WHO);

    let github = MockServer::start().await;
    let comments = "/repos/Codertocat/Hello-World/issues/2/comments";
    Mock::given(method("GET"))
        .and(path(comments))
        .and(header("authorization", "Bearer ghp_test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(comments))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 11, "body": ""})))
        .expect(1)
        .mount(&github)
        .await;
    let d = daemon_with_github(&repo, &github).await;
    let one_before = std::fs::read(d.olo.dags().join("w__one.py")).unwrap();

    let body = pull_request_payload("opened", &head1);
    let (status, ack) = d.deliver("pull_request", "pr-1", &body, &sign(&body)).await;
    assert_eq!((status, ack["result"].as_str()), (202, Some("plan queued")));
    d.wait_until("the plan's final status", |_| async {
        github_calls(&github, "POST", &format!("/statuses/{head1}"))
            .await
            .len()
            == 2
    })
    .await;
    let statuses = github_calls(&github, "POST", &format!("/statuses/{head1}")).await;
    assert_eq!(statuses[0]["state"], "pending");
    assert_eq!(statuses[1]["state"], "success");
    assert_eq!(statuses[1]["context"], "olo/plan");
    assert_eq!(
        statuses[1]["description"],
        "1 to create, 1 to change, 0 to delete in 1 workspace"
    );
    let posted = github_calls(&github, "POST", comments).await;
    let text = posted[0]["body"].as_str().unwrap();
    assert!(text.starts_with("<!-- olo-plan -->"), "{text}");
    assert!(
        text.contains("dags/w__three.py") && text.contains("dags/w__one.py"),
        "{text}"
    );
    assert!(
        text.contains("-        bash_command='echo 1',")
            && text.contains("+        bash_command='echo 2',"),
        "{text}"
    );
    // Planning changed nothing live.
    assert_eq!(
        std::fs::read(d.olo.dags().join("w__one.py")).unwrap(),
        one_before
    );
    assert!(!d.olo.dags().join("w__three.py").exists());

    // A new push to the pull request, now invalid: the same comment is edited, not re-posted.
    Mock::given(method("GET"))
        .and(path(comments))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 5, "body": "LGTM", "user": {"login": "grace"}},
            {"id": 11, "body": text, "user": {"login": "olo[bot]"}}
        ])))
        .with_priority(2)
        .mount(&github)
        .await;
    // olo's comments are the marked ones its token's user wrote: asked once.
    Mock::given(method("GET"))
        .and(path("/user"))
        .and(header("authorization", "Bearer ghp_test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"login": "olo[bot]"})))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/Codertocat/Hello-World/issues/comments/11"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 11, "body": ""})))
        .expect(1)
        .mount(&github)
        .await;
    repo.write(
        "workspaces/w/jobs/three.yaml",
        "apiVersion: olo/v1\nkind: Job\nmetadata: {name: three}\nspec:\n  shedule: '@daily'\n  tasks:\n    - id: a\n      bash: {command: echo}\n",
    );
    let head2 = repo.commit("typo", WHO);
    repo.git(&["update-ref", "refs/pull/2/head", &head2], WHO);
    let body = pull_request_payload("synchronize", &head2);
    let (status, _) = d.deliver("pull_request", "pr-2", &body, &sign(&body)).await;
    assert_eq!(status, 202);
    d.wait_until("the invalid plan's final status", |_| async {
        github_calls(&github, "POST", &format!("/statuses/{head2}"))
            .await
            .len()
            == 2
    })
    .await;
    let statuses = github_calls(&github, "POST", &format!("/statuses/{head2}")).await;
    assert_eq!(statuses[1]["state"], "failure");
    let description = statuses[1]["description"].as_str().unwrap();
    assert!(
        description.contains("workspaces/w/jobs/three.yaml:5:3"),
        "{description}"
    );
    let edited = github_calls(&github, "PATCH", "/issues/comments/11").await;
    let text = edited[0]["body"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "https://github.com/Codertocat/Hello-World/blob/{head2}/workspaces/w/jobs/three.yaml#L5"
        )),
        "{text}"
    );
    assert_eq!(github_calls(&github, "POST", comments).await.len(), 1);
    assert!(github_calls(&github, "PATCH", "/issues/comments/5")
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_deleting_a_producer_flags_its_readers_in_other_workspaces() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    // w's `produce` writes raw.revenue; workspace m's `report` reads it.
    let repo = Repo::new();
    let task_job = |name: &str, lineage: &str| {
        format!(
            "apiVersion: olo/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  tasks:\n    - id: a\n      bash: {{command: echo}}\n      {lineage}\n"
        )
    };
    repo.write(
        "workspaces/w/jobs/produce.yaml",
        &task_job("produce", "outputs: [raw.revenue]"),
    );
    repo.write(
        "workspaces/m/workspace.yaml",
        &common::WORKSPACE
            .replace("{name: w}", "{name: m}")
            .replace("catalog: lake", "catalog: mkt")
            .replace("lake-bucket/w", "lake-bucket/m"),
    );
    repo.write(
        "workspaces/m/jobs/report.yaml",
        &task_job("report", "inputs: [w.raw.revenue]"),
    );
    repo.commit("produce and report", WHO);
    // The pull request deletes the producer.
    repo.git(&["checkout", "-q", "-b", "feature"], WHO);
    repo.git(&["rm", "-q", "workspaces/w/jobs/produce.yaml"], WHO);
    let head = repo.commit("drop produce", WHO);
    repo.git(&["update-ref", "refs/pull/2/head", &head], WHO);

    let github = MockServer::start().await;
    let comments = "/repos/Codertocat/Hello-World/issues/2/comments";
    Mock::given(method("GET"))
        .and(path(comments))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path(comments))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 11, "body": ""})))
        .mount(&github)
        .await;
    let d = daemon_with_github(&repo, &github).await;
    let body = pull_request_payload("opened", &head);
    let (status, _) = d.deliver("pull_request", "pr-1", &body, &sign(&body)).await;
    assert_eq!(status, 202);
    d.wait_until("the plan's final status", |_| async {
        github_calls(&github, "POST", &format!("/statuses/{head}"))
            .await
            .len()
            == 2
    })
    .await;
    let statuses = github_calls(&github, "POST", &format!("/statuses/{head}")).await;
    // The deleted DAG file belongs to w, in the live commit.
    assert_eq!(
        statuses[1]["description"],
        "0 to create, 0 to change, 1 to delete in 1 workspace"
    );
    let posted = github_calls(&github, "POST", comments).await;
    let text = posted[0]["body"].as_str().unwrap();
    assert!(text.contains("| w | 0 | 0 | 1 |"), "{text}");
    assert!(!text.contains("_shared_"), "{text}");
    assert!(
        text.contains("**Merging this breaks 1 reader in 1 workspace**")
            && text.contains("| w:raw.revenue | w:produce | m:report |"),
        "{text}"
    );
    // The deleted job's impact, on the live graph.
    assert!(
        text.contains("| w/produce | delete | w:raw.revenue | m:report | — |"),
        "{text}"
    );
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

/// Reads `stream` to its end: the server closed the connection (a reset counts too). Fails if
/// it is still open after a minute (the server would hold it forever).
async fn closed_by_server(stream: &mut tokio::net::TcpStream, what: &str) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    match tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut buf)).await {
        Ok(_) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => panic!("{what}: the connection is still open"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_the_server_keeps_answering() {
    use tokio::io::AsyncWriteExt as _;
    use tokio::net::TcpStream;

    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    // Short deadlines: the test checks what happens at them, not how long they are.
    let d = Daemon::start(
        &repo,
        &[
            ("OLO_SERVER__HEADER_TIMEOUT_SECONDS", "1"),
            ("OLO_SERVER__BODY_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    let addr = d.base.trim_start_matches("http://").to_string();

    // Half-sent headers (slowloris), and a connection that sends nothing at all.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"POST /webhooks/github HTTP/1.1\r\nHost: olo\r\nX-GitHub-Event: push\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    closed_by_server(&mut half, "half-sent headers").await;
    closed_by_server(&mut silent, "a silent connection").await;

    // A webhook body that stalls after a few bytes of its declared 1,000: 408, then closed.
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(
            b"POST /webhooks/github HTTP/1.1\r\nHost: olo\r\nX-GitHub-Event: push\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ref\":",
        )
        .await
        .unwrap();
    let answer = closed_by_server(&mut stalled, "a stalled webhook body").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    assert_error_shape(&serde_json::from_str(body).unwrap(), "request_timeout");

    // The same for an API body (read by the JSON extractor).
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(
            format!(
                "POST /api/v1/reconcile HTTP/1.1\r\nHost: olo\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    closed_by_server(&mut stalled, "a stalled API body").await;

    // A keep-alive connection left idle after an answer is closed too.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: olo\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_by_server(&mut idle, "an idle keep-alive connection").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Everyone else is still served.
    assert_eq!(d.get_text("/healthz").await, "ok\n");
    let metrics = d.get_text("/metrics").await;
    let line = "olo_webhook_deliveries_total{event=\"push\",result=\"unreadable\"} 1";
    assert!(metrics.contains(line), "no `{line}` in:\n{metrics}");
}

/// Sends `request` (whole) on `stream` and reads the answer until olo closes; returns the
/// answer's status line. The caller connects first, so the order in which connections reach
/// olo's accept queue is the test's, whatever the scheduler does.
async fn exchange(stream: tokio::net::TcpStream, request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut read, mut write) = stream.into_split();
    // A large body fills the socket buffers: write it beside the read.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        write
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), read.read_to_end(&mut answer)).await;
    drop(writer.await);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Whether `task` is still waiting for its answer after `wait` (olo holds it back), then its
/// answer.
async fn held_back(mut task: tokio::task::JoinHandle<String>, wait: Duration) -> (bool, String) {
    match tokio::time::timeout(wait, &mut task).await {
        Ok(answer) => (false, answer.unwrap()),
        Err(_) => (true, task.await.unwrap()),
    }
}

/// `server.max_connections`: past it a new connection waits in the kernel's accept queue until
/// a slot frees, so olo's open files stay bounded. Here both slots hold silent connections,
/// which olo closes at the 3 s header timeout: a health check sent behind them is not answered
/// in its first 1.5 s (without the limit it is answered at once), then it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_a_new_connection_waits_for_a_free_slot() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let d = Daemon::start(
        &repo,
        &[
            ("OLO_SERVER__HEADER_TIMEOUT_SECONDS", "3"),
            ("OLO_SERVER__MAX_CONNECTIONS", "2"),
        ],
    )
    .await;
    let addr = d.base.trim_start_matches("http://").to_string();
    let connect = || tokio::net::TcpStream::connect(addr.clone());
    let mut silent = Vec::new();
    for _ in 0..2 {
        // Connected, sending nothing: closed by olo at the header timeout.
        silent.push(tokio::spawn(exchange(connect().await.unwrap(), Vec::new())));
    }
    // In olo's accept queue behind both silent connections.
    let health = tokio::spawn(exchange(
        connect().await.unwrap(),
        b"GET /healthz HTTP/1.1\r\nHost: olo\r\nConnection: close\r\n\r\n".to_vec(),
    ));
    let (held, answer) = held_back(health, Duration::from_millis(1500)).await;
    assert!(
        held,
        "the health check was answered while both slots were taken"
    );
    assert_eq!(answer, "HTTP/1.1 200 OK");
    for s in silent {
        // Closed by olo at the header timeout (the read ends).
        s.await.unwrap();
    }
    // Once the slots are free again, everyone is served.
    assert_eq!(d.get_text("/healthz").await, "ok\n");
}

/// `server.max_large_bodies`: a webhook delivery over 1 MiB is read only while fewer than that
/// many large ones are being read. Here one slot: a large delivery that stalls holds it until the
/// 6 s body timeout (408); a second, complete one sent 2 s later is not answered in its next
/// 1.5 s (without the limit it is read and refused at once), then it is read and refused for its
/// forged signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_large_bodies_a_large_delivery_waits_for_the_one_being_read() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let d = Daemon::start(
        &repo,
        &[
            ("OLO_SERVER__BODY_TIMEOUT_SECONDS", "6"),
            ("OLO_SERVER__MAX_LARGE_BODIES", "1"),
        ],
    )
    .await;
    let addr = d.base.trim_start_matches("http://").to_string();
    let head = |id: &str, length: usize| {
        format!(
            "POST /webhooks/github HTTP/1.1\r\nHost: olo\r\nX-GitHub-Event: push\r\n\
             X-GitHub-Delivery: {id}\r\nX-Hub-Signature-256: sha256=00\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    };
    // 2 MB declared, 7 bytes sent.
    let mut stalled = head("large-stalled", 2_000_000);
    stalled.extend_from_slice(b"{\"ref\":");
    let first = tokio::spawn(exchange(
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        stalled,
    ));
    // Time for olo to take the stalled delivery's slot.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // 1.5 MB, all of it.
    let mut whole = head("large-whole", 1_500_000);
    whole.extend(std::iter::repeat_n(b' ', 1_500_000));
    let second = tokio::spawn(exchange(
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        whole,
    ));
    let (held, answer) = held_back(second, Duration::from_millis(1500)).await;
    assert!(
        held,
        "the second large delivery was read while the first held the slot"
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(first.await.unwrap().starts_with("HTTP/1.1 408"));
}

/// A request target or headers larger than olo reads get 414 and 431 in the error shape (with an
/// error id), through the real HTTP stack: hyper lets them through to olo's check, which comes
/// before its own, empty, refusals. Within the limits the same request is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_target_or_header_block_is_refused_in_the_error_shape() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let d = Daemon::start(&repo, &[]).await;
    let addr = d.base.trim_start_matches("http://").to_string();
    let send = |request: String| {
        let addr = addr.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
                .await
                .expect("olo answers and closes")
                .unwrap();
            let answer = String::from_utf8_lossy(&answer).to_string();
            let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
            let status = head.lines().next().unwrap_or("").to_string();
            (
                status,
                serde_json::from_str::<Value>(body).unwrap_or(Value::Null),
            )
        }
    };
    let get = |target: String, headers: String| {
        format!("GET {target} HTTP/1.1\r\nHost: olo\r\n{headers}Connection: close\r\n\r\n")
    };

    let (status, body) = send(get(
        format!("/api/v1/status?x={}", "a".repeat(9_000)),
        String::new(),
    ))
    .await;
    assert!(status.starts_with("HTTP/1.1 414"), "{status}");
    assert_error_shape(&body, "uri_too_long");
    let (status, _) = send(get(
        format!("/api/v1/status?x={}", "a".repeat(7_000)),
        String::new(),
    ))
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    // 150 header lines: more than olo reads, fewer than hyper refuses by itself.
    let many: String = (0..150).map(|i| format!("X-Extra-{i}: v\r\n")).collect();
    let (status, body) = send(get("/api/v1/status".into(), many)).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert_error_shape(&body, "headers_too_large");
    // 40 KB of headers in few lines.
    let large: String = (0..10)
        .map(|i| format!("X-Big-{i}: {}\r\n", "v".repeat(4_000)))
        .collect();
    let (status, body) = send(get("/api/v1/status".into(), large)).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert_error_shape(&body, "headers_too_large");
    let (status, _) = send(get("/api/v1/status".into(), "X-Small: v\r\n".into())).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

/// `olo_branch_reads_total`, from `/metrics`.
async fn branch_reads(d: &Daemon) -> u64 {
    let metrics = d.get_text("/metrics").await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("olo_branch_reads_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no olo_branch_reads_total in:\n{metrics}"))
}

/// A daemon on a local folder reads it again when something in it changes, and only then:
/// olo's own import opens every file, and taking those reads for changes had an idle daemon
/// import its folder about three times a second, for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_daemon_on_a_local_folder_leaves_it_alone_until_it_changes() {
    idle_daemon_leaves_its_folder_alone().await;
}

/// A plain (not git) folder with olo's state folder inside it, as `olo serve` run in a folder
/// with the default `./.olo` has it: each read of a plain folder imports it into a git
/// repository in the state folder, and taking those writes for changes had an idle daemon read
/// it again about three times a second. olo's own folders are left out of the watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_folder_inside_the_watched_folder_is_not_a_change() {
    let folder = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = folder.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("workspaces/w/workspace.yaml", common::WORKSPACE);
    write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    let olo = common::Olo::new(&folder.path().display().to_string())
        .set("OLO_SOURCE__POLL_SECONDS", "3600")
        .set(
            "OLO_STATE__DIR",
            &folder.path().join(".olo").display().to_string(),
        );
    let d = Daemon::resume(olo).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = branch_reads(&d).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        branch_reads(&d).await,
        idle,
        "the folder was read again with nothing changed"
    );
    write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    d.wait_until("the new job to be served", |d| async move {
        d.get("/api/v1/workspaces/w/jobs/two").await.0 == 200
    })
    .await;
}

/// An idle daemon on a local git folder: see above.
async fn idle_daemon_leaves_its_folder_alone() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let olo = common::Olo::new(&repo.path().display().to_string())
        .set("OLO_SOURCE__POLL_SECONDS", "3600");
    let d = Daemon::resume(olo).await;
    // Let the start-up's own file events settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = branch_reads(&d).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        branch_reads(&d).await,
        idle,
        "the folder was read again with nothing changed"
    );
    // A change is still taken (a git folder: olo follows the branch's commits).
    repo.write("workspaces/w/jobs/two.yaml", &job("two", "echo 2"));
    repo.commit("two", WHO);
    d.wait_until("the new job to be served", |d| async move {
        d.get("/api/v1/workspaces/w/jobs/two").await.0 == 200
    })
    .await;
    assert!(branch_reads(&d).await > idle);
}
