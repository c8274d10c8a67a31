//! The read-only dashboard: server-rendered HTML at `/`, from the same state store and live
//! catalog as the REST API. It works without JavaScript and fetches nothing from the internet:
//! the stylesheet is embedded and served at [`STYLESHEET`].
//!
//! Templates are embedded and strict (an undefined variable is an error) and escape every value
//! as HTML (minijinja's auto-escaping for `.html` templates).

use std::sync::{Arc, LazyLock};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use minijinja::value::Serde;
use minijinja::{context, Environment, UndefinedBehavior, Value};
use olo_reconciler::catalog::Catalog;
use olo_reconciler::store::{is_terminal_run_state, RunFilter, StoreError, TaskInstanceRow};
use olo_reconciler::targets::airflow::AirflowError;
use serde::{Deserialize, Serialize};

use crate::{auth, AppState};

/// Where the embedded stylesheet is served.
pub const STYLESHEET: &str = "/assets/olo.css";
const CSS: &str = include_str!("dashboard/style.css");

/// Rows per page of the paged lists.
const PAGE: u32 = 50;
/// Newest runs shown on a job's page.
const JOB_RUNS: u32 = 10;
/// Seconds between reloads of a log page while its run is not finished.
const LOG_REFRESH_SECONDS: u32 = 5;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("dashboard/base.html")),
    ("macros.html", include_str!("dashboard/macros.html")),
    ("overview.html", include_str!("dashboard/overview.html")),
    ("revisions.html", include_str!("dashboard/revisions.html")),
    ("revision.html", include_str!("dashboard/revision.html")),
    ("audit.html", include_str!("dashboard/audit.html")),
    ("workspaces.html", include_str!("dashboard/workspaces.html")),
    ("workspace.html", include_str!("dashboard/workspace.html")),
    ("job.html", include_str!("dashboard/job.html")),
    ("runs.html", include_str!("dashboard/runs.html")),
    ("run.html", include_str!("dashboard/run.html")),
    ("log.html", include_str!("dashboard/log.html")),
    ("lineage.html", include_str!("dashboard/lineage.html")),
    ("error.html", include_str!("dashboard/error.html")),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("dashboard template {name} does not parse: {e:#}"));
    }
    env.add_filter("short", |s: String| short_sha(&s).to_string());
    env.add_filter("first_line", |s: String| first_line(&s).to_string());
    env.add_filter("tone", |s: String| tone(&s));
    env.add_filter("datetime", |s: String| {
        parse_time(&s).map_or(s, |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    });
    // Relative to the page's `now` (set by `render`), so one page says one time throughout.
    env.add_filter("ago", |state: &minijinja::State, s: String| {
        let now = state
            .lookup("now")
            .and_then(|v| v.as_str().and_then(parse_time))
            .unwrap_or_else(Utc::now);
        parse_time(&s).map_or_else(String::new, |t| ago(t, now))
    });
    env.add_filter("duration", |secs: Option<f64>| {
        secs.map_or_else(|| "—".to_string(), duration)
    });
    env
});

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(overview))
        .route(STYLESHEET, get(stylesheet))
        .route("/revisions", get(revisions))
        .route("/revisions/{sha}", get(revision))
        .route("/audit", get(audit))
        .route("/workspaces", get(workspaces))
        .route("/workspaces/{ws}", get(workspace))
        .route("/workspaces/{ws}/jobs/{job}", get(job))
        .route("/runs", get(runs))
        .route("/runs/{id}", get(run))
        .route("/runs/{id}/tasks/{task}/logs/{try_number}", get(task_log))
        .route("/lineage", get(lineage_page))
}

// ---------------------------------------------------------------------------------------------
// Pure helpers (unit-tested below)

/// The first 8 characters of a commit sha (all of a shorter string).
pub fn short_sha(sha: &str) -> &str {
    sha.char_indices().nth(8).map_or(sha, |(i, _)| &sha[..i])
}

pub fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim_end()
}

