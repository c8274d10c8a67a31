//! The Airflow client against a fake Airflow (wiremock): the exact requests it sends (method, raw
//! path, query, `Authorization`, `Accept`, JSON body), how often (`.expect(n)`, checked when the
//! server drops), and how it classifies Airflow's answers. Response bodies are what Airflow 3.3.2
//! answered (captured from a running one), or built from its published OpenAPI description.

// Airflow's responses are wide: `json!` needs more room for them.
#![recursion_limit = "256"]

use std::time::Duration;

use chrono::{DateTime, Utc};
use olo_reconciler::targets::airflow::{
    Airflow, AirflowClient, AirflowError, AirflowSettings, Dag, DagRun, ImportError, TaskInstance,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{
    bearer_token, body_json, header, method, path, path_regex, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

const USERNAME: &str = "admin";
const PASSWORD: &str = "vQ3xT8mKp2ZrHs7d";
const TOKEN: &str = "eyJhbGciOiJIUzUxMiIsImtpZCI6Im5vdC11c2VkIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiIsImF1ZCI6ImFwYWNoZS1haXJmbG93IiwiZXhwIjoxNzk1NzM4NTU5fQ.6LCavW4STJ53UptWfDluBfrWlfRLDhNBDm3C63OC6En";
const RENEWED_TOKEN: &str = "eyJhbGciOiJIUzUxMiIsImtpZCI6Im5vdC11c2VkIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiIsImF1ZCI6ImFwYWNoZS1haXJmbG93IiwiZXhwIjoxNzk1NzQyMTU5fQ.Qm9kFWq1nT0xLrYc8vZp3sHd2uJe7gA5iKo4wBtMfXy";

// ---------------------------------------------------------------------------------------------
// The harness: a fake Airflow and a client pointed at it.

struct TestAirflow {
    server: MockServer,
    client: AirflowClient,
}

impl TestAirflow {
    async fn start() -> TestAirflow {
        TestAirflow::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut AirflowSettings)) -> TestAirflow {
        let server = MockServer::start().await;
        let mut settings = settings(&server.uri());
        adjust(&mut settings);
        let client = AirflowClient::new(settings).expect("valid settings");
        TestAirflow { server, client }
    }

    /// Airflow hands out `token`, exactly `times` times, for the right credentials only.
    async fn expect_token(&self, token: &str, times: u64) {
        token_mock(token).expect(times).mount(&self.server).await;
    }
}

fn settings(url: &str) -> AirflowSettings {
    AirflowSettings {
        url: url.parse().expect("a URL"),
        username: USERNAME.to_string(),
        password: SecretString::from(PASSWORD),
        timeout: Duration::from_secs(10),
    }
}

fn token_mock(token: &str) -> Mock {
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"username": USERNAME, "password": PASSWORD}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"access_token": token})))
}

/// A request to the API with `token`, asking for JSON.
fn api(verb: &str, raw_path: &str, token: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(raw_path))
        .and(bearer_token(token))
        .and(header("accept", "application/json"))
}

fn time(s: &str) -> Option<DateTime<Utc>> {
    Some(s.parse().expect("an RFC 3339 time"))
}

// ---------------------------------------------------------------------------------------------
// Bodies Airflow 3.3.2 answered.

const SMOKE_RUN_PATH: &str = "/api/v2/dags/platform__smoke_test/dagRuns/olo-test-1";

fn smoke_run() -> Value {
    json!({
        "dag_run_id": "olo-test-1", "dag_id": "platform__smoke_test", "logical_date": null,
        "queued_at": "2026-11-26T23:05:23.300146Z", "start_date": "2026-11-26T23:05:24.444599Z",
        "end_date": "2026-11-26T23:05:27.893383Z", "duration": 3.448784,
        "data_interval_start": null, "data_interval_end": null,
        "run_after": "2026-11-26T23:05:23.262874Z",
        "last_scheduling_decision": "2026-11-26T23:05:27.892210Z", "run_type": "manual",
        "state": "success", "triggered_by": "rest_api", "triggering_user_name": "admin",
        "conf": {"greeting": "hi"}, "note": null,
        "dag_versions": [{
            "id": "01a21a1b-1b3f-75e6-841b-48b49e087e51", "version_number": 1,
            "dag_id": "platform__smoke_test", "bundle_name": "dags-folder",
            "bundle_version": null, "created_at": "2026-11-26T23:05:13.791455Z",
            "dag_display_name": "platform__smoke_test", "bundle_url": null
        }],
        "bundle_version": null, "dag_display_name": "platform__smoke_test",
        "partition_key": null, "partition_date": null
    })
}

