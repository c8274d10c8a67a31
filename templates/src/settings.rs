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
    /// Environment variable holding the API token Spark's OpenLineage listener sends to olo
    /// (`auth.type = api_key`); olo refuses lineage without one when it has API tokens or OpenID
    /// Connect configured. Read on the worker when a Spark task runs; unset there, Spark sends
    /// without auth.
    pub openlineage_api_key_env: Option<String>,
    /// Maven coordinates of the jars a Spark task needs (`spark.jars.packages`, fetched by Spark
    /// at submit time): Iceberg's Spark runtime and AWS bundle, and the OpenLineage listener.
    /// Empty when the Spark image has them, or `spark_jars` names them.
    pub spark_packages: Vec<String>,
    /// Jar files or URLs for `spark.jars` (for images and workers without Maven access).
    pub spark_jars: Vec<String>,
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

/// The jars of a Spark 3.5 (Scala 2.12) task, as Maven coordinates: the versions
/// scripts/spark.sh fetches and tests/spark_e2e.rs runs.
pub const DEFAULT_SPARK_PACKAGES: [&str; 3] = [
    "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.1",
    "org.apache.iceberg:iceberg-aws-bundle:1.10.1",
    "io.openlineage:openlineage-spark_2.12:1.37.0",
];

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
            openlineage_api_key_env: Some("OLO_OPENLINEAGE_API_KEY".into()),
            spark_packages: DEFAULT_SPARK_PACKAGES
                .iter()
                .map(|p| p.to_string())
                .collect(),
            spark_jars: Vec::new(),
            mlflow_tracking_uri: None,
            trino_impersonator: None,
            trino_task_user: None,
            trino_catalog_manager: None,
        }
    }
}
