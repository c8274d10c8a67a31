//! External targets olo talks to over HTTP (one file per system).

pub mod airflow;
pub mod dags;
pub mod mlflow;
pub mod trino;
