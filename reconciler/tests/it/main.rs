//! The reconciler's integration tests, in one test binary: one module per subject, each as it
//! was when it was a binary of its own (zero-to-production's layout). One binary links once,
//! where nine linked the library and its dependencies nine times.
//!
//! Run one subject with a filter: `cargo test --workspace --test it store_contract::`. Test
//! names are `<module>::<test>`, e.g. `store_contract::postgres::ping_answers`.
//!
//! Modules share one process: no test sets an environment variable or changes the working
//! folder, and each module's statics (the database name counters) are its own.

// Airflow's responses are wide: `json!` needs more room for them (airflow_client).
#![recursion_limit = "256"]

mod airflow_client;
mod controller;
mod forge_github;
mod iceberg_rest_client;
mod lakehouse_apply;
mod mlflow_client;
mod store_backup;
mod store_contract;
mod trino_client;
