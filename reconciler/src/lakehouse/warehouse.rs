//! Warehouse locations: local folders (`file://`, the embedded default) and S3-compatible
//! object stores (`s3://bucket/prefix`, `s3a://`). Requests to S3 are presigned with SigV4 by
//! `rusty-s3` (sans-IO) and sent with reqwest.
//!
//! A prefix exists on S3 when its marker object `<prefix>/.olo-warehouse` does: olo creates the
//! bucket when it is missing and writes the marker (a small JSON naming the workspace). Nothing
//! is ever deleted.

use std::path::PathBuf;
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use secrecy::{ExposeSecret, SecretString};

use super::{LakeError, LakeResult, Warehouse};

/// The marker object under each S3 warehouse prefix.
pub const MARKER: &str = ".olo-warehouse";

/// S3 connection settings. The keys come from the environment (their variable names are in
/// olo's settings); they are never logged.
#[derive(Clone)]
pub struct S3Settings {
    pub endpoint: url::Url,
    pub region: String,
    pub path_style: bool,
    pub access_key: String,
    pub secret_key: SecretString,
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint.as_str())
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

/// Local folders and, when configured, one S3-compatible store.
pub struct Warehouses {
    s3: Option<(S3Settings, reqwest::Client)>,
}

impl Warehouses {
    pub fn new(s3: Option<S3Settings>) -> LakeResult<Warehouses> {
        let s3 = match s3 {
            Some(settings) => {
                let client = reqwest::Client::builder()
                    .timeout(settings.timeout)
                    .build()
                    .map_err(|e| LakeError::Unsupported(format!("HTTP client: {e}")))?;
                Some((settings, client))
            }
            None => None,
        };
        Ok(Warehouses { s3 })
    }

    fn system(&self) -> String {
        match &self.s3 {
            Some((s, _)) => format!("the S3 store at {}", s.endpoint),
            None => "the S3 store".into(),
        }
    }
}

/// A location split into its kind.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    Folder(PathBuf),
    S3 { bucket: String, prefix: String },
    Other,
}

fn parse(location: &str) -> Location {
    if let Some(path) = location.strip_prefix("file://") {
        return Location::Folder(PathBuf::from(path));
    }
    let rest = location
        .strip_prefix("s3://")
        .or_else(|| location.strip_prefix("s3a://"));
    match rest {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            }
        }
        None => Location::Other,
    }
}

/// Whether a path is absolute and plain (no `..`): folders come from settings and validated
/// repository names, but a location is still never trusted as a path unchecked.
fn plain_absolute(path: &std::path::Path) -> bool {
    path.is_absolute()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        })
}

fn marker_key(prefix: &str) -> String {
    if prefix.is_empty() {
        MARKER.to_string()
    } else {
        format!("{prefix}/{MARKER}")
    }
}

const SIGN_FOR: Duration = Duration::from_secs(300);

/// Sent with every (presigned) request, and signed with it: some S3-compatible servers (s3s)
/// refuse a request without it, and AWS S3 and strict servers (versitygw) refuse a presigned
/// request that carries an x-amz-* header it did not sign. Presigned requests do not sign the
/// payload.
const CONTENT_SHA256: (&str, &str) = ("x-amz-content-sha256", "UNSIGNED-PAYLOAD");

/// A presigned URL for `action`, valid [`SIGN_FOR`], with [`CONTENT_SHA256`] among its signed
/// headers (the request must then send it).
fn presign<'a>(mut action: impl S3Action<'a>) -> url::Url {
    action
        .headers_mut()
        .insert(CONTENT_SHA256.0, CONTENT_SHA256.1);
    action.sign(SIGN_FOR)
}

impl Warehouses {
    fn bucket(
        &self,
        name: &str,
    ) -> LakeResult<(&S3Settings, &reqwest::Client, Bucket, Credentials)> {
        let (settings, client) = self.s3.as_ref().ok_or_else(|| {
            LakeError::Unsupported(
                "an s3:// warehouse needs an S3 store: set [lakehouse] warehouse = \"s3\" and the [render] s3_* settings, or keep warehouses local".into(),
            )
        })?;
        let style = if settings.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(
            settings.endpoint.clone(),
            style,
            name.to_string(),
            settings.region.clone(),
        )
        .map_err(|e| LakeError::Refused {
            system: self.system(),
            what: format!("bucket `{name}`"),
            message: e.to_string(),
        })?;
        let creds = Credentials::new(
            settings.access_key.clone(),
            settings.secret_key.expose_secret().to_string(),
        );
        Ok((settings, client, bucket, creds))
    }

    fn unavailable(&self, e: reqwest::Error) -> LakeError {
        LakeError::Unavailable {
            system: self.system(),
            message: e.without_url().to_string(),
        }
    }

