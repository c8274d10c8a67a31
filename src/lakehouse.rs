//! Builds the lakehouse target (Iceberg catalog + warehouse store) from the settings.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use olo_reconciler::lakehouse::apply::Lakehouse;
use olo_reconciler::lakehouse::catalogs::DynamicCatalogs;
use olo_reconciler::lakehouse::rest::{RestAuth, RestCatalog, RestSettings};
use olo_reconciler::lakehouse::sql::SqlCatalog;
use olo_reconciler::lakehouse::warehouse::{S3Settings, Warehouses};
use olo_reconciler::lakehouse::{IcebergCatalog, Locations, Warehouse};
use secrecy::ExposeSecret as _;

use crate::settings::{CatalogKind, Settings, TrinoCatalogs, WarehouseKind};

/// `None` when both the catalog and the warehouse are off.
pub async fn make_lakehouse(settings: &Settings) -> anyhow::Result<Option<Lakehouse>> {
    let l = &settings.lakehouse;
    if let Some(reach) = settings.lakehouse_reach() {
        tracing::info!("{reach}");
    }
    let timeout = Duration::from_secs(l.timeout_seconds);
    // One file store for warehouses and for the SQL catalog's table metadata files.
    let s3 = match l.warehouse {
        WarehouseKind::S3 => {
            let r = &settings.render;
            let key = |var: &str| {
                std::env::var(var).with_context(|| {
                    format!("environment variable {var} (named in render.s3_*_env) is not set")
                })
            };
            Some(S3Settings {
                endpoint: r
                    .s3_endpoint
                    .parse()
                    .with_context(|| format!("render.s3_endpoint = {:?}", r.s3_endpoint))?,
                region: r.s3_region.clone(),
                path_style: r.s3_path_style,
                access_key: key(&r.s3_access_key_env)?,
                secret_key: key(&r.s3_secret_key_env)?.into(),
                timeout,
            })
        }
        _ => None,
    };
    let files: Arc<dyn Warehouse> = Arc::new(Warehouses::new(s3)?);
    let catalog: Option<Arc<dyn IcebergCatalog>> = match l.catalog {
        CatalogKind::Off => None,
        CatalogKind::Sql => {
            let url = settings.iceberg_sql_database()?;
            if l.sql_database.is_none() {
                // The default catalog file lives in the state folder.
                std::fs::create_dir_all(&settings.state.dir).with_context(|| {
                    format!("could not create {}", settings.state.dir.display())
                })?;
            }
            Some(Arc::new(
                SqlCatalog::open(&url, files.clone())
                    .await
                    .context("could not open the Iceberg SQL catalog (lakehouse.sql_database)")?,
            ))
        }
        CatalogKind::Rest => {
            let uri = l
                .rest_uri
                .clone()
                .unwrap_or_else(|| settings.render.iceberg_rest_uri.clone());
            let credential_env = l
                .rest_credential_env
                .clone()
                .or_else(|| settings.render.iceberg_credential_env.clone());
            let auth = if let Some(token) = Settings::secret(&l.rest_token_env)? {
                RestAuth::Bearer(token)
            } else if let Some(credential) = Settings::secret(&credential_env)? {
                let (id, secret) = credential
                    .expose_secret()
                    .split_once(':')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .context("the REST catalog credential must read `client_id:secret`")?;
                RestAuth::ClientCredentials {
                    client_id: id,
                    secret: secret.into(),
                    scope: l.rest_scope.clone(),
                    server: l.rest_oauth_server.clone(),
                }
            } else {
                RestAuth::None
            };
            Some(Arc::new(RestCatalog::new(RestSettings {
                uri,
                warehouse: settings.render.iceberg_rest_warehouse.clone(),
                auth,
                timeout,
            })?))
        }
    };
    let mut locations = Locations::default();
    let warehouse: Option<Arc<dyn Warehouse>> = match l.warehouse {
        WarehouseKind::Off => None,
        WarehouseKind::Local => {
            let root = match &l.local_warehouse {
                Some(p) if p.is_absolute() => p.clone(),
                Some(p) => std::env::current_dir()?.join(p),
                None => settings.state_dir_absolute()?.join("warehouse"),
            };
            locations.local_root = Some(root);
            Some(files.clone())
        }
        WarehouseKind::S3 => Some(files.clone()),
    };
    let trino = match settings.trino.catalogs {
        TrinoCatalogs::Files => None,
        TrinoCatalogs::Dynamic => {
            crate::components::make_trino(settings)?.map(|trino| DynamicCatalogs {
                trino,
                user: settings.trino.catalog_user.clone(),
                render: settings.render.clone(),
            })
        }
    };
    if catalog.is_none() && warehouse.is_none() && trino.is_none() {
        return Ok(None);
    }
    Ok(Some(Lakehouse {
        catalog,
        warehouse,
        locations,
        trino,
    }))
}
