//! An Iceberg REST catalog's namespaces (`../shared/reference/iceberg-rest-catalog-openapi.yaml`):
//! `GET /v1/config?warehouse=` for the prefix, then namespaces list / load / create / update
//! properties / drop and table listing under `/v1/{prefix}/…`.
//!
//! Hand-written rather than `iceberg-catalog-rest`: that crate's `update_namespace` is a stub
//! ("Updating namespace not supported yet", apache/iceberg-rust#3339), and properties are the
//! point of this target.
//!
//! Auth: none, a bearer token, or OAuth2 client credentials (`client_id:secret`, exchanged at
//! the catalog's `/v1/oauth/tokens` or a configured server for a token that is cached and renewed
//! once on a 401/419). Secrets are never logged or put into errors.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use super::tables::TableId;
use super::{IcebergCatalog, LakeError, LakeResult, NamespaceId};

/// How olo authenticates to the catalog.
#[derive(Clone, Default)]
pub enum RestAuth {
    #[default]
    None,
    Bearer(SecretString),
    /// OAuth2 client credentials; `server` defaults to `<uri>/v1/oauth/tokens`.
    ClientCredentials {
        client_id: String,
        secret: SecretString,
        scope: String,
        server: Option<String>,
    },
}

#[derive(Clone)]
pub struct RestSettings {
    /// Base URI, e.g. `http://127.0.0.1:8181` (the paths `/v1/…` are appended).
    pub uri: String,
    /// The `warehouse` asked of `/v1/config` per olo catalog name; `None`: the catalog name.
    pub warehouse: Option<String>,
    pub auth: RestAuth,
    pub timeout: Duration,
}

pub struct RestCatalog {
    settings: RestSettings,
    http: reqwest::Client,
    /// Per catalog name: the path prefix the catalog's config gave.
    prefixes: Mutex<BTreeMap<String, String>>,
    token: Mutex<Option<SecretString>>,
}

/// The unit separator: how multi-level namespaces travel in one path segment.
const SEPARATOR: &str = "\u{1f}";

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorModel,
}

#[derive(Deserialize)]
struct ErrorModel {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: String,
}

#[derive(Deserialize, Default)]
struct ConfigBody {
    #[serde(default)]
    defaults: BTreeMap<String, String>,
    #[serde(default)]
    overrides: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct NamespaceBody {
    #[serde(default)]
    properties: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct ListNamespaces {
    #[serde(default)]
    namespaces: Vec<Vec<String>>,
    #[serde(default, rename = "next-page-token")]
    next: Option<String>,
}

#[derive(Deserialize)]
struct ListTables {
    #[serde(default)]
    identifiers: Vec<serde_json::Value>,
    #[serde(default, rename = "next-page-token")]
    next: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
}

impl RestCatalog {
    pub fn new(settings: RestSettings) -> LakeResult<RestCatalog> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| LakeError::Unsupported(format!("HTTP client: {e}")))?;
        let token = match &settings.auth {
            RestAuth::Bearer(t) => Some(t.clone()),
            _ => None,
        };
        Ok(RestCatalog {
            settings,
            http,
            prefixes: Mutex::new(BTreeMap::new()),
            token: Mutex::new(token),
        })
    }

    fn base(&self) -> &str {
        self.settings.uri.trim_end_matches('/')
    }

    fn system(&self) -> String {
        format!("the Iceberg REST catalog at {}", self.base())
    }

    fn unavailable(&self, message: impl Into<String>) -> LakeError {
        LakeError::Unavailable {
            system: self.system(),
            message: message.into(),
        }
    }

