//! The end-to-end tests that need no shared service, as one test binary (one link, one compile of
//! the helpers): each module was its own binary before. The tests that drive the one Airflow, the
//! lakehouse, Trino or Spark that scripts/test.sh starts for the run stay binaries of their own
//! (`tests/airflow_e2e/`, `ha.rs`, `spark_e2e.rs`, `lakehouse.rs`, `trino_e2e.rs`): cargo runs
//! test binaries one after another, so those never act on the same service at once.

#[path = "../common/mod.rs"]
mod common;

mod airflow;
mod api_writes;
mod backup;
mod cli;
mod cli_read;
mod connections;
mod dashboard;
mod disk_full;
mod lineage;
mod local_source;
mod mlflow_run_context;
mod oidc;
mod pull_requests;
mod reconcile;
mod render;
mod schemathesis;
mod server;
mod service_scripts;
mod signed_commits;
mod sql;
mod store_loss;
mod trino_rules;
mod validate;