/// The colour family of a state, for badges: `ok`, `busy`, `bad`, `warn` or `muted`.
pub fn tone(state: &str) -> &'static str {
    match state.to_ascii_lowercase().as_str() {
        "ready" | "success" | "applied" | "create" | "finished" => "ok",
        "reconciling" | "running" | "queued" | "applying" | "scheduled" | "restarting"
        | "deferred" | "update" => "busy",
        "stalled" | "failed" | "invalid" | "upstream_failed" | "error" | "delete" | "killed" => {
            "bad"
        }
        "up_for_retry" | "up_for_reschedule" | "keep" | "warning" => "warn",
        _ => "muted",
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// "just now", "5 min ago", "3 h ago", "2 d ago" (or "in …" for a time ahead of `now`).
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    let text = match n {
        0..=44 => return "just now".to_string(),
        45..=5399 => format!("{} min", (n + 30) / 60),
        5400..=129_599 => format!("{} h", (n + 1800) / 3600),
        _ => format!("{} d", (n + 43_200) / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// "850 ms", "42.0 s", "3m 05s", "2h 01m".
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "—".to_string();
    }
    if secs < 1.0 {
        return format!("{} ms", (secs * 1000.0).round() as u64);
    }
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let s = secs.round() as u64;
    if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// One bar of a run's timeline: where it starts and how wide it is, in percent of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub task_id: String,
    pub map_index: i64,
    pub try_number: i64,
    pub state: String,
    pub left: f64,
    pub width: f64,
    pub duration_seconds: Option<f64>,
    pub started: bool,
}

/// The timeline (Gantt) of a run's task instances: from the first start to the last end (or
/// `now` for tries still running). Tries that never started get no bar.
pub fn timeline(tis: &[TaskInstanceRow], now: DateTime<Utc>) -> (Vec<Bar>, f64) {
    let spans: Vec<Option<(DateTime<Utc>, DateTime<Utc>)>> = tis
        .iter()
        .map(|t| t.started_at.map(|s| (s, t.ended_at.unwrap_or(now).max(s))))
        .collect();
    let start = spans.iter().flatten().map(|(s, _)| *s).min();
    let end = spans.iter().flatten().map(|(_, e)| *e).max();
    let total = match (start, end) {
        (Some(s), Some(e)) => ((e - s).num_milliseconds() as f64 / 1000.0).max(0.001),
        _ => 0.0,
    };
    let bars = tis
        .iter()
        .zip(&spans)
        .map(|(t, span)| {
            let (left, width) = match (span, start) {
                (Some((s, e)), Some(first)) => {
                    let left = (*s - first).num_milliseconds() as f64 / 1000.0 / total * 100.0;
                    let width = (*e - *s).num_milliseconds() as f64 / 1000.0 / total * 100.0;
                    (
                        round1(left),
                        round1(width.max(0.5)).min(100.0 - round1(left)),
                    )
                }
                _ => (0.0, 0.0),
            };
            Bar {
                task_id: t.task_id.clone(),
                map_index: t.map_index,
                try_number: t.try_number,
                state: t.state.clone().unwrap_or_default(),
                left,
                width,
                duration_seconds: t.duration_seconds,
                started: span.is_some(),
            }
        })
        .collect();
    (bars, total)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The link to a file of the config repository at a commit, when the repository is known.
pub fn file_url(repository: Option<&str>, revision: Option<&str>, path: &str) -> Option<String> {
    let (repo, rev) = (repository?, revision?);
    Some(format!("https://github.com/{repo}/blob/{rev}/{path}"))
}

// ---------------------------------------------------------------------------------------------
// Rendering and errors

/// A page that could not be shown, rendered as an HTML error page with its status.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl PageError {
    fn not_found(message: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            message: message.into(),
        }
    }

    fn internal(cause: &dyn std::fmt::Display) -> PageError {
        let id = format!("err_{}", uuid::Uuid::new_v4().simple());
        // The cause (paths, SQL) goes to the log, not to the page.
        eprintln!("error {id}: dashboard: {cause:#}");
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Internal error",
            message: format!(
                "The page could not be made; the server log has the cause under {id}."
            ),
        }
    }

    fn not_ready() -> PageError {
        PageError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "No configuration yet",
            message: "olo has not read a valid commit yet; the overview shows why.".into(),
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        if e.is_temporary() {
            PageError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "State store unavailable",
                message: "The state store is not reachable; try again.".into(),
            }
        } else {
            PageError::internal(&e)
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = render(
            "error.html",
            context! {
                nav => "",
                status => self.status.as_u16(),
                title => self.title,
                message => self.message,
            },
        );
        match body {
            Ok(html) => (self.status, html).into_response(),
            Err(e) => e.into_response(),
        }
    }
}

type PageResult = Result<Html<String>, PageError>;

/// A serializable value (store rows, catalog views) for a template context.
fn ser<T: Serialize>(value: &T) -> Value {
    Value::from(Serde(value))
}

fn render(template: &str, ctx: Value) -> PageResult {
    render_at(template, ctx, Utc::now())
}

/// [`render`] as of `now` (what relative times count from).
fn render_at(template: &str, ctx: Value, now: DateTime<Utc>) -> PageResult {
    let tmpl = ENV
        .get_template(template)
        .map_err(|e| PageError::internal(&e))?;
    tmpl.render(context! { now => now.to_rfc3339(), ..ctx })
        .map(Html)
        .map_err(|e| PageError::internal(&format!("template {template}: {e:#}")))
}

/// Reads are refused when the server requires a token for them (a browser sends none).
fn read_access(state: &AppState, headers: &HeaderMap) -> Result<(), PageError> {
    if state.config.read_requires_token && auth::caller(&state.config.tokens, headers).is_none() {
        return Err(PageError {
            status: StatusCode::UNAUTHORIZED,
            title: "Token required",
            message: "This server requires an API token for reads (api.read_requires_token), \
                      so the dashboard is not available without an Authorization header."
                .into(),
        });
    }
    Ok(())
}

/// Airflow's UI base URL without a trailing slash, for links.
fn airflow_ui(state: &AppState) -> Option<String> {
    state
        .config
        .airflow_ui
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_string())
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
}

fn live(state: &AppState) -> Result<Arc<Catalog>, PageError> {
    state.catalog().ok_or_else(PageError::not_ready)
}

