//! Trino over its client REST API (`/v1/statement`): run one SQL statement and read all of its
//! result, following `nextUri` from page to page. The dashboard and the reconciler see the small
//! [`Trino`] trait; [`TrinoClient`] implements it over HTTP.
//!
//! The protocol: `POST /v1/statement` with the SQL as the body answers a `QueryResults` document;
//! while it holds a `nextUri`, a `GET` of that URI answers the next one, and a `DELETE` of it
//! cancels the query. Columns may arrive on any page before the first rows, rows on any number of
//! pages, and a failed query answers an `error` object instead of rows. HTTP 502, 503 and 504
//! come from gateways in front of Trino and mean "try the same URI again shortly"; any status but
//! those and 200 means the request failed.
//!
//! Beside the client: quoting ([`quote_ident`], [`quote_literal`]), a first check that a
//! statement only reads ([`read_only`]), and the statements of dynamic catalog management
//! ([`create_catalog_sql`], [`drop_catalog_sql`], [`show_catalogs`]).
//!
//! Nothing here logs. Credentials live in [`SecretString`]s, so `Debug` never shows them, and
//! catalog properties only ever carry `${ENV:NAME}` references to secrets, which Trino resolves.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// What olo calls itself in `X-Trino-Source` (Trino's query history shows it).
pub const SOURCE: &str = "olo";

/// Tries of one request answered 502, 503, 504 or 429 before giving up.
const MAX_ATTEMPTS: u32 = 5;

/// The longest wait a `Retry-After` header gets; a longer one waits this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How much of an unexpected response body an error keeps.
const MAX_ERROR_BODY: usize = 2048;

const USER: HeaderName = HeaderName::from_static("x-trino-user");
const SOURCE_HEADER: HeaderName = HeaderName::from_static("x-trino-source");
const CATALOG: HeaderName = HeaderName::from_static("x-trino-catalog");
const SCHEMA: HeaderName = HeaderName::from_static("x-trino-schema");

/// How olo authenticates to Trino (from the settings). `Debug` shows secrets as `[REDACTED]`.
#[derive(Debug, Clone)]
pub enum TrinoAuth {
    /// Trino's password authentication (HTTP basic).
    Basic {
        username: String,
        password: SecretString,
    },
    /// Trino's JWT or OAuth 2.0 authentication (a bearer token).
    Bearer(SecretString),
}

/// One statement to run.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    /// Who runs it (`X-Trino-User`): Trino's access rules for this user decide what it may do.
    pub user: String,
    /// One statement, without a trailing `;` (Trino refuses it).
    pub sql: String,
    /// The session's default catalog and schema, for unqualified names.
    pub catalog: Option<String>,
    pub schema: Option<String>,
    /// Rows to keep. The client stops reading and cancels the query once it has more.
    pub max_rows: usize,
}

impl QueryRequest {
    /// A request by `user` with no default catalog or schema.
    pub fn new(user: impl Into<String>, sql: impl Into<String>, max_rows: usize) -> Self {
        QueryRequest {
            user: user.into(),
            sql: sql.into(),
            catalog: None,
            schema: None,
            max_rows,
        }
    }
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// Trino's name of the type, e.g. `varchar(3)`, `bigint`, `array(integer)`.
    #[serde(rename = "type")]
    pub type_name: String,
}