    /// Maps an S3 answer: `Ok(true)` 2xx, `Ok(false)` 404, errors otherwise.
    async fn status(&self, resp: reqwest::Response, what: &str) -> LakeResult<bool> {
        let status = resp.status();
        if status.is_success() {
            return Ok(true);
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        let body = resp.text().await.unwrap_or_default();
        let code = s3_error_code(&body).unwrap_or_else(|| status.to_string());
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(LakeError::Unavailable {
                system: self.system(),
                message: format!("{what}: {code}"),
            })
        } else {
            Err(LakeError::Refused {
                system: self.system(),
                what: what.to_string(),
                message: code,
            })
        }
    }
}

/// The `<Code>` of an S3 error body.
fn s3_error_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    Some(body[start..end].to_string())
}

#[async_trait::async_trait]
impl Warehouse for Warehouses {
    fn bootstraps(&self, location: &str) -> bool {
        match parse(location) {
            Location::Folder(p) => plain_absolute(&p),
            Location::S3 { .. } => self.s3.is_some(),
            Location::Other => false,
        }
    }

    #[tracing::instrument(name = "warehouse", skip_all, fields(op = "exists", location = location))]
    async fn exists(&self, location: &str) -> LakeResult<bool> {
        match parse(location) {
            Location::Folder(path) => Ok(path.is_dir()),
            Location::S3 { bucket, prefix } => {
                let (_, client, bucket, creds) = self.bucket(&bucket)?;
                let key = marker_key(&prefix);
                let url = presign(bucket.head_object(Some(&creds), &key));
                let resp = client
                    .head(url)
                    .header(CONTENT_SHA256.0, CONTENT_SHA256.1)
                    .send()
                    .await
                    .map_err(|e| self.unavailable(e))?;
                self.status(resp, &format!("HEAD {location}/{MARKER}"))
                    .await
            }
            Location::Other => Err(LakeError::Unsupported(format!(
                "olo bootstraps file:// and s3:// warehouses, not {location}"
            ))),
        }
    }

    #[tracing::instrument(name = "warehouse", skip_all, fields(op = "ensure", location = location))]
    async fn ensure(&self, location: &str, workspace: &str) -> LakeResult<()> {
        match parse(location) {
            Location::Folder(path) => {
                if !plain_absolute(&path) {
                    return Err(LakeError::Unsupported(format!(
                        "refusing warehouse folder {}: not a plain absolute path",
                        path.display()
                    )));
                }
                std::fs::create_dir_all(&path).map_err(|e| LakeError::Refused {
                    system: "the local disk".into(),
                    what: format!("creating {}", path.display()),
                    message: e.to_string(),
                })
            }
            Location::S3 {
                bucket: name,
                prefix,
            } => {
                let (_, client, bucket, creds) = self.bucket(&name)?;
                let head = presign(bucket.head_bucket(Some(&creds)));
                let resp = client
                    .head(head)
                    .header(CONTENT_SHA256.0, CONTENT_SHA256.1)
                    .send()
                    .await
                    .map_err(|e| self.unavailable(e))?;
                if !self.status(resp, &format!("HEAD bucket {name}")).await? {
                    let create = presign(bucket.create_bucket(&creds));
                    let resp = client
                        .put(create)
                        .header(CONTENT_SHA256.0, CONTENT_SHA256.1)
                        .send()
                        .await
                        .map_err(|e| self.unavailable(e))?;
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    // Another writer may have created it meanwhile: that is fine.
                    let code = s3_error_code(&body).unwrap_or_default();
                    if !status.is_success()
                        && code != "BucketAlreadyOwnedByYou"
                        && code != "BucketAlreadyExists"
                    {
                        return Err(LakeError::Refused {
                            system: self.system(),
                            what: format!("creating bucket {name}"),
                            message: if code.is_empty() {
                                status.to_string()
                            } else {
                                code
                            },
                        });
                    }
                }
                let key = marker_key(&prefix);
                let body = serde_json::json!({
                    "managed_by": "olo",
                    "workspace": workspace,
                    "location": location,
                })
                .to_string();
                let put = presign(bucket.put_object(Some(&creds), &key));
                let resp = client
                    .put(put)
                    .header(CONTENT_SHA256.0, CONTENT_SHA256.1)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| self.unavailable(e))?;
                self.status(resp, &format!("PUT {location}/{MARKER}"))
                    .await
                    .map(|_| ())
            }
            Location::Other => Err(LakeError::Unsupported(format!(
                "olo bootstraps file:// and s3:// warehouses, not {location}"
            ))),
        }
    }

    #[tracing::instrument(name = "warehouse", skip_all, fields(op = "read", url = url))]
    async fn read(&self, url: &str) -> LakeResult<Option<Vec<u8>>> {
        self.read_file(url).await
    }

    #[tracing::instrument(name = "warehouse", skip_all, fields(op = "write", url = url, bytes = bytes.len()))]
    async fn write(&self, url: &str, bytes: &[u8]) -> LakeResult<()> {
        self.write_file(url, bytes).await
    }
}