fn smoke_run_parsed() -> DagRun {
    DagRun {
        dag_id: "platform__smoke_test".into(),
        dag_run_id: "olo-test-1".into(),
        state: "success".into(),
        logical_date: None,
        start_date: time("2026-11-26T23:05:24.444599Z"),
        end_date: time("2026-11-26T23:05:27.893383Z"),
        conf: Some(json!({"greeting": "hi"})),
    }
}

/// The same run just after the trigger: queued, not started.
fn queued_smoke_run() -> Value {
    let mut run = smoke_run();
    run["state"] = json!("queued");
    run["start_date"] = Value::Null;
    run["end_date"] = Value::Null;
    run["duration"] = Value::Null;
    run["last_scheduling_decision"] = Value::Null;
    run
}

fn smoke_dag(is_paused: bool) -> Value {
    json!({
        "dag_id": "platform__smoke_test", "dag_display_name": "platform__smoke_test",
        "is_paused": is_paused, "is_stale": false,
        "last_parsed_time": "2026-11-26T23:05:52.567686Z",
        "last_parse_duration": 0.07284621299913852, "last_expired": null,
        "bundle_name": "dags-folder", "bundle_version": null,
        "relative_fileloc": "platform__smoke_test.py",
        "fileloc": "/tmp/olo-airflow/dags/platform__smoke_test.py",
        "description": "Checks that olo-rendered DAGs parse, run and report in Airflow.",
        "timetable_summary": null, "timetable_description": "Never, external triggers only",
        "timetable_partitioned": false, "timetable_periodic": false,
        "tags": [
            {"name": "olo", "dag_id": "platform__smoke_test", "dag_display_name": "platform__smoke_test"},
            {"name": "workspace:platform", "dag_id": "platform__smoke_test", "dag_display_name": "platform__smoke_test"}
        ],
        "max_active_tasks": 16, "max_active_runs": 16, "max_consecutive_failed_dag_runs": 0,
        "has_task_concurrency_limits": false, "has_import_errors": false,
        "next_dagrun_logical_date": null, "next_dagrun_data_interval_start": null,
        "next_dagrun_data_interval_end": null, "next_dagrun_run_after": null,
        "allowed_run_types": null, "owners": ["data-platform"], "is_backfillable": false,
        "file_token": "eyJidW5kbGVfbmFtZSI6ImRhZ3MtZm9sZGVyIiwicmVsYXRpdmVfZmlsZWxvYyI6InBsYXRmb3JtX19zbW9rZV90ZXN0LnB5In0.1oaZrxfkqNWHg1pXqbrhU_FrDQI"
    })
}

/// A task instance of the smoke run as Airflow lists it.
fn smoke_task_instance(
    task_id: &str,
    operator: &str,
    (start, end, duration): (&str, &str, f64),
) -> Value {
    json!({
        "id": "01a21a1b-406f-7a3f-9068-770a37585330", "task_id": task_id,
        "dag_id": "platform__smoke_test", "dag_run_id": "olo-test-1", "map_index": -1,
        "logical_date": null, "run_after": "2026-11-26T23:05:23.262874Z",
        "start_date": start, "end_date": end, "duration": duration, "state": "success",
        "try_number": 1, "max_tries": 0, "task_display_name": task_id,
        "dag_display_name": "platform__smoke_test", "hostname": "vm", "unixname": "root",
        "pool": "default_pool", "pool_slots": 1, "queue": "default", "priority_weight": 1,
        "operator": operator, "operator_name": operator,
        "queued_when": "2026-11-26T23:05:24.469932Z", "scheduled_when": "2026-11-26T23:05:24.451463Z",
        "pid": 2143, "executor": null, "executor_config": "{}", "note": null,
        "rendered_map_index": null, "rendered_fields": {"env": {}, "cwd": null},
        "trigger": null, "triggerer_job": null,
        "dag_version": {
            "id": "01a21a1b-1b3f-75e6-841b-48b49e087e51", "version_number": 1,
            "dag_id": "platform__smoke_test", "bundle_name": "dags-folder", "bundle_version": null,
            "created_at": "2026-11-26T23:05:13.791455Z", "dag_display_name": "platform__smoke_test",
            "bundle_url": null
        }
    })
}

fn import_error(id: i64, filename: &str, stack_trace: &str) -> Value {
    json!({
        "import_error_id": id, "timestamp": "2026-11-26T23:31:07.410521Z",
        "filename": filename, "bundle_name": "dags-folder", "stack_trace": stack_trace
    })
}

