//! The running Apache Airflow that scripts/test.sh starts (`OLO_TEST_AIRFLOW_*`), read through
//! its own REST API: tests that need it fail without it, they never skip.

use serde_json::{json, Value};

/// A variable scripts/test.sh sets.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh, which starts Airflow")
    })
}

/// A JWT for Airflow's admin, from `POST /auth/token`.
async fn admin_token(http: &reqwest::Client, airflow: &str, password: &str) -> String {
    let token: Value = http
        .post(format!("{airflow}/auth/token"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_string()
}

/// `GET <airflow>/api/v2/<path>` as Airflow's admin (a JWT from `/auth/token` first).
pub async fn get(airflow: &str, password: &str, path: &str) -> Value {
    let http = reqwest::Client::new();
    let token = admin_token(&http, airflow, password).await;
    http.get(format!("{airflow}/api/v2/{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `POST <airflow>/api/v2/<path>` as Airflow's admin: the status and the body (null if not JSON).
#[allow(dead_code)]
pub async fn post(airflow: &str, password: &str, path: &str, body: Value) -> (u16, Value) {
    let http = reqwest::Client::new();
    let token = admin_token(&http, airflow, password).await;
    let r = http
        .post(format!("{airflow}/api/v2/{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}
