//! DAG runs: triggering and reading them, and how errors are classified (temporary, permanent, conflict, not found).

use olo_reconciler::targets::airflow::Airflow;
use olo_reconciler::targets::airflow::AirflowError;
use olo_reconciler::targets::airflow::DagRun;
use olo_reconciler::targets::airflow::NewDagRun;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::body_json;
use wiremock::matchers::header;
use wiremock::ResponseTemplate;

use super::fixtures::*;
use super::support::*;

#[tokio::test]
async fn trigger_run_posts_the_run_id_the_logical_date_the_conf_and_the_note() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("POST", "/api/v2/dags/platform__smoke_test/dagRuns", TOKEN)
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "dag_run_id": "olo-test-1",
            "logical_date": "2026-03-01T00:00:00.000000Z",
            "conf": {"greeting": "hi"},
            "note": "re-run after the fix"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(queued_smoke_run()))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let run = airflow
        .client
        .trigger_run(
            "platform__smoke_test",
            &NewDagRun {
                note: Some("re-run after the fix"),
                ..new_run(&json!({"greeting": "hi"}))
            },
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
async fn cancel_run_patches_the_run_to_failed_with_a_note() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    let mut failed = smoke_run();
    failed["state"] = json!("failed");
    api("PATCH", SMOKE_RUN_PATH, TOKEN)
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"state": "failed", "note": "cancelled through olo by ci-bot"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(failed))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let run = airflow
        .client
        .cancel_run(
            "platform__smoke_test",
            "olo-test-1",
            "cancelled through olo by ci-bot",
        )
        .await
        .unwrap();

    assert_eq!(run.state, "failed");
    assert_eq!(run.dag_run_id, "olo-test-1");
}

#[tokio::test]
async fn clear_failed_tasks_posts_a_real_clear_of_the_failed_tasks_only() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    let mut queued = smoke_run();
    queued["state"] = json!("queued");
    api("POST", &format!("{SMOKE_RUN_PATH}/clear"), TOKEN)
        .and(body_json(
            json!({"dry_run": false, "only_failed": true, "note": "n"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(queued))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let run = airflow
        .client
        .clear_failed_tasks("platform__smoke_test", "olo-test-1", "n")
        .await
        .unwrap();

    assert_eq!(run.state, "queued");
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
        .trigger_run("platform__smoke_test", &new_run(&json!({})))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, AirflowError::Conflict { dag_id, run_id, .. }
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
            .trigger_run("platform__smoke_test", &new_run(&json!({})))
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
            .trigger_run("platform__smoke_test", &new_run(&json!({"greeting": 42})))
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

#[tokio::test]
async fn create_backfill_posts_the_range_the_conf_and_how_to_treat_runs_that_exist() {
    use olo_reconciler::targets::airflow::{NewBackfill, Reprocess};
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    // Every field of BackfillPostBody olo sets (the spec forbids any other).
    api("POST", "/api/v2/backfills", TOKEN)
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "dag_id": "e2e__daily",
            "from_date": "2026-02-01T00:00:00.000000Z",
            "to_date": "2026-02-02T00:00:00.000000Z",
            "run_backwards": false,
            "dag_run_conf": {"greeting": "backfilled"},
            "reprocess_behavior": "failed",
            "max_active_runs": 2
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(daily_backfill()))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let backfill = airflow
        .client
        .create_backfill(
            "e2e__daily",
            &NewBackfill {
                from: time("2026-02-01T00:00:00Z").unwrap(),
                to: time("2026-02-02T00:00:00Z").unwrap(),
                conf: &json!({"greeting": "backfilled"}),
                reprocess: Reprocess::Failed,
                max_active_runs: 2,
                run_backwards: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(backfill.id, 1);
    assert_eq!(backfill.reprocess_behavior, Reprocess::None);
    assert_eq!(backfill.from_date, time("2026-02-01T00:00:00Z").unwrap());
}

#[tokio::test]
async fn a_second_backfill_of_a_dag_is_a_409_with_airflows_reason() {
    use olo_reconciler::targets::airflow::{NewBackfill, Reprocess};
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("POST", "/api/v2/backfills", TOKEN)
        .respond_with(ResponseTemplate::new(409).set_body_json(
            json!({"detail": "There is already a running backfill for dag e2e__daily"}),
        ))
        .mount(&airflow.server)
        .await;
    let err = airflow
        .client
        .create_backfill(
            "e2e__daily",
            &NewBackfill {
                from: time("2026-02-01T00:00:00Z").unwrap(),
                to: time("2026-02-02T00:00:00Z").unwrap(),
                conf: &json!({}),
                reprocess: Reprocess::None,
                max_active_runs: 1,
                run_backwards: false,
            },
        )
        .await
        .unwrap_err();
    match err {
        AirflowError::Status { status, body, .. } => {
            assert_eq!(status, 409);
            assert!(body.contains("already a running backfill"), "{body}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn backfill_runs_lists_the_backfill_runs_of_the_range_every_page() {
    use wiremock::matchers::query_param;
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("GET", "/api/v2/dags/e2e__daily/dagRuns", TOKEN)
        .and(query_param("run_type", "backfill"))
        .and(query_param(
            "logical_date_gte",
            "2026-02-01T00:00:00.000000Z",
        ))
        .and(query_param(
            "logical_date_lte",
            "2026-02-02T00:00:00.000000Z",
        ))
        .and(query_param("order_by", "logical_date"))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "dag_runs": [backfill_run("2026-02-01"), backfill_run("2026-02-02")],
            "total_entries": 2, "total_entries_limit": null,
            "next_cursor": null, "previous_cursor": null
        })))
        .expect(1)
        .mount(&airflow.server)
        .await;
    let runs = airflow
        .client
        .backfill_runs(
            "e2e__daily",
            time("2026-02-01T00:00:00Z").unwrap(),
            time("2026-02-02T00:00:00Z").unwrap(),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.dag_run_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "backfill__2026-02-01T00:00:00+00:00",
            "backfill__2026-02-02T00:00:00+00:00"
        ]
    );
    assert_eq!(runs[1].logical_date, time("2026-02-02T00:00:00Z"));
}