/// One line of a task's structured log as the log endpoint returns it.
fn log_event(timestamp: &str, event: &str, logger: &str) -> Value {
    json!({
        "timestamp": timestamp, "event": event, "level": "info", "dag_id": "platform__smoke_test",
        "map_index": -1, "try_number": 1, "run_id": "olo-test-1",
        "ti_id": "01a21a1b-4073-7a55-901d-c38fe45d0f43", "task_id": "check", "logger": logger,
        "filename": "subprocess.py", "lineno": 92
    })
}

/// An error body Airflow's database error handlers answer with.
fn database_error(reason: &str) -> Value {
    json!({"detail": {
        "reason": reason, "statement": "hidden", "orig_error": "hidden",
        "message": "Serious error when handling your request. Check logs for more details - you will find it in api server when you look for ID KqJnFzYxRw"
    }})
}

// ---------------------------------------------------------------------------------------------
// Authentication.

#[tokio::test]
async fn token_is_fetched_once_and_reused_across_calls() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("GET", SMOKE_RUN_PATH, TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(smoke_run()))
        .expect(2)
        .mount(&airflow.server)
        .await;

    let first = airflow
        .client
        .dag_run("platform__smoke_test", "olo-test-1")
        .await
        .unwrap();
    let second = airflow
        .client
        .dag_run("platform__smoke_test", "olo-test-1")
        .await
        .unwrap();

    assert_eq!(first, smoke_run_parsed());
    assert_eq!(second, smoke_run_parsed());
}

/// Airflow rejects `TOKEN` with `status`: the client fetches `RENEWED_TOKEN` and repeats the
/// request once, which succeeds.
async fn rejected_token_is_renewed_once(status: u16, detail: &str) {
    let airflow = TestAirflow::start().await;
    token_mock(TOKEN)
        .up_to_n_times(1)
        .expect(1)
        .mount(&airflow.server)
        .await;
    airflow.expect_token(RENEWED_TOKEN, 1).await;
    api("GET", SMOKE_RUN_PATH, TOKEN)
        .respond_with(ResponseTemplate::new(status).set_body_json(json!({"detail": detail})))
        .expect(1)
        .mount(&airflow.server)
        .await;
    api("GET", SMOKE_RUN_PATH, RENEWED_TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(smoke_run()))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let run = airflow
        .client
        .dag_run("platform__smoke_test", "olo-test-1")
        .await
        .unwrap();

    assert_eq!(run, smoke_run_parsed());
}

#[tokio::test]
async fn expired_token_401_is_renewed_and_the_request_retried_once() {
    rejected_token_is_renewed_once(401, "Token Expired").await;
}

#[tokio::test]
async fn unreadable_token_403_is_renewed_and_the_request_retried_once() {
    rejected_token_is_renewed_once(403, "Invalid JWT token").await;
}

#[tokio::test]
async fn rejection_after_renewal_is_returned_not_retried_again() {
    let airflow = TestAirflow::start().await;
    token_mock(TOKEN)
        .up_to_n_times(1)
        .expect(1)
        .mount(&airflow.server)
        .await;
    airflow.expect_token(RENEWED_TOKEN, 1).await;
    api("GET", SMOKE_RUN_PATH, TOKEN)
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"detail": "Token Expired"})))
        .expect(1)
        .mount(&airflow.server)
        .await;
    api("GET", SMOKE_RUN_PATH, RENEWED_TOKEN)
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"detail": "Forbidden"})))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let err = airflow
        .client
        .dag_run("platform__smoke_test", "olo-test-1")
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            AirflowError::Status { operation: "read a DAG run", status: 403, body }
                if body == r#"{"detail":"Forbidden"}"#
        ),
        "{err:?}"
    );
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn concurrent_rejections_renew_the_token_once() {
    let airflow = TestAirflow::start().await;
    token_mock(TOKEN)
        .up_to_n_times(1)
        .expect(1)
        .mount(&airflow.server)
        .await;
    airflow.expect_token(RENEWED_TOKEN, 1).await;
    api("GET", SMOKE_RUN_PATH, TOKEN)
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"detail": "Token Expired"})))
        .expect(2)
        .mount(&airflow.server)
        .await;
    api("GET", SMOKE_RUN_PATH, RENEWED_TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(smoke_run()))
        .expect(2)
        .mount(&airflow.server)
        .await;

    let (a, b) = tokio::join!(
        airflow.client.dag_run("platform__smoke_test", "olo-test-1"),
        airflow.client.dag_run("platform__smoke_test", "olo-test-1"),
    );

    assert_eq!(a.unwrap(), smoke_run_parsed());
    assert_eq!(b.unwrap(), smoke_run_parsed());
}

