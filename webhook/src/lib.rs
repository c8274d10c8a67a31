//! olo's one axum server: the GitHub webhook receiver, the REST API (`/api/v1`, documented in
//! `openapi.json`), health, readiness and Prometheus metrics.
//!
//! Requests never reconcile: the webhook verifies, records the delivery, puts the work on the
//! controller's [`Queue`] (`olo_reconciler::controller`) and answers 202; the branch's one
//! worker (the controller, run by the `olo` binary) does the rest.

pub mod access;
pub mod api;
pub mod auth;
pub mod caller;
pub mod connections;
pub mod dashboard;
mod delivery;
pub mod error;
pub mod github;
pub mod lineage;
pub mod marquez;
pub mod metrics;
pub mod oidc;
pub mod security_headers;
pub mod signin;
pub mod sql;
pub mod trace;
pub mod writes;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use olo_reconciler::catalog::Catalog;
use olo_reconciler::store::Store;
use olo_reconciler::targets::airflow::Airflow;
use secrecy::SecretString;

pub use auth::ApiToken;
use metrics::Metrics;
use olo_reconciler::controller::Queue;

/// What the server needs from olo's settings.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// The tracked branch: pushes to it reconcile, pull requests against it are planned.
    pub branch: String,
    /// The repository olo follows, as the overview shows it: its URL without credentials, or
    /// its local folder.
    pub source: String,
    /// The GitHub webhook secret; without it the webhook endpoint refuses every delivery.
    pub webhook_secret: Option<SecretString>,
    /// `owner/name`: deliveries about other repositories are ignored (any when unset).
    pub repository: Option<String>,
    pub tokens: Vec<ApiToken>,
    /// Whether reads (GET) need a token too; writes always do.
    pub read_requires_token: bool,
    /// Airflow's web UI (the dashboard links DAG runs there); unset: no links.
    pub airflow_ui: Option<String>,
    /// Timeouts and caps against slow or greedy clients.
    pub limits: connections::Limits,
}

/// Files the dashboard shows beside the catalog. Blocking (git objects, files); the dashboard
/// calls it off the async threads.
pub trait Files: Send + Sync {
    /// A file of the config repository at a commit (a path from the catalog), as text.
    fn spec(&self, revision: &str, path: &str) -> Option<String>;
    /// A rendered resource as deployed in the sink (`dags/<dag_id>.py`), as text.
    fn deployed(&self, name: &str) -> Option<String>;
    /// The files a commit changed in the config repository against its first parent, and how
    /// many more were left out (`None` when the commit cannot be read).
    fn commit_diff(
        &self,
        revision: &str,
    ) -> Option<(Vec<olo_reconciler::snapshot::FileDiff>, usize)>;
}

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub queue: Arc<Queue>,
    pub metrics: Arc<Metrics>,
    pub config: ServerConfig,
    pub airflow: Option<Arc<dyn Airflow>>,
    /// MLflow, for the MLflow runs of olo's runs (unset: no links).
    pub mlflow: Option<Arc<dyn olo_reconciler::targets::mlflow::Mlflow>>,
    /// The lineage graph (declared and observed) and its writer.
    pub lineage: Arc<olo_reconciler::lineage::live::Lineage>,
    /// Spec and deployed files for the job page (unset: the page says they are not available).
    pub files: Option<Arc<dyn Files>>,
    /// Trino, for the SQL runner (unset: `POST /api/v1/sql` answers 503).
    pub trino: Option<Arc<dyn olo_reconciler::targets::trino::Trino>>,
    /// Most rows one query of the SQL runner returns.
    pub sql_max_rows: usize,
    /// The lakehouse target, read for the workspace page's live namespaces and tables.
    pub lakehouse: Option<olo_reconciler::lakehouse::apply::Lakehouse>,
    /// What the live commit wants of the lakehouse (set by the worker).
    lake: RwLock<Arc<olo_reconciler::lakehouse::Desired>>,
    /// The OpenID provider whose tokens (and dashboard sign-ins) olo accepts.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// Workspaces and jobs of the last valid commit (set by the worker).
    catalog: RwLock<Option<Arc<Catalog>>>,
    /// Set once the first reconcile has finished.
    ready: AtomicBool,
    /// This replica's part: [`Role::Single`], or leader / follower among replicas.
    role: std::sync::atomic::AtomicU8,
    /// Writes through the API (`api.writes`); unset: refused like `off`.
    pub writes: Option<writes::Writes>,
    /// Refused anonymous requests, audited as summaries per source and interval.
    pub denials: caller::Denials,
    /// Large webhook bodies being read ([`connections::Limits::large_bodies`]).
    large_bodies: Arc<tokio::sync::Semaphore>,
}

