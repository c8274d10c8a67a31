//! The Airflow client against a fake Airflow (wiremock): the exact requests it sends (method, raw
//! path, query, `Authorization`, `Accept`, JSON body), how often (`.expect(n)`, checked when the
//! server drops), and how it classifies Airflow's answers. Response bodies are what Airflow 3.3.2
//! answered (captured from a running one), or built from its published OpenAPI description.

mod auth;
mod dags;
mod fixtures;
mod ids;
mod runs;
mod support;
mod task_logs;
