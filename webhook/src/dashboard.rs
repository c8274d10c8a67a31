//! The read-only dashboard: server-rendered HTML at `/`, from the same state store and live
//! catalog as the REST API. It works without JavaScript and fetches nothing from the internet:
//! the stylesheet is embedded and served at [`STYLESHEET`].
//!
//! Templates are embedded and strict (an undefined variable is an error) and escape every value
//! as HTML (minijinja's auto-escaping for `.html` templates).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use minijinja::value::Serde;
use minijinja::{context, Environment, UndefinedBehavior, Value};
use olo_reconciler::catalog::Catalog;
use olo_reconciler::store::{is_terminal_run_state, RunFilter, TaskInstanceRow};
use olo_reconciler::targets::airflow::AirflowError;
use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::caller::{Caller, Need};
use crate::AppState;

mod error;
mod format;
mod lineage_page;
mod log_fold;
mod markdown;
mod runs_page;
mod sql_page;
mod task_graph;

#[cfg(test)]
use runs_page::{log_page, run_page, since_window, RunMlflow};
use runs_page::{run, runs, task_log};

use error::gate;
pub use error::PageError;
use format::parse_time;
pub use format::*;
pub use lineage_page::{label, LINEAGE_MAX_NODES};

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
    ("sql.html", include_str!("dashboard/sql.html")),
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
    // Descriptions: CommonMark without raw HTML or script links (markdown.rs).
    env.add_filter("markdown", |s: String| {
        minijinja::Value::from_safe_string(markdown::to_safe_html(&s))
    });
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
        .route("/lineage", get(lineage_page::lineage_page))
        .route("/sql", get(sql_page::sql_page))
        .route(sql_page::SCRIPT, get(sql_page::script))
}

// ---------------------------------------------------------------------------------------------
// Rendering and errors

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
                sign_in: false,
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