#[tokio::test]
async fn wrong_credentials_are_an_auth_error_and_nothing_else_is_sent() {
    let airflow = TestAirflow::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"detail": "Invalid credentials"})),
        )
        .expect(1)
        .mount(&airflow.server)
        .await;
    Mock::given(path_regex("^/api/"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&airflow.server)
        .await;

    let err = airflow
        .client
        .dag("platform__smoke_test")
        .await
        .unwrap_err();

    assert!(
        matches!(&err, AirflowError::Auth { username, status: 401 } if username == USERNAME),
        "{err:?}"
    );
    assert!(!err.is_temporary());
    assert_eq!(
        err.to_string(),
        "Airflow refused the credentials of user `admin` (HTTP 401)"
    );
}

#[tokio::test]
async fn password_and_token_stay_out_of_debug_output() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("GET", "/api/v2/dags/platform__smoke_test", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(smoke_dag(false)))
        .expect(1)
        .mount(&airflow.server)
        .await;
    airflow.client.dag("platform__smoke_test").await.unwrap();

    let shown = format!("{:?} {:?}", airflow.client, settings(&airflow.server.uri()));

    assert!(shown.contains("REDACTED"), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// DAG runs.

#[tokio::test]
async fn trigger_run_posts_the_run_id_a_null_logical_date_and_the_conf() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("POST", "/api/v2/dags/platform__smoke_test/dagRuns", TOKEN)
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "dag_run_id": "olo-test-1",
            "logical_date": null,
            "conf": {"greeting": "hi"}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(queued_smoke_run()))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let run = airflow
        .client
        .trigger_run(
            "platform__smoke_test",
            "olo-test-1",
            &json!({"greeting": "hi"}),
        )
        .await
        .unwrap();

    assert_eq!(
        run,
        DagRun {
            state: "queued".into(),
            start_date: None,
            end_date: None,
            ..smoke_run_parsed()
        }
    );
}

#[tokio::test]
async fn trigger_run_with_a_taken_run_id_is_a_conflict() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("POST", "/api/v2/dags/platform__smoke_test/dagRuns", TOKEN)
        .respond_with(
            ResponseTemplate::new(409).set_body_json(database_error("Unique constraint violation")),
        )
        .expect(1)
        .mount(&airflow.server)
        .await;

    let err = airflow
        .client
        .trigger_run("platform__smoke_test", "olo-test-1", &json!({}))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, AirflowError::Conflict { dag_id, run_id }
            if dag_id == "platform__smoke_test" && run_id == "olo-test-1"),
        "{err:?}"
    );
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn server_errors_and_429_are_temporary_with_the_body_truncated() {
    // What a proxy in front of Airflow answers: a large HTML page.
    let page = format!(
        "<html><body>{}</body></html>",
        "upstream unavailable ".repeat(500)
    );
    let cases = [
        (500, database_error("Database error").to_string()),
        (502, page.clone()),
        (503, page),
        (429, r#"{"detail":"Too Many Requests"}"#.to_string()),
    ];
    for (status, body) in cases {
        let airflow = TestAirflow::start().await;
        airflow.expect_token(TOKEN, 1).await;
        api("POST", "/api/v2/dags/platform__smoke_test/dagRuns", TOKEN)
            .respond_with(ResponseTemplate::new(status).set_body_string(body.clone()))
            .expect(1)
            .mount(&airflow.server)
            .await;

        let err = airflow
            .client
            .trigger_run("platform__smoke_test", "olo-test-1", &json!({}))
            .await
            .unwrap_err();

        assert!(err.is_temporary(), "{status}: {err:?}");
        let AirflowError::Status {
            operation,
            status: got,
            body: kept,
        } = &err
        else {
            panic!("{status}: {err:?}");
        };
        assert_eq!((*operation, *got), ("trigger a DAG run", status));
        assert!(
            kept.len() <= 2048 + '…'.len_utf8(),
            "{status}: {} bytes",
            kept.len()
        );
        assert!(
            body.starts_with(kept.trim_end_matches('…')),
            "{status}: {kept}"
        );
    }
}

#[tokio::test]
async fn a_timeout_is_temporary() {
    let airflow = TestAirflow::start_with(|s| s.timeout = Duration::from_millis(300)).await;
    airflow.expect_token(TOKEN, 1).await;
    api("GET", SMOKE_RUN_PATH, TOKEN)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(smoke_run())
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&airflow.server)
        .await;

    let err = airflow
        .client
        .dag_run("platform__smoke_test", "olo-test-1")
        .await
        .unwrap_err();

    assert!(
        matches!(&err, AirflowError::Transport { operation: "read a DAG run", source } if source.is_timeout()),
        "{err:?}"
    );
    assert!(err.is_temporary());
}

