//! Task instances and logs.

use olo_reconciler::targets::airflow::Airflow;
use olo_reconciler::targets::airflow::TaskInstance;
use serde_json::json;
use serde_json::Value;
use std::time::Duration;
use wiremock::matchers::query_param;
use wiremock::matchers::query_param_is_missing;
use wiremock::ResponseTemplate;

use super::fixtures::*;
use super::support::*;

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
