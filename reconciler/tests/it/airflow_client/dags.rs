//! DAGs and import errors.

use olo_reconciler::targets::airflow::Airflow;
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