#[tokio::test]
async fn bad_requests_are_permanent() {
    let cases = [
        (
            400,
            json!({"detail": "Invalid input for param greeting: 42 is not of type 'string'"}),
        ),
        (
            422,
            json!({"detail": [{"type": "missing", "loc": ["body", "logical_date"], "msg": "Field required", "input": {"dag_run_id": "olo-test-1"}}]}),
        ),
    ];
    for (status, body) in cases {
        let airflow = TestAirflow::start().await;
        airflow.expect_token(TOKEN, 1).await;
        api("POST", "/api/v2/dags/platform__smoke_test/dagRuns", TOKEN)
            .respond_with(ResponseTemplate::new(status).set_body_json(&body))
            .expect(1)
            .mount(&airflow.server)
            .await;

        let err = airflow
            .client
            .trigger_run(
                "platform__smoke_test",
                "olo-test-1",
                &json!({"greeting": 42}),
            )
            .await
            .unwrap_err();

        let body = body.to_string();
        assert!(
            matches!(&err, AirflowError::Status { status: got, body: kept, .. }
                if *got == status && *kept == body),
            "{err:?}"
        );
        assert!(!err.is_temporary(), "{status}");
    }
}

#[tokio::test]
async fn unknown_run_is_not_found_and_permanent() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    let detail = json!({"detail": "The DagRun with dag_id: `platform__smoke_test` and run_id: `olo-test-9` was not found"});
    let detail_text = detail.to_string();
    api(
        "GET",
        "/api/v2/dags/platform__smoke_test/dagRuns/olo-test-9",
        TOKEN,
    )
    .respond_with(ResponseTemplate::new(404).set_body_json(&detail))
    .expect(1)
    .mount(&airflow.server)
    .await;

    let err = airflow
        .client
        .dag_run("platform__smoke_test", "olo-test-9")
        .await
        .unwrap_err();

    assert!(
        matches!(&err, AirflowError::NotFound { operation: "read a DAG run", body } if *body == detail_text),
        "{err:?}"
    );
    assert!(!err.is_temporary());
}

// ---------------------------------------------------------------------------------------------
// Ids in URLs.

#[tokio::test]
async fn ids_are_percent_encoded_as_single_path_segments() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api(
        "GET",
        "/api/v2/dags/sales%2F..%2Fadmin/dagRuns/manual%20run%2F..%2F..%2Fetc%3Fx%23y",
        TOKEN,
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(smoke_run()))
    .expect(1)
    .mount(&airflow.server)
    .await;
    // What Airflow names scheduled runs: `:` and `+` are fine in a path segment.
    api(
        "GET",
        "/api/v2/dags/sales__orders_daily/dagRuns/scheduled__2026-11-26T03:00:00+00:00/taskInstances/load%20orders/logs/2",
        TOKEN,
    )
    .respond_with(
        ResponseTemplate::new(200).set_body_json(json!({"content": [], "continuation_token": null})),
    )
    .expect(1)
    .mount(&airflow.server)
    .await;

    airflow
        .client
        .dag_run("sales/../admin", "manual run/../../etc?x#y")
        .await
        .unwrap();
    airflow
        .client
        .task_log(
            "sales__orders_daily",
            "scheduled__2026-11-26T03:00:00+00:00",
            "load orders",
            2,
            -1,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn dot_segment_ids_are_refused_without_a_request() {
    let airflow = TestAirflow::start().await;
    Mock::given(path_regex(".*"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&airflow.server)
        .await;

    for (dag_id, run_id) in [
        ("sales", ".."),
        ("..", "olo-test-1"),
        ("sales", "."),
        ("sales", ""),
    ] {
        let err = airflow.client.dag_run(dag_id, run_id).await.unwrap_err();
        assert!(
            matches!(&err, AirflowError::UnaddressableId { id, .. } if id == dag_id || id == run_id),
            "{dag_id:?} {run_id:?}: {err:?}"
        );
        assert!(!err.is_temporary());
    }
}

#[tokio::test]
async fn a_path_prefix_in_the_base_url_is_kept() {
    let server = MockServer::start().await;
    let client = AirflowClient::new(settings(&format!("{}/airflow/", server.uri()))).unwrap();
    Mock::given(method("POST"))
        .and(path("/airflow/auth/token"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"access_token": TOKEN})))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", "/airflow/api/v2/dags/platform__smoke_test", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(smoke_dag(true)))
        .expect(1)
        .mount(&server)
        .await;

    assert!(client.dag("platform__smoke_test").await.unwrap().is_some());
}