/// A replica's part when several `olo serve` share one PostgreSQL store.
pub use olo_reconciler::controller::Role;

/// What the replicas' controller sets: the role, and on a follower the revision the leader
/// applied.
impl olo_reconciler::controller::Serving for AppState {
    fn set_role(&self, role: Role) {
        AppState::set_role(self, role);
    }

    fn catalog(&self) -> Option<Arc<Catalog>> {
        AppState::catalog(self)
    }

    fn serve(&self, catalog: Arc<Catalog>, lake: Arc<olo_reconciler::lakehouse::Desired>) {
        self.set_catalog(Some(catalog));
        self.set_lake(lake);
        self.set_ready();
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        config: ServerConfig,
        airflow: Option<Arc<dyn Airflow>>,
    ) -> AppState {
        AppState {
            store,
            queue: Arc::new(Queue::default()),
            metrics: Arc::new(Metrics::default()),
            airflow,
            lineage: Arc::default(),
            mlflow: None,
            files: None,
            trino: None,
            sql_max_rows: sql::DEFAULT_MAX_ROWS,
            lakehouse: None,
            lake: RwLock::default(),
            oidc: None,
            catalog: RwLock::new(None),
            ready: AtomicBool::new(false),
            role: std::sync::atomic::AtomicU8::new(Role::Single as u8),
            writes: None,
            denials: caller::Denials::default(),
            large_bodies: Arc::new(tokio::sync::Semaphore::new(
                config.limits.large_bodies.max(1),
            )),
            config,
        }
    }

    pub fn with_mlflow(
        mut self,
        mlflow: Arc<dyn olo_reconciler::targets::mlflow::Mlflow>,
    ) -> AppState {
        self.mlflow = Some(mlflow);
        self
    }

    /// The MLflow experiments a run's job logs to, in the live configuration.
    pub fn mlflow_experiments(&self, run: &olo_reconciler::store::Run) -> Vec<String> {
        self.catalog()
            .and_then(|c| {
                c.job(&run.workspace, &run.job)
                    .map(|j| j.mlflow_experiments())
            })
            .unwrap_or_default()
    }

    /// The MLflow runs tagged with `run` in `experiments` (see [`AppState::mlflow_experiments`]);
    /// `None` when MLflow is not configured.
    pub async fn mlflow_runs(
        &self,
        run: &olo_reconciler::store::Run,
        experiments: &[String],
    ) -> Option<
        Result<
            Vec<olo_reconciler::targets::mlflow::MlflowRun>,
            olo_reconciler::targets::mlflow::MlflowError,
        >,
    > {
        let mlflow = self.mlflow.as_ref()?;
        if experiments.is_empty() {
            return Some(Ok(Vec::new()));
        }
        Some(mlflow.runs_for(&run.airflow_run_id, experiments).await)
    }

    /// The SQL runner's Trino, and the most rows one query returns.
    pub fn with_trino(
        mut self,
        trino: Arc<dyn olo_reconciler::targets::trino::Trino>,
        max_rows: usize,
    ) -> AppState {
        self.trino = Some(trino);
        self.sql_max_rows = max_rows;
        self
    }

    pub fn with_lakehouse(
        mut self,
        lakehouse: Option<olo_reconciler::lakehouse::apply::Lakehouse>,
    ) -> AppState {
        self.lakehouse = lakehouse;
        self
    }

    pub fn set_lake(&self, lake: Arc<olo_reconciler::lakehouse::Desired>) {
        *self.lake.write().expect("lake lock") = lake;
    }

    /// A workspace's lakehouse as it is now (bounded: a slow catalog cannot hold a page);
    /// `None` without a lakehouse target.
    pub async fn live_lakehouse(
        &self,
        workspace: &str,
    ) -> Option<Result<olo_reconciler::lakehouse::apply::LiveLakehouse, String>> {
        let lakehouse = self.lakehouse.as_ref()?;
        let lake = self.lake.read().expect("lake lock").clone();
        let read = lakehouse.live(&lake, workspace);
        Some(
            match tokio::time::timeout(std::time::Duration::from_secs(5), read).await {
                Ok(Ok(live)) => Ok(live),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the catalog did not answer within 5 s".into()),
            },
        )
    }

