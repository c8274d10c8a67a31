//! The service scripts' `pause` (what `scripts/local-stack.sh` does on Ctrl-C): a paused service
//! keeps its folder and the next `start` carries on with its data; `stop` deletes it, and a start
//! after that begins empty. Tried on MLflow (a real tracking server from the cached venv of
//! `scripts/python-env.sh mlflow`, which `scripts/test.sh` makes); `airflow.sh`, `lakehouse.sh`
//! and `trino.sh` keep their folders the same way.

use std::path::Path;
use std::process::Command;

fn mlflow(verb: &str, dir: &Path) -> (bool, String) {
    let out = Command::new("scripts/mlflow.sh")
        .arg(verb)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OLO_MLFLOW_DIR", dir)
        .env("OLO_MLFLOW_PORT", "28190")
        .output()
        .expect("scripts/mlflow.sh runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

async fn experiment(http: &reqwest::Client, url: &str, name: &str) -> u16 {
    http.get(format!(
        "{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"
    ))
    .send()
    .await
    .unwrap()
    .status()
    .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_service_carries_on_from_its_folder_and_a_stopped_one_starts_empty() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("mlflow");
    let http = reqwest::Client::new();
    let (ok, url) = mlflow("start", &dir);
    assert!(ok && url.starts_with("http://127.0.0.1:"), "{url}");
    let created = http
        .post(format!("{url}/api/2.0/mlflow/experiments/create"))
        .json(&serde_json::json!({"name": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 200);

    let (ok, _) = mlflow("pause", &dir);
    assert!(ok);
    assert!(!mlflow("status", &dir).0, "paused: not answering");
    assert!(dir.join("kept").exists(), "the folder is marked kept");
    let (ok, url) = mlflow("start", &dir);
    assert!(ok, "{url}");
    assert_eq!(experiment(&http, &url, "kept").await, 200, "carried on");

    let (ok, _) = mlflow("stop", &dir);
    assert!(ok);
    assert!(!dir.exists(), "stop deletes the folder");
    let (ok, url) = mlflow("start", &dir);
    assert!(ok, "{url}");
    let fresh = experiment(&http, &url, "kept").await;
    mlflow("stop", &dir);
    assert_eq!(fresh, 404, "a start after stop begins empty");
}