async fn overview(State(state): State<Arc<AppState>>, caller: Caller) -> PageResult {
    gate(&state, &caller, Need::Member).await?;
    let status = state.store.branch_status(&state.config.branch).await?;
    let catalog = state.catalog();
    let visible = caller.visible_workspaces();
    let (workspaces, jobs) = catalog.as_ref().map_or((0, 0), |c| {
        let seen = c
            .workspaces
            .iter()
            .filter(|w| visible.as_ref().is_none_or(|v| v.contains(&w.name)));
        (
            seen.clone().count(),
            seen.map(|w| w.jobs.len()).sum::<usize>(),
        )
    });
    let failed_filter = RunFilter {
        state: Some("failed".into()),
        since: Some(Utc::now() - Duration::hours(24)),
        workspaces: visible.clone(),
        ..RunFilter::default()
    };
    let failed_count = state.store.count_runs(&failed_filter).await?;
    let failed = state.store.runs(&failed_filter, 10, None).await?;
    let drift = state
        .store
        .last_audit(olo_reconciler::engine::DRIFT_REPAIRED)
        .await?;
    let recent = state
        .store
        .runs(
            &RunFilter {
                workspaces: visible,
                ..RunFilter::default()
            },
            10,
            None,
        )
        .await?;
    render(
        "overview.html",
        context! {
            nav => "overview",
            branch => &state.config.branch,
            source => &state.config.source,
            ready => state.is_ready(),
            role => state.role().as_str(),
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

/// A plan's counts as the revisions list shows them: "2 created, 1 changed" ("no changes" when
/// it changed nothing).
fn plan_counts(summary: &serde_json::Value) -> String {
    let count = |key: &str| {
        summary
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let parts: Vec<String> = [
        ("create", "created"),
        ("update", "changed"),
        ("delete", "deleted"),
        ("keep", "kept"),
    ]
    .iter()
    .filter(|(key, _)| count(key) > 0)
    .map(|(key, word)| format!("{} {word}", count(key)))
    .collect();
    if parts.is_empty() {
        "no changes".to_string()
    } else {
        parts.join(", ")
    }
}

/// The commit whose configuration is live (the last one applied), if any.
fn live_revision(state: &AppState) -> Option<String> {
    state.catalog().and_then(|c| c.revision.clone())
}

async fn revisions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> PageResult {
    gate(&state, &caller, Need::Member).await?;
    let before = match given(&q.cursor) {
        Some(c) => Some(parse_time(&c).ok_or_else(|| PageError {
            status: StatusCode::BAD_REQUEST,
            title: "Bad request",
            message: "That page cursor is not one this dashboard gave out.".into(),
            sign_in: false,
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
    let shas: Vec<String> = rows.iter().map(|r| r.revision.sha.clone()).collect();
    let plans: HashMap<String, String> = state
        .store
        .newest_plans(&state.config.branch, &shas)
        .await?
        .into_iter()
        .map(|p| (p.sha, plan_counts(&p.summary)))
        .collect();
    render(
        "revisions.html",
        context! {
            nav => "revisions",
            live => live_revision(&state),
            branch => &state.config.branch,
            rows => ser(&rows),
            plans => ser(&plans),
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
    caller: Caller,
    Path(sha): Path<String>,
) -> PageResult {
    gate(&state, &caller, Need::Member).await?;
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
    let (files, files_left_out) = match &state.files {
        Some(files) => {
            let (files, sha) = (files.clone(), row.revision.sha.clone());
            tokio::task::spawn_blocking(move || files.commit_diff(&sha))
                .await
                .map_err(|e| PageError::internal(&e))?
                .map(|(changed, left_out)| {
                    let changed: Vec<Value> = changed
                        .into_iter()
                        .map(|f| {
                            let diff = f.diff.as_deref().map(diff_lines);
                            context! { path => f.path, change => f.change, diff => ser(&diff) }
                        })
                        .collect();
                    (Some(changed), left_out)
                })
                .unwrap_or((None, 0))
        }
        None => (None, 0),
    };
    render(
        "revision.html",
        context! {
            nav => "revisions",
            row => ser(&row),
            live => live_revision(&state).as_deref() == Some(row.revision.sha.as_str()),
            diagnostics => ser(&diagnostics),
            plans => plans,
            files => files,
            files_left_out => files_left_out,
        },
    )
}

async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> PageResult {
    gate(&state, &caller, Need::All).await?;
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
                d => serde_json::to_string_pretty(d).unwrap_or_default(),
            };
            let sentence = olo_reconciler::audit::sentence(&e);
            context! { entry => ser(&e), sentence => sentence, details => details }
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

async fn workspaces(State(state): State<Arc<AppState>>, caller: Caller) -> PageResult {
    gate(&state, &caller, Need::Read).await?;
    let catalog = live(&state)?;
    let visible = caller.visible_workspaces();
    let rows: Vec<WorkspaceRow<'_>> = catalog
        .workspaces
        .iter()
        .filter(|w| visible.as_ref().is_none_or(|v| v.contains(&w.name)))
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
    /// The newest run olo knows of: its id and state.
    last_run: Option<(i64, String)>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub page: Option<String>,
}

async fn workspace(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(ws): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    gate(&state, &caller, Need::Workspace(&ws, Role::Viewer)).await?;
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
                sign_in: false,
            })?,
    };
    let shown: Vec<_> = w
        .jobs
        .iter()
        .skip((page - 1) * JOBS_PAGE)
        .take(JOBS_PAGE)
        .collect();
    // The newest run of each job shown: one indexed query per job, at most a page's worth.
    let last_runs = futures::future::try_join_all(shown.iter().map(|j| {
        let filter = RunFilter::job(&w.name, &j.name);
        let store = state.store.clone();
        async move { store.runs(&filter, 1, None).await }
    }))
    .await?;
    let jobs: Vec<JobRow<'_>> = shown
        .iter()
        .zip(last_runs)
        .map(|(j, runs)| JobRow {
            name: &j.name,
            dag_id: &j.dag_id,
            schedule: j.schedule.as_deref(),
            paused: j.paused,
            tasks: j.tasks.len(),
            description: j.description.as_deref(),
            last_run: runs.into_iter().next().map(|r| (r.id, r.state)),
        })
        .collect();
    let repository = state.config.repository.as_deref();
    let (lakehouse, lakehouse_error) = match state.live_lakehouse(&ws).await {
        None => (None, None),
        Some(Ok(live)) => (Some(live), None),
        Some(Err(e)) => (None, Some(e)),
    };
    render(
        "workspace.html",
        context! {
            nav => "workspaces",
            lakehouse => ser(&lakehouse),
            lakehouse_configured => state.lakehouse.is_some(),
            lakehouse_error => lakehouse_error,
            tables => &w.tables,
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
    caller: Caller,
    Path((ws, job)): Path<(String, String)>,
) -> PageResult {
    gate(&state, &caller, Need::Workspace(&ws, Role::Viewer)).await?;
    let catalog = live(&state)?;
    let j = catalog.job(&ws, &job).ok_or_else(|| {
        PageError::not_found(format!(
            "There is no job {ws}/{job} in the live configuration."
        ))
    })?;
    let recent = state
        .store
        .runs(&RunFilter::job(&ws, &job), JOB_RUNS, None)
        .await?;
    let latest = match recent.first() {
        Some(run) => state.store.task_instances(run.id).await?,
        None => Vec::new(),
    };
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
            latest: &latest,
            now: Utc::now(),
            branch: &state.config.branch,
            writes: state.writes.as_ref().map_or("off", |w| w.mode.as_str()),
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
    /// The task instances of the newest of `recent` (the task graph's states).
    pub latest: &'a [TaskInstanceRow],
    pub lineage: &'a olo_reconciler::lineage::Mismatches,
    pub now: DateTime<Utc>,
    /// The tracked branch.
    pub branch: &'a str,
    /// `api.writes`: off, commit or pull_request.
    pub writes: &'a str,
}

fn job_page(p: &JobPage<'_>) -> Value {
    context! {
        nav => "workspaces",
        job => ser(p.job),
        revision => p.revision,
        file_url => file_url(p.repository, p.revision, &p.job.path),
        edit_url => edit_url(p.repository, p.branch, &p.job.path),
        branch => p.branch,
        writes => p.writes,
        next_run => p.job.next_run(p.now).map(|t| t.to_rfc3339()),
        airflow_ui => p.airflow_ui,
        spec => p.spec,
        dag_source => p.dag_source,
        recent => ser(&p.recent),
        graph => ser(&task_graph::task_graph(p.job, p.latest)),
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

#[cfg(test)]
mod tests;
