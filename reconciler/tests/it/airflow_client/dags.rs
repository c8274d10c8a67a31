//! DAGs and import errors.

use olo_reconciler::targets::airflow::Airflow;
use olo_reconciler::targets::airflow::AirflowError;
use olo_reconciler::targets::airflow::Dag;
use olo_reconciler::targets::airflow::ImportError;
use serde_json::json;
use wiremock::matchers::body_json;
use wiremock::matchers::header;
use wiremock::matchers::query_param;
use wiremock::ResponseTemplate;

use super::fixtures::*;
use super::support::*;

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
            file_token: Some(SMOKE_FILE_TOKEN.into()),
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

/// `reparse_dag_file` in the published spec: `PUT /api/v2/parseDagFile/{file_token}`, no body,
/// `201` with an empty JSON schema (Airflow 3.3.2 answers `null`); 404 when the token does not
/// name a file it knows.
#[tokio::test]
async fn reparse_puts_the_file_token_of_the_dag() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("GET", "/api/v2/dags/platform__smoke_test", TOKEN)
        .respond_with(ResponseTemplate::new(200).set_body_json(smoke_dag(false)))
        .expect(1)
        .mount(&airflow.server)
        .await;
    api(
        "PUT",
        &format!("/api/v2/parseDagFile/{SMOKE_FILE_TOKEN}"),
        TOKEN,
    )
    .respond_with(ResponseTemplate::new(201).set_body_json(json!(null)))
    .expect(1)
    .mount(&airflow.server)
    .await;

    let dag = airflow.client.dag("platform__smoke_test").await.unwrap();
    let token = dag.and_then(|d| d.file_token).expect("a file token");
    airflow.client.reparse_dag_file(&token).await.unwrap();

    let requests = airflow.server.received_requests().await.unwrap();
    let put = requests
        .iter()
        .find(|r| r.method.as_str() == "PUT")
        .unwrap();
    assert_eq!(put.body, b"", "the request has no body");
}

#[tokio::test]
async fn reparse_of_an_unknown_file_is_not_found_and_permanent() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api("PUT", "/api/v2/parseDagFile/not-a-token", TOKEN)
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "File not found"})))
        .expect(1)
        .mount(&airflow.server)
        .await;

    let err = airflow
        .client
        .reparse_dag_file("not-a-token")
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            AirflowError::NotFound {
                operation: "ask Airflow to parse a DAG file",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn reparse_refused_by_a_busy_airflow_is_temporary() {
    let airflow = TestAirflow::start().await;
    airflow.expect_token(TOKEN, 1).await;
    api(
        "PUT",
        &format!("/api/v2/parseDagFile/{SMOKE_FILE_TOKEN}"),
        TOKEN,
    )
    .respond_with(ResponseTemplate::new(500).set_body_json(database_error("database is locked")))
    .expect(1)
    .mount(&airflow.server)
    .await;

    let err = airflow
        .client
        .reparse_dag_file(SMOKE_FILE_TOKEN)
        .await
        .unwrap_err();

    assert!(err.is_temporary(), "{err:?}");
}