    /// One namespace as a path segment: levels joined by 0x1F, percent-encoded.
    fn segment(parts: &[String]) -> String {
        url::form_urlencoded::byte_serialize(parts.join(SEPARATOR).as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    }

    async fn oauth_token(&self) -> LakeResult<Option<SecretString>> {
        let RestAuth::ClientCredentials {
            client_id,
            secret,
            scope,
            server,
        } = &self.settings.auth
        else {
            return Ok(self.token.lock().await.clone());
        };
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            return Ok(Some(t.clone()));
        }
        let url = server
            .clone()
            .unwrap_or_else(|| format!("{}/v1/oauth/tokens", self.base()));
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.expose_secret()),
            ("scope", scope.as_str()),
        ];
        let resp = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            // The body of a refused token request may echo the request: never shown.
            return Err(if status.is_server_error() {
                self.unavailable(format!("token request answered {status}"))
            } else {
                LakeError::Refused {
                    system: self.system(),
                    what: "olo's client credentials".into(),
                    message: format!("token request answered {status}"),
                }
            });
        }
        let body: TokenBody = resp
            .json()
            .await
            .map_err(|e| self.unavailable(format!("token response: {e}")))?;
        let token = SecretString::from(body.access_token);
        *cached = Some(token.clone());
        Ok(Some(token))
    }

    /// Sends one request; renews an OAuth2 token once when it is refused. In an `iceberg_rest`
    /// span (method, path, the status the catalog answered).
    #[tracing::instrument(
        name = "iceberg_rest",
        skip_all,
        fields(method = %method, path = path, status = tracing::field::Empty)
    )]
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> LakeResult<reqwest::Response> {
        let url = format!("{}{path}", self.base());
        for attempt in 0..2 {
            let mut req = self.http.request(method.clone(), &url).query(query);
            if let Some(token) = self.oauth_token().await? {
                req = req.bearer_auth(token.expose_secret());
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| self.unavailable(e.without_url().to_string()))?;
            let renewable = matches!(self.settings.auth, RestAuth::ClientCredentials { .. });
            if attempt == 0
                && renewable
                && (resp.status() == StatusCode::UNAUTHORIZED || resp.status().as_u16() == 419)
            {
                *self.token.lock().await = None;
                continue;
            }
            tracing::Span::current().record("status", resp.status().as_u16());
            return Ok(resp);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Turns a non-success answer into an error naming what was asked.
    async fn error(&self, resp: reqwest::Response, what: &str) -> LakeError {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let message = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) if !b.error.message.is_empty() => {
                if b.error.kind.is_empty() {
                    b.error.message
                } else {
                    format!("{}: {}", b.error.kind, b.error.message)
                }
            }
            _ => status.to_string(),
        };
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            self.unavailable(format!("{what}: {message}"))
        } else {
            LakeError::Refused {
                system: self.system(),
                what: what.to_string(),
                message,
            }
        }
    }

    /// The path prefix of a catalog: `/v1/{prefix}` (or `/v1` when the config gives none).
    async fn root(&self, catalog: &str) -> LakeResult<String> {
        if let Some(p) = self.prefixes.lock().await.get(catalog) {
            return Ok(p.clone());
        }
        let warehouse = self.settings.warehouse.as_deref().unwrap_or(catalog);
        let resp = self
            .send(Method::GET, "/v1/config", &[("warehouse", warehouse)], None)
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .error(
                    resp,
                    &format!("the configuration of warehouse `{warehouse}`"),
                )
                .await);
        }
        let config: ConfigBody = resp
            .json()
            .await
            .map_err(|e| self.unavailable(format!("/v1/config: {e}")))?;
        let prefix = config
            .overrides
            .get("prefix")
            .or(config.defaults.get("prefix"))
            .cloned();
        let root = match prefix {
            Some(p) if !p.is_empty() => {
                let encoded: String = p
                    .split('/')
                    .map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>())
                    .collect::<Vec<_>>()
                    .join("/");
                format!("/v1/{encoded}")
            }
            _ => "/v1".to_string(),
        };
        self.prefixes
            .lock()
            .await
            .insert(catalog.to_string(), root.clone());
        Ok(root)
    }

    async fn namespace_path(&self, id: &NamespaceId) -> LakeResult<String> {
        Ok(format!(
            "{}/namespaces/{}",
            self.root(&id.catalog).await?,
            Self::segment(&id.parts)
        ))
    }

    async fn table_path(&self, id: &TableId) -> LakeResult<String> {
        let name: String = url::form_urlencoded::byte_serialize(id.name.as_bytes()).collect();
        Ok(format!(
            "{}/tables/{name}",
            self.namespace_path(&id.namespace).await?
        ))
    }

    /// Counts the identifiers of a paged listing (`tables` or `views`); `None` when the catalog
    /// does not offer the listing.
    async fn count_listing(&self, id: &NamespaceId, what: &str) -> LakeResult<Option<usize>> {
        let path = format!("{}/{what}", self.namespace_path(id).await?);
        let mut count = 0;
        let mut token: Option<String> = None;
        loop {
            let query: Vec<(&str, &str)> = token
                .as_deref()
                .map(|t| vec![("pageToken", t)])
                .unwrap_or_default();
            let resp = self.send(Method::GET, &path, &query, None).await?;
            let status = resp.status();
            if what == "views"
                && matches!(
                    status,
                    StatusCode::NOT_FOUND | StatusCode::NOT_IMPLEMENTED | StatusCode::BAD_REQUEST
                )
            {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(self
                    .error(resp, &format!("listing the {what} of {id}"))
                    .await);
            }
            let page: ListTables = resp
                .json()
                .await
                .map_err(|e| self.unavailable(format!("listing {what}: {e}")))?;
            count += page.identifiers.len();
            match page.next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(Some(count)),
            }
        }
    }
}

#[async_trait::async_trait]
impl IcebergCatalog for RestCatalog {
    fn describe(&self) -> String {
        self.system()
    }