/// Query parameters of the paged lists. Empty values (an unset form field) count as absent.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub cursor: Option<String>,
    pub workspace: Option<String>,
    pub job: Option<String>,
    pub state: Option<String>,
    /// A time window of the runs page (`24h`).
    pub since: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn id_cursor(q: &ListQuery) -> Result<Option<i64>, PageError> {
    given(&q.cursor)
        .map(|c| {
            c.parse::<i64>().map_err(|_| PageError {
                status: StatusCode::BAD_REQUEST,
                title: "Bad request",
                message: "That page cursor is not one this dashboard gave out.".into(),
            })
        })
        .transpose()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Pages

async fn overview(State(state): State<Arc<AppState>>, headers: HeaderMap) -> PageResult {
    read_access(&state, &headers)?;
    let status = state.store.branch_status(&state.config.branch).await?;
    let catalog = state.catalog();
    let (workspaces, jobs) = catalog.as_ref().map_or((0, 0), |c| {
        (
            c.workspaces.len(),
            c.workspaces.iter().map(|w| w.jobs.len()).sum::<usize>(),
        )
    });
    let failed_filter = RunFilter {
        state: Some("failed".into()),
        since: Some(Utc::now() - Duration::hours(24)),
        ..RunFilter::default()
    };
    let failed_count = state.store.count_runs(&failed_filter).await?;
    let failed = state.store.runs(&failed_filter, 10, None).await?;
    let drift = state
        .store
        .last_audit(olo_reconciler::engine::DRIFT_REPAIRED)
        .await?;
    let recent = state.store.runs(&RunFilter::default(), 10, None).await?;
    render(
        "overview.html",
        context! {
            nav => "overview",
            branch => &state.config.branch,
            ready => state.is_ready(),
            status => ser(&status),
            catalog_revision => catalog.as_ref().and_then(|c| c.revision.clone()),
            workspaces => workspaces,
            jobs => jobs,
            failed_count => failed_count,
            failed => ser(&failed),
            recent => ser(&recent),
            drift_recent => drift.as_ref().is_some_and(|d| d.at >= Utc::now() - Duration::hours(24)),
            drift => ser(&drift),
        },
    )
}

async fn revisions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> PageResult {
    read_access(&state, &headers)?;
    let before = match given(&q.cursor) {
        Some(c) => Some(parse_time(&c).ok_or_else(|| PageError {
            status: StatusCode::BAD_REQUEST,
            title: "Bad request",
            message: "That page cursor is not one this dashboard gave out.".into(),
        })?),
        None => None,
    };
    let rows = state
        .store
        .revisions(&state.config.branch, PAGE, before)
        .await?;
    let next = (rows.len() as u32 == PAGE)
        .then(|| rows.last().map(|r| r.seen_at.to_rfc3339()))
        .flatten();
    render(
        "revisions.html",
        context! {
            nav => "revisions",
            branch => &state.config.branch,
            rows => ser(&rows),
            next => next,
            first_page => before.is_none(),
        },
    )
}

/// A change of a stored plan (`body.changes[]`), as shown on the revision page.
#[derive(Debug, Serialize)]
struct ChangeView {
    name: String,
    action: String,
    /// The unified diff, line by line, with a class: `da` added, `dd` deleted, `dh` header.
    diff: Option<Vec<(&'static str, String)>>,
    reason: Option<String>,
}

fn changes(body: &serde_json::Value) -> Vec<ChangeView> {
    let text = |c: &serde_json::Value, k: &str| c.get(k).and_then(|v| v.as_str()).map(String::from);
    body.get("changes")
        .and_then(|c| c.as_array())
        .map(|all| {
            all.iter()
                .map(|c| ChangeView {
                    name: text(c, "name").unwrap_or_default(),
                    action: text(c, "action").unwrap_or_default(),
                    diff: text(c, "diff").map(|d| diff_lines(&d)),
                    reason: text(c, "reason"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Lines of a unified diff with the class that colours them.
pub fn diff_lines(diff: &str) -> Vec<(&'static str, String)> {
    diff.lines()
        .map(|l| {
            let class = if l.starts_with("+++") || l.starts_with("---") || l.starts_with("@@") {
                "dh"
            } else if l.starts_with('+') {
                "da"
            } else if l.starts_with('-') {
                "dd"
            } else {
                ""
            };
            (class, l.to_string())
        })
        .collect()
}

async fn revision(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(sha): Path<String>,
) -> PageResult {
    read_access(&state, &headers)?;
    let row = state
        .store
        .revision(&state.config.branch, &sha)
        .await?
        .ok_or_else(|| PageError::not_found(format!("olo has not seen revision {sha}.")))?;
    let plans: Vec<Value> = state
        .store
        .plans(&state.config.branch, &sha)
        .await?
        .into_iter()
        .map(|p| {
            let changes = changes(&p.body);
            let summary: Vec<(String, String)> = p
                .summary
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
                .unwrap_or_default();
            context! { plan => ser(&p), changes => ser(&changes), summary => ser(&summary) }
        })
        .collect();
    let diagnostics = row.diagnostics.as_array().cloned().unwrap_or_default();
    render(
        "revision.html",
        context! {
            nav => "revisions",
            row => ser(&row),
            diagnostics => ser(&diagnostics),
            plans => plans,
        },
    )
}

async fn audit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> PageResult {
    read_access(&state, &headers)?;
    let before = id_cursor(&q)?;
    let entries = state.store.audit(PAGE, before).await?;
    let next = (entries.len() as u32 == PAGE)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    let rows: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let details = match &e.details {
                serde_json::Value::Object(m) if m.is_empty() => String::new(),
                serde_json::Value::Null => String::new(),
                d => d.to_string(),
            };
            context! { entry => ser(&e), details => details }
        })
        .collect();
    render(
        "audit.html",
        context! { nav => "audit", rows => rows, next => next, first_page => before.is_none() },
    )
}

/// A workspace in the list: its facts and a job count (not its jobs).
#[derive(Debug, Serialize)]
struct WorkspaceRow<'a> {
    name: &'a str,
    description: Option<&'a str>,
    catalog: &'a str,
    namespaces: &'a [String],
    owners: &'a [String],
    jobs: usize,
}

async fn workspaces(State(state): State<Arc<AppState>>, headers: HeaderMap) -> PageResult {
    read_access(&state, &headers)?;
    let catalog = live(&state)?;
    let rows: Vec<WorkspaceRow<'_>> = catalog
        .workspaces
        .iter()
        .map(|w| WorkspaceRow {
            name: &w.name,
            description: w.description.as_deref(),
            catalog: &w.catalog,
            namespaces: &w.namespaces,
            owners: &w.owners,
            jobs: w.jobs.len(),
        })
        .collect();
    render(
        "workspaces.html",
        context! {
            nav => "workspaces",
            revision => catalog.revision.clone(),
            workspaces => ser(&rows),
        },
    )
}

/// Jobs per page of a workspace.
const JOBS_PAGE: usize = 200;

/// A job in a workspace's list.
#[derive(Debug, Serialize)]
struct JobRow<'a> {
    name: &'a str,
    dag_id: &'a str,
    schedule: Option<&'a str>,
    paused: bool,
    tasks: usize,
    description: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub page: Option<String>,
}

async fn workspace(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(ws): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    read_access(&state, &headers)?;
    let catalog = live(&state)?;
    let w = catalog.workspace(&ws).ok_or_else(|| {
        PageError::not_found(format!(
            "There is no workspace {ws} in the live configuration."
        ))
    })?;
    let pages = w.jobs.len().div_ceil(JOBS_PAGE).max(1);
    let page = match given(&q.page) {
        None => 1,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=pages).contains(n))
            .ok_or_else(|| PageError {
                status: StatusCode::BAD_REQUEST,
                title: "Bad request",
                message: format!("This workspace has job pages 1 to {pages}."),
            })?,
    };
    let jobs: Vec<JobRow<'_>> = w
        .jobs
        .iter()
        .skip((page - 1) * JOBS_PAGE)
        .take(JOBS_PAGE)
        .map(|j| JobRow {
            name: &j.name,
            dag_id: &j.dag_id,
            schedule: j.schedule.as_deref(),
            paused: j.paused,
            tasks: j.tasks.len(),
            description: j.description.as_deref(),
        })
        .collect();
    let repository = state.config.repository.as_deref();
    render(
        "workspace.html",
        context! {
            nav => "workspaces",
            ws => context! {
                name => &w.name,
                description => &w.description,
                catalog => &w.catalog,
                warehouse => &w.warehouse,
                namespaces => &w.namespaces,
                owners => &w.owners,
                roles => ser(&w.roles),
                path => &w.path,
            },
            jobs => ser(&jobs),
            job_count => w.jobs.len(),
            page => page,
            pages => pages,
            revision => catalog.revision.clone(),
            file_url => file_url(repository, catalog.revision.as_deref(), &w.path),
        },
    )
}

async fn job(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((ws, job)): Path<(String, String)>,
) -> PageResult {
    read_access(&state, &headers)?;
    let catalog = live(&state)?;
    let j = catalog.job(&ws, &job).ok_or_else(|| {
        PageError::not_found(format!(
            "There is no job {ws}/{job} in the live configuration."
        ))
    })?;
    let recent = state
        .store
        .runs(
            &RunFilter {
                workspace: Some(ws.clone()),
                job: Some(job.clone()),
                state: None,
                since: None,
            },
            JOB_RUNS,
            None,
        )
        .await?;
    let repository = state.config.repository.as_deref();
    let (spec, dag_source) = match (&state.files, &catalog.revision) {
        (Some(files), Some(rev)) => {
            let (files, rev, path) = (files.clone(), rev.clone(), j.path.clone());
            let dag = format!("dags/{}.py", j.dag_id);
            tokio::task::spawn_blocking(move || (files.spec(&rev, &path), files.deployed(&dag)))
                .await
                .map_err(|e| PageError::internal(&e))?
        }
        _ => (None, None),
    };
    state.lineage.sync(Some(&catalog));
    let node = olo_reconciler::lineage::NodeRef::job(&j.workspace, &j.name);
    let mismatches = state.lineage.read().mismatches(&node);
    render(
        "job.html",
        job_page(&JobPage {
            lineage: &mismatches,
            job: j,
            revision: catalog.revision.as_deref(),
            repository,
            airflow_ui: airflow_ui(&state).as_deref(),
            spec: spec.as_deref(),
            dag_source: dag_source.as_deref(),
            recent: &recent,
            now: Utc::now(),
        }),
    )
}

/// What the job page shows.
pub struct JobPage<'a> {
    pub job: &'a olo_reconciler::catalog::JobView,
    pub revision: Option<&'a str>,
    pub repository: Option<&'a str>,
    pub airflow_ui: Option<&'a str>,
    pub spec: Option<&'a str>,
    pub dag_source: Option<&'a str>,
    pub recent: &'a [olo_reconciler::store::Run],
    pub lineage: &'a olo_reconciler::lineage::Mismatches,
    pub now: DateTime<Utc>,
}

fn job_page(p: &JobPage<'_>) -> Value {
    context! {
        nav => "workspaces",
        job => ser(p.job),
        revision => p.revision,
        file_url => file_url(p.repository, p.revision, &p.job.path),
        next_run => p.job.next_run(p.now).map(|t| t.to_rfc3339()),
        airflow_ui => p.airflow_ui,
        spec => p.spec,
        dag_source => p.dag_source,
        recent => ser(&p.recent),
        lineage => ser(p.lineage),
        lineage_href => format!(
            "/lineage?node={}",
            url::form_urlencoded::byte_serialize(
                olo_reconciler::lineage::NodeRef::job(&p.job.workspace, &p.job.name).id().as_bytes()
            )
            .collect::<String>()
        ),
    }
}

/// The time windows offered by the runs filter: query value, label, length in hours.
const WINDOWS: &[(&str, &str, i64)] = &[
    ("1h", "last hour", 1),
    ("24h", "last 24 hours", 24),
    ("7d", "last 7 days", 24 * 7),
    ("30d", "last 30 days", 24 * 30),
];

/// The length of a runs filter time window (`24h`), `None` for one the page does not offer.
pub fn since_window(w: &str) -> Option<Duration> {
    WINDOWS
        .iter()
        .find(|(k, _, _)| *k == w)
        .map(|(_, _, hours)| Duration::hours(*hours))
}

/// The run states offered by the filter (Airflow's DAG run states).
const RUN_STATES: &[&str] = &["queued", "running", "success", "failed"];

async fn runs(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> PageResult {
    read_access(&state, &headers)?;
    let before = id_cursor(&q)?;
    let window = given(&q.since);
    let since = match window.as_deref() {
        None => None,
        Some(w) => Some(
            Utc::now()
                - since_window(w).ok_or_else(|| PageError {
                    status: StatusCode::BAD_REQUEST,
                    title: "Bad request",
                    message: format!(
                        "Unknown time window {w:?}; choose one of {}.",
                        WINDOWS
                            .iter()
                            .map(|(k, _, _)| *k)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?,
        ),
    };
    let filter = RunFilter {
        workspace: given(&q.workspace),
        job: given(&q.job),
        state: given(&q.state),
        since,
    };
    let rows = state.store.runs(&filter, PAGE, before).await?;
    let next = (rows.len() as u32 == PAGE)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    let workspaces: Vec<String> = state
        .catalog()
        .map(|c| c.workspaces.iter().map(|w| w.name.clone()).collect())
        .unwrap_or_default();
    render(
        "runs.html",
        context! {
            nav => "runs",
            rows => ser(&rows),
            next => next,
            first_page => before.is_none(),
            filter => ser(&filter),
            window => window,
            windows => WINDOWS.iter().map(|(k, label, _)| (*k, *label)).collect::<Vec<_>>(),
            workspaces => workspaces,
            states => ser(&RUN_STATES),
        },
    )
}

fn run_id(id: &str) -> Result<i64, PageError> {
    id.parse::<i64>()
        .map_err(|_| PageError::not_found(format!("There is no run {id}.")))
}

async fn find_run(state: &AppState, id: &str) -> Result<olo_reconciler::store::Run, PageError> {
    let n = run_id(id)?;
    state
        .store
        .run(n)
        .await?
        .ok_or_else(|| PageError::not_found(format!("There is no run {n}.")))
}

async fn run(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    read_access(&state, &headers)?;
    let run = find_run(&state, &id).await?;
    let tis = state.store.task_instances(run.id).await?;
    let experiments = state.mlflow_experiments(&run);
    let (runs, problem) = match state.mlflow_runs(&run, &experiments).await {
        None if experiments.is_empty() => (None, None),
        None => (
            None,
            Some(
                "MLflow is not configured in olo's settings ([mlflow] url), so the MLflow runs \
                 of this run cannot be shown."
                    .to_string(),
            ),
        ),
        Some(Ok(runs)) => (Some(runs), None),
        Some(Err(e)) => (None, Some(format!("MLflow could not be asked: {e}"))),
    };
    let mlflow = RunMlflow {
        experiments: &experiments,
        runs: runs.as_deref(),
        problem: problem.as_deref(),
    };
    render(
        "run.html",
        run_page(
            &run,
            &tis,
            airflow_ui(&state).as_deref(),
            &mlflow,
            Utc::now(),
        ),
    )
}

/// The MLflow part of a run's page.
pub struct RunMlflow<'a> {
    /// The experiments the run's job logs to (none: no MLflow section).
    pub experiments: &'a [String],
    pub runs: Option<&'a [olo_reconciler::targets::mlflow::MlflowRun]>,
    /// Why the runs could not be read.
    pub problem: Option<&'a str>,
}

fn run_page(
    run: &olo_reconciler::store::Run,
    tis: &[TaskInstanceRow],
    airflow_ui: Option<&str>,
    mlflow: &RunMlflow<'_>,
    now: DateTime<Utc>,
) -> Value {
    let (bars, total) = timeline(tis, now);
    let conf = match &run.conf {
        serde_json::Value::Object(m) if m.is_empty() => String::new(),
        c => serde_json::to_string_pretty(c).unwrap_or_default(),
    };
    context! {
        nav => "runs",
        run => ser(run),
        tasks => ser(&tis),
        bars => ser(&bars),
        total_seconds => total,
        conf => conf,
        finished => is_terminal_run_state(&run.state),
        airflow_ui => airflow_ui,
        experiments => mlflow.experiments.to_vec(),
        mlflow => mlflow.runs.map(|r| ser(&r)),
        mlflow_problem => mlflow.problem,
    }
}

async fn task_log(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, task, try_number)): Path<(String, String, String)>,
) -> Result<Response, PageError> {
    read_access(&state, &headers)?;
    let run = find_run(&state, &id).await?;
    let try_number = try_number
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| PageError::not_found(format!("There is no try {try_number}.")))?;
    let tis = state.store.task_instances(run.id).await?;
    let map_index = tis
        .iter()
        .find(|t| t.task_id == task && t.try_number == try_number)
        .map_or(-1, |t| t.map_index);
    let finished = is_terminal_run_state(&run.state);
    let (status, log, problem) = match &state.airflow {
        None => (
            StatusCode::OK,
            None,
            Some(
                "Airflow is not configured in olo's settings ([airflow] url, username, \
                 password_env), and task logs are read from Airflow, so there is no log to show."
                    .to_string(),
            ),
        ),
        Some(airflow) => match airflow
            .task_log(
                &run.dag_id,
                &run.airflow_run_id,
                &task,
                try_number,
                map_index,
            )
            .await
        {
            Ok(text) => (StatusCode::OK, Some(text), None),
            Err(AirflowError::NotFound { .. }) => (
                StatusCode::NOT_FOUND,
                None,
                Some(format!(
                    "Airflow has no log for task {task}, try {try_number} of this run (yet)."
                )),
            ),
            Err(e) if e.is_temporary() => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                Some(format!("Airflow did not answer: {e}. Try again.")),
            ),
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                None,
                Some(format!("Airflow refused the request: {e}")),
            ),
        },
    };
    let html = render(
        "log.html",
        context! {
            nav => "runs",
            run => ser(&run),
            task => task,
            try_number => try_number,
            log => log,
            problem => problem,
            refresh => (!finished).then_some(LOG_REFRESH_SECONDS),
        },
    )?;
    Ok((status, html).into_response())
}

