//! The running Apache Airflow that scripts/test.sh starts (`OLO_TEST_AIRFLOW_*`), read through
//! its own REST API: tests that need it fail without it, they never skip.

use serde_json::{json, Value};

/// A variable scripts/test.sh sets.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh, which starts Airflow")
    })
}

/// `GET <airflow>/api/v2/<path>` as Airflow's admin (a JWT from `/auth/token` first).
pub async fn get(airflow: &str, password: &str, path: &str) -> Value {
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{airflow}/auth/token"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.get(format!("{airflow}/api/v2/{path}"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