#[test]
fn a_base_url_that_is_not_http_is_refused() {
    for url in ["mailto:airflow@example.com", "ftp://127.0.0.1:8080"] {
        let err = AirflowClient::new(settings(url)).unwrap_err();
        assert!(matches!(err, AirflowError::BaseUrl(_)), "{url}: {err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// DAGs and import errors.

#[tokio::test]
async fn dag_reads_what_airflow_parsed() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("GET", "/api/v2/dags/platform__smoke_test", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(smoke_dag(true)))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let dag = airflow.client.dag("platform__smoke_test").await.unwrap();

    assert_eq!(
        dag,
        Some(Dag {
            dag_id: "platform__smoke_test".into(),
            is_paused: true,
            last_parsed_time: time("2026-11-26T23:05:52.567686Z"),
            relative_fileloc: Some("platform__smoke_test.py".into()),
        })
    );
}

#[tokio::test]
async fn unknown_dag_is_none() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("GET", "/api/v2/dags/sales__orders_weekly", TOKEN)
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"detail": "The Dag with ID: `sales__orders_weekly` was not found"}),
        ))
        .expect(1)
        .mount(&airflow.server)
        .await;

    assert_eq!(
        airflow.client.dag("sales__orders_weekly").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn set_paused_patches_is_paused() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    for paused in [false, true] {
        api("PATCH", "/api/v2/dags/platform__smoke_test", TOKEN)
            .and(header("content-type", "application/json"))
            .and(body_json(json!({"is_paused": paused})))
            .respond_with(ResponseTemplate::new(200).set_body_json(smoke_dag(paused)))
            .expect(1)
            .mount(&airflow.server)
            .await;
    }

    airflow
        .client
        .set_paused("platform__smoke_test", false)
        .await
        .unwrap();
    airflow
        .client
        .set_paused("platform__smoke_test", true)
        .await
        .unwrap();
}

#[tokio::test]
async fn import_errors_are_read_across_pages() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    let missing_module = "Traceback (most recent call last):\n  File \"<frozen importlib._bootstrap>\", line 241, in _call_with_frames_removed\n  File \"/tmp/olo-airflow/dags/sales__orders_daily.py\", line 7, in <module>\n    import pandas_extras\nModuleNotFoundError: No module named 'pandas_extras'\n";
    let syntax = "Traceback (most recent call last):\n  File \"/tmp/olo-airflow/dags/marketing__campaign_report.py\", line 12\n    task = BashOperator(\n                       ^\nSyntaxError: '(' was never closed\n";
    let cycle = "Traceback (most recent call last):\nairflow.exceptions.AirflowDagCycleException: Cycle detected in Dag: platform__smoke_test. Faulty task: check\n";
    // Airflow caps `limit` at its `maximum_page_limit`: here it sends 2 of 3 on the first page.
    api("GET", "/api/v2/importErrors", TOKEN)
        .and(query_param("limit", "100"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "import_errors": [
                import_error(1, "sales__orders_daily.py", missing_module),
                import_error(2, "marketing__campaign_report.py", syntax),
            ],
            "total_entries": 3
        })))
        .expect(1)
        .mount(&airflow.server)
        .await;
    api("GET", "/api/v2/importErrors", TOKEN)
        .and(query_param("limit", "100"))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "import_errors": [import_error(3, "platform__smoke_test.py", cycle)],
            "total_entries": 3
        })))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let errors = airflow.client.import_errors().await.unwrap();

    let expected = |filename: &str, stack_trace: &str| ImportError {
        filename: filename.into(),
        stack_trace: stack_trace.into(),
        timestamp: time("2026-11-26T23:31:07.410521Z"),
    };
    assert_eq!(
        errors,
        vec![
            expected("sales__orders_daily.py", missing_module),
            expected("marketing__campaign_report.py", syntax),
            expected("platform__smoke_test.py", cycle),
        ]
    );
}