/// Depths offered on the lineage page.
const LINEAGE_DEPTHS: &[usize] = &[1, 2, 3, 4, 5, 8];
/// Most nodes drawn (the page stays readable; the API answers up to 5,000).
pub const LINEAGE_MAX_NODES: usize = 300;
/// Characters of a name shown in a node's box (the whole id is its tooltip).
const LABEL_CHARS: usize = 30;

/// A name cut to `max` characters with an ellipsis in the middle, so both ends stay readable.
pub fn label(name: &str, max: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= max {
        return name.to_string();
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// Where a lineage node links: an olo job to its page, anything else to its own graph.
fn node_href(catalog: Option<&Catalog>, node: &olo_reconciler::lineage::Placed) -> String {
    let graph = format!(
        "/lineage?node={}",
        url::form_urlencoded::byte_serialize(node.id.as_bytes()).collect::<String>()
    );
    match (node.kind, catalog) {
        (olo_reconciler::lineage::Kind::Job, Some(c))
            if c.job(&node.namespace, &node.name).is_some() =>
        {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            format!(
                "/workspaces/{}/jobs/{}",
                enc(&node.namespace),
                enc(&node.name)
            )
        }
        _ => graph,
    }
}

#[derive(Debug, Deserialize)]
pub struct LineageQuery {
    pub node: Option<String>,
    pub depth: Option<String>,
}

async fn lineage_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<LineageQuery>,
) -> Result<Response, PageError> {
    read_access(&state, &headers)?;
    let catalog = state.catalog();
    state.lineage.sync(catalog.as_ref());
    let depth = match given(&q.depth) {
        None => 2,
        Some(d) => d
            .parse::<usize>()
            .ok()
            .filter(|d| LINEAGE_DEPTHS.contains(d))
            .ok_or_else(|| PageError {
                status: StatusCode::BAD_REQUEST,
                title: "Bad request",
                message: format!("Choose a depth of {LINEAGE_DEPTHS:?}."),
            })?,
    };
    let start = given(&q.node);
    let (status, graph, truncated, problem) = match &start {
        None => (
            StatusCode::OK,
            None,
            false,
            Some("Name a job or a dataset, or open one from a job's page.".to_string()),
        ),
        Some(id) => {
            let g = state.lineage.read();
            match g.find(id).and_then(|n| g.walk(&n, depth, LINEAGE_MAX_NODES)) {
                None => (
                    StatusCode::NOT_FOUND,
                    None,
                    false,
                    Some(format!(
                        "olo knows no lineage of {id}: no job declares it and no event has shown it."
                    )),
                ),
                Some(sub) => {
                    let layout = olo_reconciler::lineage::layout(&sub);
                    let nodes: Vec<Value> = layout
                        .nodes
                        .iter()
                        .map(|n| {
                            let short_ns = label(&n.namespace, 22);
                            context! {
                                id => &n.id,
                                kind => ser(&n.kind),
                                x => n.x,
                                y => n.y,
                                start => n.start,
                                label => label(&n.name, LABEL_CHARS),
                                short_namespace => short_ns,
                                href => node_href(catalog.as_deref(), n),
                            }
                        })
                        .collect();
                    let graph = context! {
                        width => layout.width,
                        height => layout.height,
                        nodes => nodes,
                        edges => ser(&layout.edges),
                    };
                    (StatusCode::OK, Some(graph), sub.truncated, None)
                }
            }
        }
    };
    let html = render(
        "lineage.html",
        context! {
            nav => "lineage",
            start => start,
            depth => depth,
            depths => LINEAGE_DEPTHS.to_vec(),
            graph => graph,
            truncated => truncated,
            max_nodes => LINEAGE_MAX_NODES,
            node_w => olo_reconciler::lineage::NODE_W,
            node_h => olo_reconciler::lineage::NODE_H,
            problem => problem,
        },
    )?;
    Ok((status, html).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn every_template_parses() {
        for (name, _) in TEMPLATES {
            ENV.get_template(name).unwrap();
        }
    }

    #[test]
    fn short_and_first_line() {
        assert_eq!(short_sha("0123456789abcdef"), "01234567");
        assert_eq!(short_sha("abc"), "abc");
        assert_eq!(first_line("fix: a\n\nbody"), "fix: a");
        assert_eq!(first_line(""), "");
    }

    #[test]
    fn relative_times_and_durations_read_like_a_person_would_say_them() {
        assert_eq!(ago(at(0), at(10)), "just now");
        assert_eq!(ago(at(0), at(300)), "5 min ago");
        assert_eq!(ago(at(0), at(3 * 3600)), "3 h ago");
        assert_eq!(ago(at(0), at(2 * 86_400)), "2 d ago");
        assert_eq!(ago(at(600), at(0)), "in 10 min");
        assert_eq!(duration(0.25), "250 ms");
        assert_eq!(duration(42.0), "42.0 s");
        assert_eq!(duration(185.0), "3m 05s");
        assert_eq!(duration(7260.0), "2h 01m");
        assert_eq!(duration(-1.0), "—");
    }

    #[test]
    fn states_get_a_tone() {
        assert_eq!(tone("Ready"), "ok");
        assert_eq!(tone("Stalled"), "bad");
        assert_eq!(tone("running"), "busy");
        assert_eq!(tone("up_for_retry"), "warn");
        assert_eq!(tone("<script>"), "muted");
    }

    #[test]
    fn the_timeline_spans_first_start_to_last_end() {
        let ti = |id: &str, s: Option<i64>, e: Option<i64>| TaskInstanceRow {
            task_id: id.into(),
            map_index: -1,
            try_number: 1,
            state: Some("success".into()),
            started_at: s.map(at),
            ended_at: e.map(at),
            duration_seconds: None,
        };
        let tis = [
            ti("a", Some(0), Some(25)),
            ti("b", Some(25), Some(100)),
            ti("c", Some(50), None),
            ti("d", None, None),
        ];
        let (bars, total) = timeline(&tis, at(100));
        assert_eq!(total, 100.0);
        let geo: Vec<_> = bars.iter().map(|b| (b.left, b.width, b.started)).collect();
        assert_eq!(
            geo,
            [
                (0.0, 25.0, true),
                (25.0, 75.0, true),
                (50.0, 50.0, true),
                (0.0, 0.0, false)
            ]
        );
        assert_eq!(timeline(&[], at(0)), (vec![], 0.0));
    }

    #[test]
    fn long_names_are_cut_in_the_middle() {
        assert_eq!(label("gold.revenue", 30), "gold.revenue");
        assert_eq!(label("abcdefghij", 5), "ab…ij");
        assert_eq!(label("ééééééé", 4), "é…éé");
    }

    #[test]
    fn time_windows_are_the_offered_ones() {
        assert_eq!(since_window("24h"), Some(Duration::hours(24)));
        assert_eq!(since_window("7d"), Some(Duration::days(7)));
        assert_eq!(since_window("2h"), None);
        assert_eq!(since_window("'; drop"), None);
    }

    #[test]
    fn file_links_need_a_repository_and_a_revision() {
        assert_eq!(
            file_url(Some("o/r"), Some("abc"), "workspaces/w/jobs/j.yaml").as_deref(),
            Some("https://github.com/o/r/blob/abc/workspaces/w/jobs/j.yaml")
        );
        assert_eq!(file_url(None, Some("abc"), "x"), None);
        assert_eq!(file_url(Some("o/r"), None, "x"), None);
    }

    fn snapshot_job() -> olo_reconciler::catalog::JobView {
        use olo_reconciler::catalog::{JobView, TaskView};
        let task = |id: &str, deps: &[&str], inputs: &[&str], outputs: &[&str]| TaskView {
            id: id.into(),
            kind: "bash".into(),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            mlflow_experiment: None,
        };
        JobView {
            name: "orders".into(),
            workspace: "sales".into(),
            dag_id: "sales__orders".into(),
            path: "workspaces/sales/jobs/orders.yaml".into(),
            description: Some("Orders <b>& refunds</b>".into()),
            schedule: Some("30 4 * * *".into()),
            start_date: Some("2026-01-01".into()),
            end_date: None,
            paused: false,
            tags: vec!["sales".into()],
            params: vec!["day".into()],
            tasks: vec![
                task("extract", &[], &[], &["raw.orders"]),
                task("load", &["extract"], &["raw.orders"], &["gold.orders"]),
            ],
        }
    }

    fn snapshot_run(id: i64, state: &str) -> olo_reconciler::store::Run {
        olo_reconciler::store::Run {
            id,
            workspace: "sales".into(),
            job: "orders".into(),
            dag_id: "sales__orders".into(),
            airflow_run_id: format!("olo__2026-11-27T04:30:00+00:00_{id}"),
            state: state.into(),
            trigger: olo_reconciler::store::RunTrigger::Api,
            triggered_by: Some("ci-bot".into()),
            revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
            conf: serde_json::json!({"day": "2026-11-26"}),
            logical_date: Some(at(0)),
            started_at: Some(at(5)),
            ended_at: (state != "running").then(|| at(185)),
            created_at: at(0),
            updated_at: at(190),
        }
    }

    #[test]
    fn the_job_page_as_people_read_it() {
        let job = snapshot_job();
        let recent = [snapshot_run(2, "failed"), snapshot_run(1, "success")];
        let html = render_at(
            "job.html",
            job_page(&JobPage {
                job: &job,
                revision: Some("0123456789abcdef0123456789abcdef01234567"),
                repository: Some("acme/lakehouse-config"),
                airflow_ui: Some("https://airflow.example.com"),
                spec: Some("apiVersion: olo/v1\nkind: Job\nmetadata: {name: orders}\n"),
                dag_source: Some(
                    "# Generated by olo\nwith DAG(dag_id='sales__orders'):\n    pass\n",
                ),
                recent: &recent,
                lineage: &olo_reconciler::lineage::Mismatches {
                    observed_any: true,
                    declared_not_observed: vec![olo_reconciler::lineage::DatasetEdge {
                        direction: "out",
                        dataset: "dataset:sales:gold.orders".into(),
                    }],
                    observed_not_declared: vec![olo_reconciler::lineage::DatasetEdge {
                        direction: "in",
                        dataset: "dataset:trino://t:8080:other.raw.x".into(),
                    }],
                },
                now: at(3600),
            }),
            at(3600),
        )
        .unwrap()
        .0;
        insta::assert_snapshot!(main_of(&html));
    }

    #[test]
    fn the_run_page_as_people_read_it() {
        let ti = |task: &str, try_number, state: &str, s: i64, e: Option<i64>| TaskInstanceRow {
            task_id: task.into(),
            map_index: -1,
            try_number,
            state: Some(state.into()),
            started_at: Some(at(s)),
            ended_at: e.map(at),
            duration_seconds: e.map(|e| (e - s) as f64),
        };
        let tis = [
            ti("extract", 1, "success", 5, Some(65)),
            ti("load", 1, "failed", 65, Some(95)),
            ti("load", 2, "success", 125, Some(185)),
        ];
        let run = snapshot_run(7, "success");
        let html = render_at(
            "run.html",
            run_page(
                &run,
                &tis,
                Some("https://airflow.example.com"),
                &RunMlflow {
                    experiments: &["forecast".to_string()],
                    runs: Some(&[olo_reconciler::targets::mlflow::MlflowRun {
                        run_id: "4f1c".into(),
                        run_name: Some("train <v2>".into()),
                        experiment_id: "7".into(),
                        experiment: "forecast".into(),
                        status: "FINISHED".into(),
                        start_time: Some(at(10)),
                        end_time: Some(at(70)),
                        metrics: vec![("mae".into(), 0.5), ("rmse".into(), 0.25)],
                        url: "https://mlflow.example.com/#/experiments/7/runs/4f1c".into(),
                    }]),
                    problem: None,
                },
                at(3600),
            ),
            at(3600),
        )
        .unwrap()
        .0;
        insta::assert_snapshot!(main_of(&html));
    }

    /// The page's `<main>`: what changes per page (the frame is the same on every page).
    fn main_of(html: &str) -> &str {
        let start = html.find("<main").expect("a <main>");
        let end = html.rfind("</main>").expect("a </main>") + "</main>".len();
        &html[start..end]
    }

    #[test]
    fn values_are_escaped_as_html() {
        let html = render(
            "error.html",
            context! { nav => "", status => 404, title => "t", message => "<script>x</script>" },
        )
        .unwrap()
        .0;
        assert!(
            html.contains("&lt;script&gt;x&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>x"), "{html}");
    }
}
