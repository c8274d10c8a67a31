//! Airflow 3 over its REST API v2: trigger and watch DAG runs, read task logs, pause and unpause
//! DAGs, list import errors, ask for a DAG file to be parsed again. The reconciler sees the small [`Airflow`] trait; [`AirflowClient`]
//! implements it over HTTP.
//!
//! Authentication is a JWT from `POST /auth/token`, fetched on first use and cached. When Airflow
//! rejects it (401, or 403 for a token it cannot read) the client fetches a new one once and sends
//! the request once more. Nothing else is retried here: callers decide from
//! [`AirflowError::is_temporary`].
//!
//! Ids (DAG, run, task) only ever reach a URL as percent-encoded path segments.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::ACCEPT;
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use url::Url;

mod logs;
mod model;

use logs::LogPage;
pub use model::{
    Backfill, Dag, DagRun, ImportError, NewBackfill, NewDagRun, Reprocess, TaskInstance,
};

/// How to reach Airflow. `Debug` shows the password as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct AirflowSettings {
    /// Where Airflow's API server answers, e.g. `http://127.0.0.1:8080` (a path prefix is kept).
    pub url: Url,
    pub username: String,
    pub password: SecretString,
    /// For each HTTP request, from connecting to reading the whole body.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum AirflowError {
    #[error("`{0}` cannot be the base URL of Airflow (expected http:// or https://)")]
    BaseUrl(Url),
    #[error("could not set up the HTTP client for Airflow")]
    Client(#[source] reqwest::Error),
    #[error("could not {operation}: `{id}` cannot be a segment of an Airflow URL")]
    UnaddressableId { operation: &'static str, id: String },
    #[error("could not {operation}: the request to Airflow failed")]
    Transport {
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("Airflow refused the credentials of user `{username}` (HTTP {status})")]
    Auth { username: String, status: u16 },
    #[error("could not {operation}: Airflow does not know it: {body}")]
    NotFound {
        operation: &'static str,
        body: String,
    },
    #[error(
        "could not trigger run `{run_id}` of DAG `{dag_id}`: a run with that id or with logical date {logical_date} already exists"
    )]
    Conflict {
        dag_id: String,
        run_id: String,
        logical_date: DateTime<Utc>,
    },
    #[error("could not {operation}: Airflow answered HTTP {status}: {body}")]
    Status {
        operation: &'static str,
        status: u16,
        /// The start of the response body (at most about 2 KB).
        body: String,
    },
    #[error("could not {operation}: unexpected response from Airflow")]
    Decode {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl AirflowError {
    /// Temporary errors (no answer, timeouts, 5xx, 408, 429) may pass on retry; the rest need a
    /// change on one side or the other.
    pub fn is_temporary(&self) -> bool {
        match self {
            AirflowError::Transport { source, .. } => !source.is_builder(),
            AirflowError::Status { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            _ => false,
        }
    }
}

/// What olo needs from Airflow.
#[async_trait::async_trait]
pub trait Airflow: Send + Sync {
    /// Starts a run. [`AirflowError::Conflict`] when the run id is taken.
    async fn trigger_run(&self, dag_id: &str, run: &NewDagRun<'_>) -> Result<DagRun, AirflowError>;

    async fn dag_run(&self, dag_id: &str, run_id: &str) -> Result<DagRun, AirflowError>;

    /// Every task instance of the run (all pages), each at its latest try.
    async fn task_instances(
        &self,
        dag_id: &str,
        run_id: &str,
    ) -> Result<Vec<TaskInstance>, AirflowError>;

    /// The log of one try as text, all pages (following `continuation_token`): one line per
    /// event, `timestamp LEVEL event`, an exception followed by its traceback. For a running
    /// task, the log so far (at most 100 pages).
    async fn task_log(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        try_number: i64,
        map_index: i64,
    ) -> Result<String, AirflowError>;

    /// `None` when Airflow does not know the DAG.
    async fn dag(&self, dag_id: &str) -> Result<Option<Dag>, AirflowError>;

    async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<(), AirflowError>;

    /// Re-runs the failed (and upstream-failed) tasks of a finished run: Airflow clears them and
    /// the run is queued again, each cleared task at its next try.
    async fn clear_failed_tasks(
        &self,
        dag_id: &str,
        run_id: &str,
        note: &str,
    ) -> Result<DagRun, AirflowError>;

    /// Stops a run: marks it failed (Airflow fails its running tasks and skips the rest), with
    /// a note saying who stopped it.
    async fn cancel_run(
        &self,
        dag_id: &str,
        run_id: &str,
        note: &str,
    ) -> Result<DagRun, AirflowError>;

    /// Starts a backfill; Airflow creates its runs at once and its scheduler runs them.
    /// [`AirflowError::Status`] 409 when the DAG has a backfill that has not finished.
    async fn create_backfill(
        &self,
        dag_id: &str,
        backfill: &NewBackfill<'_>,
    ) -> Result<Backfill, AirflowError>;

    /// The backfill runs of a DAG (`run_type=backfill`) whose logical dates lie between `from`
    /// and `to`, both included (all pages).
    async fn backfill_runs(
        &self,
        dag_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DagRun>, AirflowError>;

    /// Every current import error (all pages).
    async fn import_errors(&self) -> Result<Vec<ImportError>, AirflowError>;

    /// Asks Airflow's DAG processor to parse a file now, ahead of its own schedule
    /// (`PUT /api/v2/parseDagFile/{file_token}`, the token from [`Dag::file_token`]). The DAG
    /// processor takes the request within about a second and also refreshes the file's DAG
    /// bundle, which is how it finds files that are new since its last look.
    async fn reparse_dag_file(&self, file_token: &str) -> Result<(), AirflowError>;
}

/// [`Airflow`] over HTTP.
#[derive(Debug)]
pub struct AirflowClient {
    http: reqwest::Client,
    base: Url,
    username: String,
    password: SecretString,
    token: Mutex<TokenCache>,
}

/// The cached JWT. `generation` counts fetches, so that of several requests rejected with the
/// same token only the first fetches a new one.
#[derive(Debug, Default)]
struct TokenCache {
    generation: u64,
    token: Option<SecretString>,
}

/// Items per request when reading a list; Airflow caps it at its `maximum_page_limit` (100 by
/// default) and the total it reports decides when to stop.
const PAGE_SIZE: usize = 100;

/// A running task's log hands out a continuation token with every page; one that logs faster than
/// it is read would never end. Reading stops after this many pages with what it has.
const MAX_LOG_PAGES: usize = 100;

/// How much of an unexpected response body an error keeps.
const MAX_ERROR_BODY: usize = 2048;

const GET_TOKEN: &str = "get an Airflow access token";

impl AirflowClient {
    pub fn new(settings: AirflowSettings) -> Result<Self, AirflowError> {
        let AirflowSettings {
            url,
            username,
            password,
            timeout,
        } = settings;
        if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
            return Err(AirflowError::BaseUrl(url));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("olo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(AirflowError::Client)?;
        Ok(AirflowClient {
            http,
            base: url,
            username,
            password,
            token: Mutex::new(TokenCache::default()),
        })
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment. `""`, `.`
    /// and `..` are refused: a URL cannot carry them as a segment (they would be dropped or
    /// resolved, addressing a different resource).
    fn endpoint(&self, operation: &'static str, segments: &[&str]) -> Result<Url, AirflowError> {
        if let Some(id) = segments.iter().find(|s| matches!(**s, "" | "." | "..")) {
            return Err(AirflowError::UnaddressableId {
                operation,
                id: (*id).to_string(),
            });
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| AirflowError::BaseUrl(self.base.clone()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// The cached token, or a new one when there is none or the cached one is the `rejected`
    /// generation. Holding the lock while fetching makes concurrent renewals wait for one fetch.
    async fn token(&self, rejected: Option<u64>) -> Result<(u64, SecretString), AirflowError> {
        let mut cache = self.token.lock().await;
        if let Some(token) = &cache.token {
            if rejected != Some(cache.generation) {
                return Ok((cache.generation, token.clone()));
            }
        }
        cache.token = None;
        let token = self.fetch_token().await?;
        cache.generation += 1;
        cache.token = Some(token.clone());
        Ok((cache.generation, token))
    }

    async fn fetch_token(&self) -> Result<SecretString, AirflowError> {
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: SecretString,
        }

        let url = self.endpoint(GET_TOKEN, &["auth", "token"])?;
        let credentials = json!({
            "username": self.username,
            "password": self.password.expose_secret(),
        });
        let response = self
            .http
            .post(url)
            .header(ACCEPT, "application/json")
            .json(&credentials)
            .send()
            .await
            .map_err(|source| AirflowError::Transport {
                operation: GET_TOKEN,
                source,
            })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(AirflowError::Auth {
                username: self.username.clone(),
                status: status.as_u16(),
            });
        }
        let token: TokenResponse = read_json(GET_TOKEN, response).await?;
        Ok(token.access_token)
    }

    /// Sends the request built by `request` with the token, renewing the token and sending once
    /// more if Airflow rejects it. Returns the response whatever its status. In an `airflow`
    /// span (the operation, the status Airflow answered).
    #[tracing::instrument(
        name = "airflow",
        skip_all,
        fields(operation = operation, status = tracing::field::Empty)
    )]
    async fn send(
        &self,
        operation: &'static str,
        request: impl Fn() -> RequestBuilder,
    ) -> Result<Response, AirflowError> {
        let (generation, token) = self.token(None).await?;
        let response = self.attempt(operation, request(), &token).await?;
        if !matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            tracing::Span::current().record("status", response.status().as_u16());
            return Ok(response);
        }
        let (_, token) = self.token(Some(generation)).await?;
        let response = self.attempt(operation, request(), &token).await?;
        tracing::Span::current().record("status", response.status().as_u16());
        Ok(response)
    }

    async fn attempt(
        &self,
        operation: &'static str,
        request: RequestBuilder,
        token: &SecretString,
    ) -> Result<Response, AirflowError> {
        request
            .bearer_auth(token.expose_secret())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|source| AirflowError::Transport { operation, source })
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: &Url,
    ) -> Result<T, AirflowError> {
        let response = self.send(operation, || self.http.get(url.clone())).await?;
        read_json(operation, response).await
    }

    /// Every item of a list endpoint, reading pages by `limit` and `offset`.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: &Url,
    ) -> Result<Vec<T>, AirflowError> {
        let mut items = Vec::new();
        loop {
            let mut page_url = url.clone();
            page_url
                .query_pairs_mut()
                .append_pair("limit", &PAGE_SIZE.to_string())
                .append_pair("offset", &items.len().to_string());
            let page: Page<T> = self.get_json(operation, &page_url).await?;
            let received = page.items.len();
            items.extend(page.items);
            let done = received == 0
                || match page.total_entries {
                    Some(total) => items.len() as u64 >= total,
                    None => received < PAGE_SIZE,
                };
            if done {
                return Ok(items);
            }
        }
    }
}

/// One page of a list endpoint; the items' key depends on the endpoint.
#[derive(Deserialize)]
struct Page<T> {
    #[serde(alias = "task_instances", alias = "import_errors", alias = "dag_runs")]
    items: Vec<T>,
    total_entries: Option<u64>,
}

/// The body of a successful response as `T`; any other status as an error.
async fn read_json<T: DeserializeOwned>(
    operation: &'static str,
    response: Response,
) -> Result<T, AirflowError> {
    let response = success(operation, response).await?;
    let body = response
        .bytes()
        .await
        .map_err(|source| AirflowError::Transport { operation, source })?;
    serde_json::from_slice(&body).map_err(|source| AirflowError::Decode { operation, source })
}

/// The response if its status is a success; otherwise [`AirflowError::NotFound`] or
/// [`AirflowError::Status`] with the start of its body.
async fn success(operation: &'static str, response: Response) -> Result<Response, AirflowError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    // The status says what went wrong; a body lost on the way only loses detail.
    let body = truncated(response.text().await.unwrap_or_default());
    Err(if status == StatusCode::NOT_FOUND {
        AirflowError::NotFound { operation, body }
    } else {
        AirflowError::Status {
            operation,
            status: status.as_u16(),
            body,
        }
    })
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

#[async_trait::async_trait]
impl Airflow for AirflowClient {
    async fn trigger_run(&self, dag_id: &str, run: &NewDagRun<'_>) -> Result<DagRun, AirflowError> {
        const OPERATION: &str = "trigger a DAG run";
        let url = self.endpoint(OPERATION, &["api", "v2", "dags", dag_id, "dagRuns"])?;
        let run_id = run.run_id;
        let mut body = json!({
            "dag_run_id": run_id,
            "logical_date": run.logical_date.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "conf": run.conf,
        });
        if let Some(note) = run.note {
            body["note"] = json!(note);
        }
        let response = self
            .send(OPERATION, || self.http.post(url.clone()).json(&body))
            .await?;
        if response.status() == StatusCode::CONFLICT {
            return Err(AirflowError::Conflict {
                dag_id: dag_id.to_string(),
                run_id: run_id.to_string(),
                logical_date: run.logical_date,
            });
        }
        read_json(OPERATION, response).await
    }

    async fn dag_run(&self, dag_id: &str, run_id: &str) -> Result<DagRun, AirflowError> {
        const OPERATION: &str = "read a DAG run";
        let url = self.endpoint(OPERATION, &["api", "v2", "dags", dag_id, "dagRuns", run_id])?;
        self.get_json(OPERATION, &url).await
    }

    async fn task_instances(
        &self,
        dag_id: &str,
        run_id: &str,
    ) -> Result<Vec<TaskInstance>, AirflowError> {
        const OPERATION: &str = "list the task instances of a DAG run";
        let url = self.endpoint(
            OPERATION,
            &[
                "api",
                "v2",
                "dags",
                dag_id,
                "dagRuns",
                run_id,
                "taskInstances",
            ],
        )?;
        self.all_pages(OPERATION, &url).await
    }

    async fn task_log(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        try_number: i64,
        map_index: i64,
    ) -> Result<String, AirflowError> {
        const OPERATION: &str = "read a task log";
        let try_number = try_number.to_string();
        let url = self.endpoint(
            OPERATION,
            &[
                "api",
                "v2",
                "dags",
                dag_id,
                "dagRuns",
                run_id,
                "taskInstances",
                task_id,
                "logs",
                &try_number,
            ],
        )?;
        let mut text = String::new();
        let mut continuation: Option<String> = None;
        for _ in 0..MAX_LOG_PAGES {
            let mut page_url = url.clone();
            {
                let mut query = page_url.query_pairs_mut();
                query
                    .append_pair("full_content", "true")
                    .append_pair("map_index", &map_index.to_string());
                if let Some(token) = &continuation {
                    query.append_pair("token", token);
                }
            }
            let page: LogPage = self.get_json(OPERATION, &page_url).await?;
            let received = page.content.len();
            for line in &page.content {
                line.write_to(&mut text);
            }
            // A running task's log keeps handing out tokens: stop once a page brings nothing.
            match page.continuation_token {
                Some(token) if received > 0 => continuation = Some(token),
                _ => break,
            }
        }
        Ok(text)
    }

    async fn dag(&self, dag_id: &str) -> Result<Option<Dag>, AirflowError> {
        const OPERATION: &str = "read a DAG";
        let url = self.endpoint(OPERATION, &["api", "v2", "dags", dag_id])?;
        let response = self.send(OPERATION, || self.http.get(url.clone())).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        read_json(OPERATION, response).await.map(Some)
    }

    async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<(), AirflowError> {
        let operation = if paused {
            "pause a DAG"
        } else {
            "unpause a DAG"
        };
        let url = self.endpoint(operation, &["api", "v2", "dags", dag_id])?;
        let body = json!({ "is_paused": paused });
        let response = self
            .send(operation, || self.http.patch(url.clone()).json(&body))
            .await?;
        success(operation, response).await.map(drop)
    }

    async fn cancel_run(
        &self,
        dag_id: &str,
        run_id: &str,
        note: &str,
    ) -> Result<DagRun, AirflowError> {
        const OPERATION: &str = "cancel a DAG run";
        let url = self.endpoint(OPERATION, &["api", "v2", "dags", dag_id, "dagRuns", run_id])?;
        let body = json!({ "state": "failed", "note": note });
        let response = self
            .send(OPERATION, || self.http.patch(url.clone()).json(&body))
            .await?;
        read_json(OPERATION, response).await
    }

    async fn clear_failed_tasks(
        &self,
        dag_id: &str,
        run_id: &str,
        note: &str,
    ) -> Result<DagRun, AirflowError> {
        const OPERATION: &str = "clear the failed tasks of a DAG run";
        let url = self.endpoint(
            OPERATION,
            &["api", "v2", "dags", dag_id, "dagRuns", run_id, "clear"],
        )?;
        let body = json!({ "dry_run": false, "only_failed": true, "note": note });
        let response = self
            .send(OPERATION, || self.http.post(url.clone()).json(&body))
            .await?;
        read_json(OPERATION, response).await
    }

    async fn create_backfill(
        &self,
        dag_id: &str,
        backfill: &NewBackfill<'_>,
    ) -> Result<Backfill, AirflowError> {
        const OPERATION: &str = "start a backfill";
        let url = self.endpoint(OPERATION, &["api", "v2", "backfills"])?;
        let body = json!({
            "dag_id": dag_id,
            "from_date": backfill.from.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "to_date": backfill.to.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "run_backwards": backfill.run_backwards,
            "dag_run_conf": backfill.conf,
            "reprocess_behavior": backfill.reprocess,
            "max_active_runs": backfill.max_active_runs,
        });
        let response = self
            .send(OPERATION, || self.http.post(url.clone()).json(&body))
            .await?;
        read_json(OPERATION, response).await
    }

    async fn backfill_runs(
        &self,
        dag_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DagRun>, AirflowError> {
        const OPERATION: &str = "list the runs of a backfill";
        let mut url = self.endpoint(OPERATION, &["api", "v2", "dags", dag_id, "dagRuns"])?;
        url.query_pairs_mut()
            .append_pair("run_type", "backfill")
            .append_pair(
                "logical_date_gte",
                &from.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            )
            .append_pair(
                "logical_date_lte",
                &to.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            )
            .append_pair("order_by", "logical_date");
        self.all_pages(OPERATION, &url).await
    }

    async fn import_errors(&self) -> Result<Vec<ImportError>, AirflowError> {
        const OPERATION: &str = "list import errors";
        let url = self.endpoint(OPERATION, &["api", "v2", "importErrors"])?;
        self.all_pages(OPERATION, &url).await
    }

    async fn reparse_dag_file(&self, file_token: &str) -> Result<(), AirflowError> {
        const OPERATION: &str = "ask Airflow to parse a DAG file";
        let url = self.endpoint(OPERATION, &["api", "v2", "parseDagFile", file_token])?;
        let response = self.send(OPERATION, || self.http.put(url.clone())).await?;
        success(OPERATION, response).await.map(drop)
    }
}