/// A file URL as a path or an S3 object.
fn split_file(url: &str) -> LakeResult<Location> {
    match parse(url) {
        Location::Folder(p) if plain_absolute(&p) => Ok(Location::Folder(p)),
        Location::S3 { bucket, prefix } if !prefix.is_empty() => {
            Ok(Location::S3 { bucket, prefix })
        }
        _ => Err(LakeError::Unsupported(format!(
            "olo reads and writes files at file:///… and s3://bucket/key, not {url}"
        ))),
    }
}

impl Warehouses {
    async fn read_file(&self, url: &str) -> LakeResult<Option<Vec<u8>>> {
        match split_file(url)? {
            Location::Folder(path) => match std::fs::read(&path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(LakeError::Refused {
                    system: "the local disk".into(),
                    what: format!("reading {}", path.display()),
                    message: e.to_string(),
                }),
            },
            Location::S3 { bucket, prefix } => {
                let (_, client, bucket, creds) = self.bucket(&bucket)?;
                let get = presign(bucket.get_object(Some(&creds), &prefix));
                let resp = client
                    .get(get)
                    .header(CONTENT_SHA256.0, CONTENT_SHA256.1)
                    .send()
                    .await
                    .map_err(|e| self.unavailable(e))?;
                if resp.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                if !resp.status().is_success() {
                    self.status(resp, &format!("GET {url}")).await?;
                    return Ok(None);
                }
                let bytes = resp.bytes().await.map_err(|e| self.unavailable(e))?;
                Ok(Some(bytes.to_vec()))
            }
            Location::Other => unreachable!("split_file refuses other locations"),
        }
    }

    async fn write_file(&self, url: &str, bytes: &[u8]) -> LakeResult<()> {
        match split_file(url)? {
            Location::Folder(path) => {
                let refused = |e: std::io::Error| LakeError::Refused {
                    system: "the local disk".into(),
                    what: format!("writing {}", path.display()),
                    message: e.to_string(),
                };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(refused)?;
                }
                let tmp = path.with_extension("olo-tmp");
                std::fs::write(&tmp, bytes).map_err(refused)?;
                std::fs::rename(&tmp, &path).map_err(refused)
            }
            Location::S3 { bucket, prefix } => {
                let (_, client, bucket, creds) = self.bucket(&bucket)?;
                let put = presign(bucket.put_object(Some(&creds), &prefix));
                let resp = client
                    .put(put)
                    .header(CONTENT_SHA256.0, CONTENT_SHA256.1)
                    .body(bytes.to_vec())
                    .send()
                    .await
                    .map_err(|e| self.unavailable(e))?;
                self.status(resp, &format!("PUT {url}")).await.map(|_| ())
            }
            Location::Other => unreachable!("split_file refuses other locations"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_into_bucket_and_prefix() {
        assert_eq!(
            parse("s3://lakehouse/sales/"),
            Location::S3 {
                bucket: "lakehouse".into(),
                prefix: "sales".into()
            }
        );
        assert_eq!(
            parse("s3a://b"),
            Location::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            parse("file:///tmp/w/sales"),
            Location::Folder(PathBuf::from("/tmp/w/sales"))
        );
        assert_eq!(parse("gs://b/p"), Location::Other);
        assert_eq!(marker_key(""), ".olo-warehouse");
        assert_eq!(marker_key("a/b"), "a/b/.olo-warehouse");
    }

    #[test]
    fn folders_must_be_plain_absolute_paths() {
        let w = Warehouses::new(None).unwrap();
        assert!(w.bootstraps("file:///tmp/olo/warehouse/sales"));
        assert!(!w.bootstraps("file://relative/sales"));
        assert!(!w.bootstraps("file:///tmp/olo/../etc"));
        // s3 only with an S3 store configured; other schemes never.
        assert!(!w.bootstraps("s3://lakehouse/sales"));
        assert!(!w.bootstraps("gs://lakehouse/sales"));
    }

    #[test]
    fn s3_error_codes_are_read_from_the_body() {
        let body =
            "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>";
        assert_eq!(s3_error_code(body).as_deref(), Some("AccessDenied"));
        assert_eq!(s3_error_code("garbage"), None);
    }

    #[tokio::test]
    async fn a_local_warehouse_is_created_once_and_then_exists() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouses::new(None).unwrap();
        let loc = format!("file://{}/lakehouse/sales", dir.path().display());
        assert!(!w.exists(&loc).await.unwrap());
        w.ensure(&loc, "sales").await.unwrap();
        w.ensure(&loc, "sales").await.unwrap();
        assert!(w.exists(&loc).await.unwrap());
        assert!(dir.path().join("lakehouse/sales").is_dir());
    }
}
