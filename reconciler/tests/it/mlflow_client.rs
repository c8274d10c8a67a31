//! The MLflow client against a fake MLflow (wiremock) following MLflow's REST API 2.0
//! (`experiments/get-by-name`, `runs/search`): the requests it sends and how it reads the
//! answers. tests/airflow_e2e/ drives the same client against a real MLflow server.

use std::time::Duration;

use olo_reconciler::targets::mlflow::{Mlflow, MlflowClient, MlflowError};
use serde_json::json;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const RUN: &str = "manual__2026-11-27T04:30:00.123456+00:00";

async fn client(server: &MockServer) -> MlflowClient {
    MlflowClient::new(
        &format!("{}/mlflow/", server.uri()),
        Some("https://mlflow.example.com"),
        Duration::from_secs(2),
    )
    .unwrap()
}

fn experiment(id: &str, name: &str) -> serde_json::Value {
    json!({"experiment": {"experiment_id": id, "name": name, "artifact_location": "mlflow-artifacts:/1",
        "lifecycle_stage": "active", "last_update_time": 1764217800000i64, "creation_time": 1764217800000i64}})
}

#[tokio::test]
async fn runs_are_searched_by_tag_in_each_declared_experiment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/mlflow/api/2.0/mlflow/experiments/get-by-name"))
        .and(query_param("experiment_name", "sales forecast"))
        .respond_with(ResponseTemplate::new(200).set_body_json(experiment("7", "sales forecast")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/mlflow/api/2.0/mlflow/experiments/get-by-name"))
        .and(query_param("experiment_name", "never-created"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error_code": "RESOURCE_DOES_NOT_EXIST",
            "message": "Could not find experiment with name 'never-created'"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/mlflow/api/2.0/mlflow/runs/search"))
        .and(body_json(json!({
            "experiment_ids": ["7"],
            "filter": format!("tags.`olo.run_id` = '{RUN}'"),
            "max_results": 50,
            "order_by": ["attributes.start_time DESC"],
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"runs": [
            {"info": {"run_id": "a1", "run_name": "train", "experiment_id": "7", "status": "FINISHED",
                      "start_time": 1764217800000i64, "end_time": 1764217860000i64, "lifecycle_stage": "active"},
             "data": {"metrics": [{"key": "rmse", "value": 1.5, "timestamp": 1764217850000i64, "step": 0}],
                      "tags": [{"key": "olo.run_id", "value": RUN}]}},
            {"info": {"run_id": "b2", "experiment_id": "7", "status": "RUNNING",
                      "start_time": 1764217900000i64, "lifecycle_stage": "active"},
             "data": {}}
        ]})))
        .expect(1)
        .mount(&server)
        .await;

    let runs = client(&server)
        .await
        .runs_for(RUN, &["sales forecast".into(), "never-created".into()])
        .await
        .unwrap();
    let got: Vec<(&str, &str, Option<&str>)> = runs
        .iter()
        .map(|r| (r.run_id.as_str(), r.status.as_str(), r.run_name.as_deref()))
        .collect();
    // Newest first.
    assert_eq!(
        got,
        [("b2", "RUNNING", None), ("a1", "FINISHED", Some("train"))]
    );
    assert_eq!(runs[1].metrics, vec![("rmse".to_string(), 1.5)]);
    assert_eq!(runs[1].experiment, "sales forecast");
    assert_eq!(
        runs[1].url,
        "https://mlflow.example.com/#/experiments/7/runs/a1"
    );
}

#[tokio::test]
async fn no_experiments_or_an_unquotable_id_ask_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let c = client(&server).await;
    assert!(c.runs_for(RUN, &[]).await.unwrap().is_empty());
    assert!(c
        .runs_for("x' OR '1'='1", &["e".into()])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn errors_say_whether_to_retry() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/mlflow/api/2.0/mlflow/experiments/get-by-name"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .mount(&server)
        .await;
    let err = client(&server)
        .await
        .runs_for(RUN, &["e".into()])
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(err.to_string().contains("HTTP 503"), "{err}");

    let refused = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_string("forbidden"))
        .mount(&refused)
        .await;
    let err = client(&refused)
        .await
        .runs_for(RUN, &["e".into()])
        .await
        .unwrap_err();
    assert!(!err.is_temporary(), "{err}");

    // Nothing listens: a transport error, temporary.
    let dead = MlflowClient::new("http://127.0.0.1:9", None, Duration::from_secs(2)).unwrap();
    let err = dead.runs_for(RUN, &["e".into()]).await.unwrap_err();
    assert!(matches!(err, MlflowError::Transport { .. }), "{err}");
    assert!(err.is_temporary());

    assert!(matches!(
        MlflowClient::new("ftp://x", None, Duration::from_secs(1)),
        Err(MlflowError::BaseUrl(_))
    ));
}
