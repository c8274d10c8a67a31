//! Ids in URLs: percent-encoding, dot segments, a path prefix in the base URL.

use olo_reconciler::targets::airflow::Airflow;
use olo_reconciler::targets::airflow::AirflowClient;
use olo_reconciler::targets::airflow::AirflowError;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::matchers::path;
use wiremock::matchers::path_regex;
use wiremock::Mock;
use wiremock::MockServer;
use wiremock::ResponseTemplate;

use super::fixtures::*;
use super::support::*;

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
