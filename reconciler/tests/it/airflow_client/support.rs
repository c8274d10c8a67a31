//! The harness: a fake Airflow and a client pointed at it.

use chrono::DateTime;
use chrono::Utc;
use olo_reconciler::targets::airflow::AirflowClient;
use olo_reconciler::targets::airflow::AirflowSettings;
use secrecy::SecretString;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::bearer_token;
use wiremock::matchers::body_json;
use wiremock::matchers::header;
use wiremock::matchers::method;
use wiremock::matchers::path;
use wiremock::Mock;
use wiremock::MockServer;
use wiremock::ResponseTemplate;

pub(crate) const USERNAME: &str = "admin";
pub(crate) const PASSWORD: &str = "vQ3xT8mKp2ZrHs7d";
pub(crate) const TOKEN: &str = "eyJhbGciOiJIUzUxMiIsImtpZCI6Im5vdC11c2VkIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiIsImF1ZCI6ImFwYWNoZS1haXJmbG93IiwiZXhwIjoxNzk1NzM4NTU5fQ.6LCavW4STJ53UptWfDluBfrWlfRLDhNBDm3C63OC6En";
pub(crate) const RENEWED_TOKEN: &str = "eyJhbGciOiJIUzUxMiIsImtpZCI6Im5vdC11c2VkIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiIsImF1ZCI6ImFwYWNoZS1haXJmbG93IiwiZXhwIjoxNzk1NzQyMTU5fQ.Qm9kFWq1nT0xLrYc8vZp3sHd2uJe7gA5iKo4wBtMfXy";

pub(crate) struct TestAirflow {
    pub(crate) server: MockServer,
    pub(crate) client: AirflowClient,
}

impl TestAirflow {
    pub(crate) async fn start() -> TestAirflow {
        TestAirflow::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(adjust: impl FnOnce(&mut AirflowSettings)) -> TestAirflow {
        let server = MockServer::start().await;
        let mut settings = settings(&server.uri());
        adjust(&mut settings);
        let client = AirflowClient::new(settings).expect("valid settings");
        TestAirflow { server, client }
    }

    /// Airflow hands out `token`, exactly `times` times, for the right credentials only.
    pub(crate) async fn expect_token(&self, token: &str, times: u64) {
        token_mock(token).expect(times).mount(&self.server).await;
    }
}

pub(crate) fn settings(url: &str) -> AirflowSettings {
    AirflowSettings {
        url: url.parse().expect("a URL"),
        username: USERNAME.to_string(),
        password: SecretString::from(PASSWORD),
        timeout: Duration::from_secs(10),
    }
}

pub(crate) fn token_mock(token: &str) -> Mock {
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"username": USERNAME, "password": PASSWORD}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"access_token": token})))
}

/// A request to the API with `token`, asking for JSON.
pub(crate) fn api(verb: &str, raw_path: &str, token: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(raw_path))
        .and(bearer_token(token))
        .and(header("accept", "application/json"))
}

pub(crate) fn time(s: &str) -> Option<DateTime<Utc>> {
    Some(s.parse().expect("an RFC 3339 time"))
}
