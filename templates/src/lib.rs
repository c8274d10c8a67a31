//! Render: a validated config repository -> the desired state as files (Airflow DAGs, Trino
//! catalogs and access rules, Iceberg namespaces). Pure: no I/O; the caller writes the files.

pub mod dag;
pub mod iceberg;
pub mod python;
pub mod render;
pub mod settings;
pub mod trino;

pub use render::{render, Rendered};
pub use settings::RenderSettings;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not render {what}")]
    Template {
        what: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("{0} is referenced but missing from the snapshot")]
    MissingFile(String),
    #[error("{0} is not valid UTF-8")]
    NotUtf8(String),
    #[error("could not encode JSON output")]
    Json(#[source] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
