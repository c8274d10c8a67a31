//! What render needs to know about the platform around it (from olo's settings file), as opposed
//! to the config repository. Secrets never appear here: only the names of the environment
//! variables that hold them, which the rendered files reference.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenderSettings {
    /// Iceberg REST catalog URI, as Trino and Spark reach it.
    pub iceberg_rest_uri: String,
    /// The REST catalog's warehouse name (`None`: the catalog name).
    pub iceberg_rest_warehouse: Option<String>,
    /// Environment variable holding an OAuth2 credential (`client_id:secret`) for the REST
    /// catalog, if it needs one.
    pub iceberg_credential_env: Option<String>,
    /// S3-compatible endpoint of the warehouse storage.
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_path_style: bool,
    /// Environment variables holding the S3 access key and secret key.
    pub s3_access_key_env: String,
    pub s3_secret_key_env: String,
    /// Where OpenLineage events go (olo's own lineage endpoint).
    pub openlineage_url: String,
    /// MLflow tracking URI given to tasks with `mlflow`, if any.
    pub mlflow_tracking_uri: Option<String>,
    /// The Trino user olo itself authenticates as (`trino.username`), when Trino authenticates
    /// it: `rules.json` then lets that user run queries as the people who call olo's SQL runner
    /// (an impersonation rule); nobody else may impersonate anyone.
    pub trino_impersonator: Option<String>,
    /// The Trino user the Airflow connections of `sql` tasks log in as (`olo_trino_<workspace>`;
    /// dbt's profile too): `rules.json` gives it what those jobs need in every workspace with
    /// namespaces (read, write, create, drop and rename tables), and no more.
    pub trino_task_user: Option<String>,
    /// The Trino user that creates and drops catalogs (`trino.catalog_user` with
    /// `trino.catalogs = "dynamic"`; set from it when unset): `rules.json` lets it manage catalogs
    /// (`allow: owner`) and read no data.
    pub trino_catalog_manager: Option<String>,
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            iceberg_rest_uri: "http://127.0.0.1:8181/catalog".into(),
            iceberg_rest_warehouse: None,
            iceberg_credential_env: None,
            s3_endpoint: "http://127.0.0.1:9000".into(),
            s3_region: "us-east-1".into(),
            s3_path_style: true,
            s3_access_key_env: "OLO_S3_ACCESS_KEY".into(),
            s3_secret_key_env: "OLO_S3_SECRET_KEY".into(),
            openlineage_url: "http://127.0.0.1:8080".into(),
            mlflow_tracking_uri: None,
            trino_impersonator: None,
            trino_task_user: None,
            trino_catalog_manager: None,
        }
    }
}