    async fn load_namespace(
        &self,
        id: &NamespaceId,
    ) -> LakeResult<Option<BTreeMap<String, String>>> {
        let path = self.namespace_path(id).await?;
        let resp = self.send(Method::GET, &path, &[], None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.error(resp, &format!("loading namespace {id}")).await);
        }
        let body: NamespaceBody = resp
            .json()
            .await
            .map_err(|e| self.unavailable(format!("loading namespace {id}: {e}")))?;
        Ok(Some(body.properties.unwrap_or_default()))
    }

    async fn count_tables(&self, id: &NamespaceId) -> LakeResult<usize> {
        let tables = self.count_listing(id, "tables").await?.unwrap_or(0);
        let views = self.count_listing(id, "views").await?.unwrap_or(0);
        Ok(tables + views)
    }

    async fn children(&self, id: &NamespaceId) -> LakeResult<Vec<NamespaceId>> {
        let path = format!("{}/namespaces", self.root(&id.catalog).await?);
        let parent = id.parts.join(SEPARATOR);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query: Vec<(&str, &str)> = vec![("parent", parent.as_str())];
            if let Some(t) = token.as_deref() {
                query.push(("pageToken", t));
            }
            let resp = self.send(Method::GET, &path, &query, None).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(out);
            }
            if !resp.status().is_success() {
                return Err(self
                    .error(resp, &format!("listing the namespaces under {id}"))
                    .await);
            }
            let page: ListNamespaces = resp
                .json()
                .await
                .map_err(|e| self.unavailable(format!("listing namespaces: {e}")))?;
            for parts in page.namespaces {
                // Some catalogs list the parent's own levels again, some only the last one.
                let parts = if parts.len() == 1 && !id.parts.is_empty() && parts != id.parts {
                    let mut full = id.parts.clone();
                    full.extend(parts);
                    full
                } else {
                    parts
                };
                if parts.len() == id.parts.len() + 1 && parts.starts_with(&id.parts) {
                    out.push(NamespaceId {
                        catalog: id.catalog.clone(),
                        parts,
                    });
                }
            }
            match page.next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    async fn create_namespace(
        &self,
        id: &NamespaceId,
        properties: &BTreeMap<String, String>,
    ) -> LakeResult<()> {
        let path = format!("{}/namespaces", self.root(&id.catalog).await?);
        let body = json!({ "namespace": id.parts, "properties": properties });
        let resp = self.send(Method::POST, &path, &[], Some(body)).await?;
        if resp.status() == StatusCode::CONFLICT {
            // It exists already (another writer, or a retry after a crash): set the properties.
            return self.update_properties(id, &[], properties).await;
        }
        if !resp.status().is_success() {
            return Err(self.error(resp, &format!("creating namespace {id}")).await);
        }
        Ok(())
    }

    async fn update_properties(
        &self,
        id: &NamespaceId,
        removals: &[String],
        updates: &BTreeMap<String, String>,
    ) -> LakeResult<()> {
        let path = format!("{}/properties", self.namespace_path(id).await?);
        let body = json!({ "removals": removals, "updates": updates });
        let resp = self.send(Method::POST, &path, &[], Some(body)).await?;
        if !resp.status().is_success() {
            return Err(self
                .error(resp, &format!("updating the properties of {id}"))
                .await);
        }
        Ok(())
    }

    async fn load_table(&self, id: &TableId) -> LakeResult<Option<serde_json::Value>> {
        let path = self.table_path(id).await?;
        let resp = self.send(Method::GET, &path, &[], None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.error(resp, &format!("loading table {id}")).await);
        }
        let mut body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| self.unavailable(format!("loading table {id}: {e}")))?;
        Ok(Some(body["metadata"].take()))
    }

    async fn create_table(&self, id: &TableId, request: &serde_json::Value) -> LakeResult<()> {
        let path = format!("{}/tables", self.namespace_path(&id.namespace).await?);
        let resp = self
            .send(Method::POST, &path, &[], Some(request.clone()))
            .await?;
        // 409: it exists (a retry after a crash); the next plan evolves it.
        if resp.status().is_success() || resp.status() == StatusCode::CONFLICT {
            return Ok(());
        }
        Err(self.error(resp, &format!("creating table {id}")).await)
    }

    async fn commit_table(
        &self,
        id: &TableId,
        requirements: &[serde_json::Value],
        updates: &[serde_json::Value],
    ) -> LakeResult<()> {
        let path = self.table_path(id).await?;
        let body = json!({
            "identifier": {"namespace": id.namespace.parts, "name": id.name},
            "requirements": requirements,
            "updates": updates,
        });
        let resp = self.send(Method::POST, &path, &[], Some(body)).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        if resp.status() == StatusCode::CONFLICT {
            let what = format!("the commit to table {id}");
            return Err(match self.error(resp, &what).await {
                LakeError::Refused { message, .. } => LakeError::Conflict {
                    system: self.system(),
                    what,
                    message,
                },
                other => other,
            });
        }
        Err(self.error(resp, &format!("committing to table {id}")).await)
    }

    async fn drop_namespace(&self, id: &NamespaceId) -> LakeResult<()> {
        let path = self.namespace_path(id).await?;
        let resp = self.send(Method::DELETE, &path, &[], None).await?;
        if resp.status() == StatusCode::NOT_FOUND || resp.status().is_success() {
            return Ok(());
        }
        Err(self.error(resp, &format!("dropping namespace {id}")).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_travel_as_one_percent_encoded_segment() {
        let parts = vec!["sales".to_string(), "bronze".to_string()];
        assert_eq!(RestCatalog::segment(&parts), "sales%1Fbronze");
        let odd = vec!["a b/..".to_string()];
        assert_eq!(RestCatalog::segment(&odd), "a%20b%2F..");
    }
}
