//! End to end in a real Apache Airflow 3.3 (`runs.rs`) (started by `scripts/test.sh` through
//! `scripts/airflow.sh`): a commit adds a job, olo writes its DAG into Airflow's DAG folder and
//! waits until Airflow parsed it; a run triggered through olo's API succeeds; olo's API shows the
//! run and its task instances and serves the task log; a commit whose DAG Airflow cannot import
//! is a failed apply carrying Airflow's stack trace; a signed push webhook drives the same path,
//! and an `Olo-Run:` trailer triggers a run; a forged webhook changes nothing. Airflow's
//! OpenLineage provider reports the run's tasks to olo, and the declared tables come back as
//! observed lineage. A task logs an MLflow run to a real MLflow server (started by
//! `scripts/mlflow.sh`) with the tag olo injects, and olo links it to the run.
//!
//! Needs OLO_TEST_AIRFLOW_URL, OLO_TEST_AIRFLOW_DAGS (the folder that Airflow reads: this test
//! applies to its own sub-folder, `airflow_e2e/`, which it empties first) and
//! OLO_TEST_AIRFLOW_PASSWORD. Without them it fails; it never
//! skips.
//!
//! `reparse.rs`: a second test starts its own Airflow (scripts/airflow.sh in a folder of its own) whose DAG
//! processor would look for new files and parse a file again only once an hour, and shows that
//! olo's parse requests make changed and new DAGs live all the same.

#[path = "../common/mod.rs"]
mod common;

mod reparse;
mod runs;

/// A DAG as Airflow's API shows it.
async fn airflow_dag(airflow: &str, password: &str, dag_id: &str) -> serde_json::Value {
    common::airflow::get(airflow, password, &format!("dags/{dag_id}")).await
}