#[tokio::test]
async fn no_import_errors_is_one_request() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("GET", "/api/v2/importErrors", TOKEN)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"import_errors": [], "total_entries": 0})),
        )
        .expect(1)
        .mount(&airflow.server)
        .await;

    assert_eq!(airflow.client.import_errors().await.unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// Task instances and logs.

#[tokio::test]
async fn task_instances_are_read_across_pages() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    let hello = (
        "2026-11-26T23:05:24.556246Z",
        "2026-11-26T23:05:24.628120Z",
        0.072,
    );
    let platform = (
        "2026-11-26T23:05:25.591693Z",
        "2026-11-26T23:05:25.720339Z",
        0.128,
    );
    let check = (
        "2026-11-26T23:05:26.787956Z",
        "2026-11-26T23:05:26.910024Z",
        0.122,
    );
    let page = |task_instances: Vec<Value>| {
        json!({
            "task_instances": task_instances, "total_entries": 3,
            "total_entries_limit": null, "next_cursor": null, "previous_cursor": null
        })
    };
    let run_path = format!("{SMOKE_RUN_PATH}/taskInstances");
    api("GET", &run_path, TOKEN)
        .and(query_param("limit", "100"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![
            smoke_task_instance("hello", "BashOperator", hello),
            smoke_task_instance("python_platform", "PythonOperator", platform),
        ])))
        .expect(1)
        .mount(&airflow.server)
        .await;
    api("GET", &run_path, TOKEN)
        .and(query_param("limit", "100"))
        .and(query_param("offset", "2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(page(vec![smoke_task_instance(
                "check",
                "BashOperator",
                check,
            )])),
        )
        .expect(1)
        .mount(&airflow.server)
        .await;

    let tasks = airflow
        .client
        .task_instances("platform__smoke_test", "olo-test-1")
        .await
        .unwrap();

    let expected = |task_id: &str, (start, end, duration): (&str, &str, f64)| TaskInstance {
        task_id: task_id.into(),
        map_index: -1,
        try_number: 1,
        state: Some("success".into()),
        start_date: time(start),
        end_date: time(end),
        duration: Some(duration),
    };
    assert_eq!(
        tasks,
        vec![
            expected("hello", hello),
            expected("python_platform", platform),
            expected("check", check),
        ]
    );
}

#[tokio::test]
async fn task_log_joins_events_in_order_across_continuation_pages() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    let log_path = format!("{SMOKE_RUN_PATH}/taskInstances/check/logs/1");
    let continuation = "eyJkb3dubG9hZF9sb2dzIjp0cnVlLCJlbmRfb2ZfbG9nIjpmYWxzZSwibG9nX3BvcyI6M30.Wb0yQxR2mE7Lk3c5Jt1nVhA9sPf";
    let hook = "airflow.task.hooks.airflow.providers.standard.hooks.subprocess.SubprocessHook";
    api("GET", &log_path, TOKEN)
        .and(query_param("full_content", "true"))
        .and(query_param("map_index", "-1"))
        .and(query_param_is_missing("token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "content": [
                {"event": "::group::Log message source details"},
                {"event": "/tmp/olo-airflow/home/logs/dag_id=platform__smoke_test/run_id=olo-test-1/task_id=check/attempt=1.log"},
                {"event": "::endgroup::"},
                log_event("2026-11-26T23:05:26.878559Z", "Running command: ['/usr/bin/bash', '-c', 'test \"$SMOKE_MARKER\" = ok && echo \"smoke test passed\"']", hook),
                log_event("2026-11-26T23:05:26.883894Z", "Output:", hook),
            ],
            "continuation_token": continuation
        })))
        .expect(1)
        .mount(&airflow.server)
        .await;
    api("GET", &log_path, TOKEN)
        .and(query_param("full_content", "true"))
        .and(query_param("map_index", "-1"))
        .and(query_param("token", continuation))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "content": [
                log_event("2026-11-26T23:05:26.887126Z", "smoke test passed", hook),
                log_event("2026-11-26T23:05:26.887871Z", "Command exited with return code 0", hook),
            ],
            "continuation_token": null
        })))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let log = airflow
        .client
        .task_log("platform__smoke_test", "olo-test-1", "check", 1, -1)
        .await
        .unwrap();

    assert_eq!(
        log,
        "::group::Log message source details\n\
         /tmp/olo-airflow/home/logs/dag_id=platform__smoke_test/run_id=olo-test-1/task_id=check/attempt=1.log\n\
         ::endgroup::\n\
         2026-11-26T23:05:26.878559Z INFO Running command: ['/usr/bin/bash', '-c', 'test \"$SMOKE_MARKER\" = ok && echo \"smoke test passed\"']\n\
         2026-11-26T23:05:26.883894Z INFO Output:\n\
         2026-11-26T23:05:26.887126Z INFO smoke test passed\n\
         2026-11-26T23:05:26.887871Z INFO Command exited with return code 0\n"
    );
}

