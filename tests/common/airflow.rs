//! The running Apache Airflow that scripts/test.sh starts (`OLO_TEST_AIRFLOW_*`), read through
//! its own REST API: tests that need it fail without it, they never skip.

use serde_json::{json, Value};

/// A variable scripts/test.sh sets.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh, which starts Airflow")
    })
}

/// This test's own sub-folder of the running Airflow's DAG folder (`OLO_TEST_AIRFLOW_DAGS`),
/// emptied of what an earlier run left: the test's olo applies to it with a new state store,
/// and olo refuses to start on an empty store beside files it rendered before (another test's,
/// or this test's last run). Airflow reads the DAG folder's sub-folders too; DAG ids stay unique
/// across tests.
pub fn own_dag_folder(test: &str) -> String {
    let folder = std::path::Path::new(&env("OLO_TEST_AIRFLOW_DAGS")).join(test);
    match std::fs::remove_dir_all(&folder) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            panic!("could not empty {}: {e}", folder.display())
        }
        _ => {}
    }
    std::fs::create_dir_all(&folder).unwrap();
    folder.display().to_string()
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