    pub fn with_oidc(mut self, oidc: Arc<oidc::Oidc>) -> AppState {
        self.oidc = Some(oidc);
        self
    }

    pub fn with_writes(mut self, writes: writes::Writes) -> AppState {
        self.writes = Some(writes);
        self
    }

    pub fn with_files(mut self, files: Arc<dyn Files>) -> AppState {
        self.files = Some(files);
        self
    }

    /// Runs in Airflow, recorded in this server's store.
    pub fn runs(&self) -> olo_reconciler::runs::Runs<'_> {
        olo_reconciler::runs::Runs::new(self.store.as_ref(), self.airflow.as_deref())
    }

    pub fn catalog(&self) -> Option<Arc<Catalog>> {
        self.catalog.read().expect("catalog lock").clone()
    }

    pub fn set_catalog(&self, catalog: Option<Arc<Catalog>>) {
        *self.catalog.write().expect("catalog lock") = catalog;
    }

    /// What a reconcile changes for the server: its metrics, and the workspaces, jobs and
    /// lakehouse the API serves (those of `engine`'s last valid commit).
    pub fn record_reconcile(
        &self,
        r: &olo_reconciler::controller::Reconciled,
        engine: &olo_reconciler::engine::Engine,
    ) {
        self.metrics.record_reconcile(r, &engine.phases);
        self.set_catalog(engine.catalog());
        self.set_lake(engine.lake());
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Sets this replica's role, and the `olo_leader` and `olo_leadership_changes_total`
    /// metrics with it.
    pub fn set_role(&self, role: Role) {
        let before = self.role.swap(role as u8, Ordering::AcqRel);
        self.metrics.leader.set(i64::from(role != Role::Follower));
        if role == Role::Leader && before != Role::Leader as u8 {
            self.metrics.leadership_changes.inc();
        }
    }

    pub fn role(&self) -> Role {
        match self.role.load(Ordering::Acquire) {
            1 => Role::Leader,
            2 => Role::Follower,
            _ => Role::Single,
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let body_read = state.config.limits.body_read;
    Router::new()
        .route(
            "/webhooks/github",
            // The body is read by the handler (`read_delivery`): its own cap and deadline.
            post(delivery::github_webhook),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .nest(
            "/api/v1",
            api::routes()
                .merge(writes::routes())
                .merge(marquez::routes()),
        )
        .merge(dashboard::routes())
        .merge(signin::routes())
        .layer(axum::middleware::from_fn_with_state(
            body_read,
            connections::body_deadline,
        ))
        .layer(axum::middleware::from_fn(error::framework_rejections))
        .layer(axum::middleware::from_fn(connections::request_limits))
        .layer(axum::middleware::from_fn(security_headers::add))
        .layer(axum::middleware::from_fn(trace::trace_request))
        .with_state(state)
}

/// Serves until the future `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flushing = state.clone();
    let flush = tokio::spawn(async move {
        let mut every = tokio::time::interval(flushing.denials.interval());
        loop {
            every.tick().await;
            flushing.denials.flush(flushing.store.as_ref()).await;
        }
    });
    let limits = state.config.limits;
    let served = connections::serve(listener, router(state), limits, shutdown).await;
    flush.abort();
    served
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if let Err(e) = state.store.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: state store unreachable ({e})\n"),
        )
            .into_response();
    }
    if !state.is_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first reconcile has not finished (a follower: the leader has applied nothing yet)\n",
        )
            .into_response();
    }
    match state.role() {
        Role::Single => "ready\n".into_response(),
        role => format!("ready ({})\n", role.as_str()).into_response(),
    }
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    state
        .metrics
        .lineage_events_read_back
        .set(i64::try_from(state.lineage.events_read_back()).unwrap_or(i64::MAX));
    let refused = state.lineage.observed().columns().refused();
    state
        .metrics
        .lineage_column_fields_refused
        .set(i64::try_from(refused).unwrap_or(i64::MAX));
    if let Ok(counts) = state.store.run_counts().await {
        state.metrics.runs.clear();
        for (s, n) in counts {
            state
                .metrics
                .runs
                .get_or_create(&metrics::StateLabels { state: s })
                .set(n);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{HeaderMap, Request};
    use olo_reconciler::controller::{Trigger, Work};
    use serde_json::Value;
    use tower::ServiceExt as _;

    use super::*;

    async fn app() -> Router {
        let store = olo_reconciler::store::open("sqlite::memory:")
            .await
            .unwrap();
        router(Arc::new(AppState::new(
            Arc::from(store),
            ServerConfig::default(),
            None,
        )))
    }

    async fn call(method: &str, uri: &str) -> (StatusCode, HeaderMap, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let response = app().await.oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, json)
    }

    #[tokio::test]
    async fn framework_rejections_answer_in_the_error_shape() {
        for (method, uri, status, code) in [
            ("GET", "/api/v1/runs/not-a-number", 400, "bad_request"),
            ("GET", "/api/v1/workspaces?limit=many", 400, "bad_request"),
            ("PUT", "/api/v1/status", 405, "method_not_allowed"),
            ("GET", "/api/v1/no/such/route", 404, "not_found"),
            ("GET", "/webhooks/github", 405, "method_not_allowed"),
        ] {
            let (got, headers, body) = call(method, uri).await;
            assert_eq!(got.as_u16(), status, "{method} {uri}: {body}");
            assert_eq!(body["error"]["code"], code, "{method} {uri}: {body}");
            assert!(
                body["error"]["id"]
                    .as_str()
                    .is_some_and(|i| i.starts_with("err_")),
                "{body}"
            );
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{body}"
            );
            if status == 405 {
                assert!(headers.contains_key("allow"), "{method} {uri}");
            }
        }
    }

    /// A push to the tracked branch, signed, as GitHub delivers it.
    fn push_delivery(id: &str) -> Request<Body> {
        let body = serde_json::to_vec(&serde_json::json!({
            "ref": "refs/heads/main",
            "after": "a".repeat(40),
            "repository": { "full_name": "acme/lake", "html_url": "https://github.com/acme/lake" },
        }))
        .unwrap();
        Request::builder()
            .method("POST")
            .uri("/webhooks/github")
            .header("x-github-event", "push")
            .header("x-github-delivery", id)
            .header("x-hub-signature-256", github::sign(b"s3cret", &body))
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn among_replicas_a_delivery_and_its_work_are_one_write_to_the_store() {
        let store: Arc<dyn Store> = Arc::from(
            olo_reconciler::store::open("sqlite::memory:")
                .await
                .unwrap(),
        );
        let config = ServerConfig {
            branch: "main".into(),
            webhook_secret: Some(SecretString::from("s3cret")),
            ..ServerConfig::default()
        };
        let state = Arc::new(AppState::new(store.clone(), config, None));
        // Alone: the work goes on the in-memory queue, nothing on the store's.
        let answer = router(state.clone())
            .oneshot(push_delivery("d-1"))
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        assert_eq!(state.queue.take().reconcile, Some(Trigger::Push));
        assert!(store.take_work(10).await.unwrap().is_empty());
        // A follower: the store has the delivery and its work, the memory nothing to lose.
        state.set_role(Role::Follower);
        for _ in 0..2 {
            let answer = router(state.clone())
                .oneshot(push_delivery("d-2"))
                .await
                .unwrap();
            assert!(answer.status().is_success(), "{}", answer.status());
        }
        assert_eq!(state.queue.take().reconcile, None);
        let work = store.take_work(10).await.unwrap();
        let work: Vec<Work> = work
            .into_iter()
            .map(|(kind, payload)| Work::from_row(&kind, payload).unwrap())
            .collect();
        assert_eq!(
            work,
            [Work::Reconcile {
                reason: Trigger::Push
            }],
            "one piece of work for a delivery sent twice"
        );
    }

    #[tokio::test]
    async fn every_response_forbids_framing_sniffing_and_foreign_scripts() {
        for uri in ["/healthz", "/api/v1/status", "/", "/no-such-page"] {
            let (_, headers, _) = call("GET", uri).await;
            assert_eq!(headers["x-frame-options"], "DENY", "{uri}");
            assert_eq!(headers["x-content-type-options"], "nosniff", "{uri}");
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(
                csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
                "{uri}: {csp}"
            );
        }
    }
}