#[tokio::test]
async fn task_log_of_a_running_task_stops_at_an_empty_page() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    let log_path = "/api/v2/dags/sales__orders_daily/dagRuns/olo-42/taskInstances/ingest/logs/1";
    // While the task runs, every page hands out a token.
    api("GET", log_path, TOKEN)
        .and(query_param("map_index", "3"))
        .and(query_param_is_missing("token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "content": [{"timestamp": "2026-11-26T23:05:14.700311Z", "event": "Task instance is in running state", "level": "info", "logger": "task"}],
            "continuation_token": "eyJlbmRfb2ZfbG9nIjpmYWxzZSwibG9nX3BvcyI6MX0.aaa"
        })))
        .expect(1)
        .mount(&airflow.server)
        .await;
    api("GET", log_path, TOKEN)
        .and(query_param("map_index", "3"))
        .and(query_param(
            "token",
            "eyJlbmRfb2ZfbG9nIjpmYWxzZSwibG9nX3BvcyI6MX0.aaa",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "content": [],
            "continuation_token": "eyJlbmRfb2ZfbG9nIjpmYWxzZSwibG9nX3BvcyI6MX0.aaa"
        })))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let log = within_seconds(
        5,
        airflow
            .client
            .task_log("sales__orders_daily", "olo-42", "ingest", 1, 3),
    )
    .await
    .unwrap();

    assert_eq!(
        log,
        "2026-11-26T23:05:14.700311Z INFO Task instance is in running state\n"
    );
}

#[tokio::test]
async fn task_log_of_a_task_logging_faster_than_it_is_read_stops_after_100_pages() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api(
        "GET",
        "/api/v2/dags/sales__orders_daily/dagRuns/olo-42/taskInstances/ingest/logs/1",
        TOKEN,
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({
        "content": [{"timestamp": "2026-11-26T23:05:14.700311Z", "event": "rows written: 1000", "level": "info", "logger": "task.stdout"}],
        "continuation_token": "eyJlbmRfb2ZfbG9nIjpmYWxzZSwibG9nX3BvcyI6MX0.aaa"
    })))
    .expect(100)
    .mount(&airflow.server)
    .await;

    let log = within_seconds(
        10,
        airflow
            .client
            .task_log("sales__orders_daily", "olo-42", "ingest", 1, -1),
    )
    .await
    .unwrap();

    assert_eq!(log.lines().count(), 100);
}

/// `future`'s output, failing the test instead of hanging it.
async fn within_seconds<T>(seconds: u64, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .expect("finished in time")
}

#[tokio::test]
async fn task_log_shows_an_exception_as_a_traceback() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    let site = "/root/.cache/olo/venv-airflow/lib/python3.11/site-packages/airflow";
    let frame = |file: &str, lineno: i64, name: &str| json!({"filename": format!("{site}/{file}"), "lineno": lineno, "name": name});
    api(
        "GET",
        "/api/v2/dags/sales__orders_daily/dagRuns/scheduled__2026-11-26T03:00:00+00:00/taskInstances/ingest/logs/1",
        TOKEN,
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({
        "content": [{
            "timestamp": "2026-11-26T23:05:17.285323Z", "event": "Task failed with exception",
            "level": "error", "dag_id": "sales__orders_daily", "map_index": -1,
            "task_id": "ingest", "ti_id": "01a21a1b-1ddc-7457-a7f6-de07bf493dc0",
            "try_number": 1, "run_id": "scheduled__2026-11-26T03:00:00+00:00", "logger": "task",
            "filename": "task_runner.py", "lineno": 1676,
            "error_detail": [{
                "exc_type": "FileNotFoundError",
                "exc_value": "[Errno 2] No such file or directory: 'spark-submit'",
                "exc_notes": [], "syntax_error": null, "is_cause": false,
                "frames": [
                    frame("sdk/execution_time/task_runner.py", 1579, "_run_task_and_map_outcome"),
                    frame("providers/apache/spark/operators/spark_submit.py", 469, "execute"),
                    frame("providers/apache/spark/hooks/spark_submit.py", 846, "submit"),
                ],
                "is_group": false, "exceptions": []
            }]
        }],
        "continuation_token": null
    })))
    .expect(1)
    .mount(&airflow.server)
    .await;

    let log = airflow
        .client
        .task_log(
            "sales__orders_daily",
            "scheduled__2026-11-26T03:00:00+00:00",
            "ingest",
            1,
            -1,
        )
        .await
        .unwrap();

    assert_eq!(
        log,
        format!(
            "2026-11-26T23:05:17.285323Z ERROR Task failed with exception\n\
             Traceback (most recent call last):\n  \
             File \"{site}/sdk/execution_time/task_runner.py\", line 1579, in _run_task_and_map_outcome\n  \
             File \"{site}/providers/apache/spark/operators/spark_submit.py\", line 469, in execute\n  \
             File \"{site}/providers/apache/spark/hooks/spark_submit.py\", line 846, in submit\n\
             FileNotFoundError: [Errno 2] No such file or directory: 'spark-submit'\n"
        )
    );
}
