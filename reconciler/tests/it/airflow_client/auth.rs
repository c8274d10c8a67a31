//! Authentication: the token, its renewal, wrong credentials, secrets out of `Debug`.

use olo_reconciler::targets::airflow::Airflow;
use olo_reconciler::targets::airflow::AirflowError;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::matchers::path;
use wiremock::matchers::path_regex;
use wiremock::Mock;
use wiremock::ResponseTemplate;

use super::fixtures::*;
use super::support::*;

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
