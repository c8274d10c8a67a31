//! Tasks with `mlflow` get `MLFLOW_RUN_CONTEXT`: checked with MLflow's own client (PyPI mlflow, the
//! venv of scripts/python-env.sh mlflow, `OLO_TEST_MLFLOW_PYTHON`). The rendered DAG's env is
//! templated by Jinja as Airflow does, then a plain `mlflow.start_run()` must carry `olo.run_id`,
//! also for a run id with quotes and braces (run ids given through the API are the caller's).

use std::path::Path;
use std::process::Command;

use olo_schema::{validate, Snapshot};
use olo_templates::{render, RenderSettings};

#[test]
fn mlflow_tags_every_run_with_the_olo_run_id_from_the_task_env() {
    let python = std::env::var("OLO_TEST_MLFLOW_PYTHON").expect(
        "OLO_TEST_MLFLOW_PYTHON must name the python of the MLflow venv (scripts/test.sh sets it: \
         $(scripts/python-env.sh mlflow)/bin/python)",
    );
    let mut s = Snapshot::new(Some("0123456789abcdef0123456789abcdef01234567".into()));
    s.insert_file(
        "workspaces/w/workspace.yaml",
        "apiVersion: olo/v1\nkind: Workspace\nmetadata: {name: w}\nspec:\n  lakehouse: {catalog: lake, warehouse: 's3://lake-bucket/w'}\n",
    );
    s.insert_file(
        "workspaces/w/jobs/train.yaml",
        "apiVersion: olo/v1\nkind: Job\nmetadata: {name: train}\nspec:\n  tasks:\n    - id: fit\n      python: {module: forecast.train}\n      mlflow: {experiment: forecasts}\n    - id: report\n      bash: {command: echo done}\n      mlflow: {experiment: forecasts}\n",
    );
    let repo = validate(s).repo.expect("valid");
    let rendered = render(&repo, &RenderSettings::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dag = dir.path().join("w__train.py");
    std::fs::write(&dag, &rendered.files["dags/w__train.py"]).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mlflow/run_context.py");
    // A python task with an ordinary run id, a bash task with an awkward one.
    for (task, run_id) in [
        ("fit", "manual__2026-11-27T03:00:00+00:00"),
        ("report", r#"api "run" {{ 7 }} \ 'x'"#),
    ] {
        let out = Command::new(&python)
            .arg(&script)
            .arg(&dag)
            .arg(task)
            .arg(run_id)
            .arg(dir.path())
            .output()
            .expect("the MLflow venv's python runs");
        assert!(
            out.status.success(),
            "{task}, {run_id:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let want = serde_json::json!({"olo.run_id": run_id});
        assert_eq!(got["tags"], want, "{task}, {run_id:?}");
        assert_eq!(got["olo_mlflow_tags"], want, "{task}, {run_id:?}");
    }
}