/// What a statement answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryPage {
    pub query_id: String,
    pub columns: Vec<Column>,
    /// In Trino's JSON encoding, one value per column.
    pub rows: Vec<Vec<Value>>,
    /// The query had more than `max_rows` rows: `rows` holds the first `max_rows` and the query
    /// was cancelled.
    pub truncated: bool,
    /// What a statement that is not a query did, e.g. `CREATE CATALOG` or `INSERT`.
    pub update_type: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrinoError {
    #[error("`{0}` cannot be the base URL of Trino (expected http:// or https://)")]
    BaseUrl(String),
    #[error("could not set up the HTTP client for Trino")]
    Client(#[source] reqwest::Error),
    /// The request cannot be sent as it is (an empty user, a value no header can carry, a NUL in
    /// SQL text); nothing was sent.
    #[error("could not send the query to Trino: {0}")]
    InvalidRequest(String),
    /// Trino ran the statement and it failed. `kind` is Trino's `errorType`: `USER_ERROR` (bad
    /// SQL, missing object, access denied), `INTERNAL_ERROR`, `INSUFFICIENT_RESOURCES` or
    /// `EXTERNAL`; `name` is its `errorName`, e.g. `SYNTAX_ERROR` or `PERMISSION_DENIED`.
    #[error("Trino could not run the query: {name} ({kind}): {message}")]
    Query {
        name: String,
        kind: String,
        message: String,
    },
    /// No answer (refused, timed out, cut off), or 502, 503, 504 or 429 on every attempt.
    #[error("could not run the query: Trino is unavailable ({reason})")]
    Unavailable {
        reason: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    /// Any other HTTP status, e.g. 401 for wrong credentials.
    #[error("could not run the query: Trino answered HTTP {status}: {body}")]
    Status {
        status: u16,
        /// The start of the response body (at most about 2 KB).
        body: String,
    },
    /// An answer that is not a `QueryResults` document, or breaks the protocol.
    #[error("could not run the query: unexpected answer from Trino: {0}")]
    Protocol(String),
}

impl TrinoError {
    /// Temporary errors may pass on retry: no answer, a busy gateway, a 5xx, and query failures
    /// that are not the user's (Trino's own rule for retrying a failed query).
    pub fn is_temporary(&self) -> bool {
        match self {
            TrinoError::Unavailable { .. } => true,
            TrinoError::Status { status, .. } => *status >= 500 || *status == 429,
            TrinoError::Query { kind, .. } => kind != "USER_ERROR",
            _ => false,
        }
    }
}

/// What olo needs from Trino.
#[async_trait::async_trait]
pub trait Trino: Send + Sync {
    /// Runs one statement and reads its result, up to `max_rows` rows.
    async fn query(&self, request: &QueryRequest) -> Result<QueryPage, TrinoError>;
}

/// [`Trino`] over HTTP.
#[derive(Debug)]
pub struct TrinoClient {
    http: reqwest::Client,
    base: Url,
    auth: Option<TrinoAuth>,
}

impl TrinoClient {
    /// `base`: where Trino's coordinator answers, e.g. `http://trino:8080` (a path prefix is
    /// kept). `timeout` bounds each HTTP request, from connecting to reading the whole body.
    pub fn new(
        base: &str,
        timeout: Duration,
        auth: Option<TrinoAuth>,
    ) -> Result<TrinoClient, TrinoError> {
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| TrinoError::BaseUrl(base.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("olo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(TrinoError::Client)?;
        Ok(TrinoClient { http, base, auth })
    }

    fn statement_url(&self) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked: can be a base")
            .pop_if_empty()
            .extend(["v1", "statement"]);
        url
    }

    /// A `nextUri` as a URL, refused unless Trino's own origin serves it: the client sends its
    /// credentials there.
    fn next_url(&self, next_uri: &str) -> Result<Url, TrinoError> {
        let url = self
            .base
            .join(next_uri)
            .map_err(|e| TrinoError::Protocol(format!("`nextUri` `{next_uri}`: {e}")))?;
        if url.origin() != self.base.origin() {
            return Err(TrinoError::Protocol(format!(
                "`nextUri` `{next_uri}` leaves {} (behind a proxy, Trino needs \
                 `http-server.process-forwarded=true`)",
                self.base.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            None => request,
            Some(TrinoAuth::Basic { username, password }) => {
                request.basic_auth(username, Some(password.expose_secret()))
            }
            Some(TrinoAuth::Bearer(token)) => request.bearer_auth(token.expose_secret()),
        }
    }

    /// One `QueryResults` document: the request built by `request`, sent again after 502, 503,
    /// 504 (after 50–100 ms, doubling) or 429 (after its `Retry-After`), at most
    /// [`MAX_ATTEMPTS`] times.
    #[tracing::instrument(
        name = "trino",
        skip_all,
        fields(attempt = tracing::field::Empty, status = tracing::field::Empty)
    )]
    async fn results(
        &self,
        headers: &HeaderMap,
        request: impl Fn() -> RequestBuilder,
    ) -> Result<QueryResults, TrinoError> {
        let mut attempt = 1;
        loop {
            let response = self
                .authorize(request())
                .headers(headers.clone())
                .send()
                .await
                .map_err(no_answer)?;
            let status = response.status();
            let span = tracing::Span::current();
            span.record("attempt", attempt);
            span.record("status", status.as_u16());
            if status == StatusCode::OK {
                let body = response.bytes().await.map_err(no_answer)?;
                return serde_json::from_slice(&body).map_err(|e| {
                    TrinoError::Protocol(format!("not a QueryResults document: {e}"))
                });
            }
            let busy = matches!(status.as_u16(), 429 | 502 | 503 | 504);
            if busy && attempt < MAX_ATTEMPTS {
                tokio::time::sleep(retry_delay(&response, attempt)).await;
                attempt += 1;
                continue;
            }
            if busy {
                return Err(TrinoError::Unavailable {
                    reason: format!("HTTP {} on each of {attempt} attempts", status.as_u16()),
                    source: None,
                });
            }
            // The status says what went wrong; a body lost on the way only loses detail.
            let body = response.text().await.unwrap_or_default();
            return Err(TrinoError::Status {
                status: status.as_u16(),
                body: truncated(body),
            });
        }
    }

    /// Asks Trino to stop the query at `next`. Best effort: the result is already read, and Trino
    /// abandons a query nobody polls.
    async fn cancel(&self, headers: &HeaderMap, next: Url) {
        let request = self.authorize(self.http.delete(next));
        let _ = request.headers(headers.clone()).send().await;
    }
}

#[async_trait::async_trait]
impl Trino for TrinoClient {
    async fn query(&self, request: &QueryRequest) -> Result<QueryPage, TrinoError> {
        let headers = session_headers(request)?;
        let statement = self.statement_url();
        let mut results = self
            .results(&headers, || {
                self.http
                    .post(statement.clone())
                    .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(request.sql.clone())
            })
            .await?;
        let mut page = QueryPage {
            query_id: results.id.clone(),
            columns: Vec::new(),
            rows: Vec::new(),
            truncated: false,
            update_type: None,
        };
        loop {
            let next = page.add(results)?;
            let next = next.map(|uri| self.next_url(&uri)).transpose()?;
            if page.rows.len() > request.max_rows {
                page.rows.truncate(request.max_rows);
                page.truncated = true;
                if let Some(next) = next {
                    self.cancel(&headers, next).await;
                }
                return Ok(page);
            }
            let Some(next) = next else {
                return Ok(page);
            };
            results = self
                .results(&headers, || self.http.get(next.clone()))
                .await?;
        }
    }
}

impl QueryPage {
    /// Takes in one `QueryResults` document; returns its `nextUri`.
    fn add(&mut self, results: QueryResults) -> Result<Option<String>, TrinoError> {
        if let Some(error) = results.error {
            return Err(TrinoError::Query {
                name: error.error_name,
                kind: error.error_type,
                message: error.message,
            });
        }
        if let Some(columns) = results.columns {
            self.columns = columns;
        }
        if results.update_type.is_some() {
            self.update_type = results.update_type;
        }
        for row in results.data.unwrap_or_default() {
            if self.columns.is_empty() {
                return Err(TrinoError::Protocol(
                    "rows came before their columns".into(),
                ));
            }
            if row.len() != self.columns.len() {
                return Err(TrinoError::Protocol(format!(
                    "a row of {} values for {} columns",
                    row.len(),
                    self.columns.len()
                )));
            }
            self.rows.push(row);
        }
        Ok(results.next_uri)
    }
}

/// The parts of Trino's `QueryResults` the client reads (`infoUri`, `stats`, `warnings` are left).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryResults {
    id: String,
    next_uri: Option<String>,
    columns: Option<Vec<Column>>,
    data: Option<Vec<Vec<Value>>>,
    error: Option<QueryError>,
    update_type: Option<String>,
}

/// Trino's `QueryError` (`errorCode`, `errorLocation`, `failureInfo` are left).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_name: String,
    #[serde(default)]
    error_type: String,
}

/// The headers of every request of a query: who runs it, from where, and in which catalog and
/// schema.
fn session_headers(request: &QueryRequest) -> Result<HeaderMap, TrinoError> {
    if request.user.is_empty() {
        return Err(TrinoError::InvalidRequest("a query needs a user".into()));
    }
    let value = |what: &str, v: &str| {
        HeaderValue::from_str(v).map_err(|_| {
            TrinoError::InvalidRequest(format!("the {what} `{v}` cannot be an HTTP header value"))
        })
    };
    let mut headers = HeaderMap::new();
    headers.insert(USER, value("user", &request.user)?);
    headers.insert(SOURCE_HEADER, HeaderValue::from_static(SOURCE));
    if let Some(catalog) = &request.catalog {
        headers.insert(CATALOG, value("catalog", catalog)?);
    }
    if let Some(schema) = &request.schema {
        headers.insert(SCHEMA, value("schema", schema)?);
    }
    Ok(headers)
}

fn no_answer(source: reqwest::Error) -> TrinoError {
    let reason = if source.is_timeout() {
        "no answer in time"
    } else if source.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    TrinoError::Unavailable {
        reason: reason.into(),
        source: Some(source),
    }
}

/// How long to wait before sending a request again: the `Retry-After` of a 429 (capped at
/// [`MAX_RETRY_AFTER`]), otherwise 50–100 ms doubling with each attempt.
fn retry_delay(response: &Response, attempt: u32) -> Duration {
    let retry_after = (response.status() == StatusCode::TOO_MANY_REQUESTS)
        .then(|| response.headers().get(RETRY_AFTER)?.to_str().ok())
        .flatten()
        .and_then(|value| parse_retry_after(value, Utc::now()));
    match retry_after {
        Some(delay) => delay.min(MAX_RETRY_AFTER),
        None => {
            // Jitter from std's randomly keyed hasher: no dependency for one number.
            let jitter = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                % 51;
            Duration::from_millis((50 + jitter) << (attempt - 1).min(4))
        }
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (a date past is no wait).
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (date.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or_default(),
    )
}

fn truncated(mut body: String) -> String {
    if body.len() > MAX_ERROR_BODY {
        let mut end = MAX_ERROR_BODY;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
        body.push('…');
    }
    body
}

mod statement;
pub use statement::{
    create_catalog_sql, drop_catalog_sql, quote_ident, quote_literal, read_only, show_catalogs,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now: DateTime<Utc> = "2026-11-27T04:30:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Fri, 27 Nov 2026 04:30:02 GMT", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after("Fri, 27 Nov 2026 04:29:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn debug_never_shows_credentials() {
        let basic = TrinoAuth::Basic {
            username: "olo".into(),
            password: SecretString::from("s3cr3t-Pa55"),
        };
        let bearer = TrinoAuth::Bearer(SecretString::from("eyJhbGciOi.token"));
        for auth in [basic, bearer] {
            let client =
                TrinoClient::new("http://trino:8080", Duration::from_secs(1), Some(auth)).unwrap();
            let debug = format!("{client:?}");
            assert!(debug.contains("REDACTED"), "{debug}");
            assert!(
                !debug.contains("s3cr3t") && !debug.contains("eyJ"),
                "{debug}"
            );
        }
    }

    #[test]
    fn errors_say_whether_to_retry() {
        let query = |kind: &str| TrinoError::Query {
            name: "X".into(),
            kind: kind.into(),
            message: String::new(),
        };
        assert!(!query("USER_ERROR").is_temporary());
        assert!(query("INSUFFICIENT_RESOURCES").is_temporary());
        assert!(query("EXTERNAL").is_temporary());
        let status = |status| TrinoError::Status {
            status,
            body: String::new(),
        };
        assert!(status(500).is_temporary());
        assert!(!status(401).is_temporary());
        assert!(!TrinoError::Protocol(String::new()).is_temporary());
    }
}
