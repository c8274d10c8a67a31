//! Writes through the API become Git changes (`api.writes`): `PUT`/`DELETE` of a job or a
//! workspace reads the tracked branch's tip, makes the change on it, validates the whole result
//! with `olo validate`'s checks (422 with every diagnostic when refused, nothing written), and
//! makes one commit authored by the caller: on the tracked branch (`commit`, then a reconcile is
//! queued) or on a new branch with a pull request (`pull_request`, which olo then plans). An
//! `If-Match` revision (or `?base=`) that is no longer the tip gets 409.
//!
//! The pure parts are in [`change`]; the git side is the source's
//! ([`olo_reconciler::source::write`]).

pub mod change;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use olo_reconciler::controller::{SharedSource, Trigger};
use olo_reconciler::forge::{Forge, NewPullRequest, RepoRef};
use olo_reconciler::source::write::{WriteError, WriteRequest, Written};
use olo_reconciler::store::NewAudit;
use olo_schema::{Diagnostic, Name};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::Role;
use crate::caller::{Caller, Need};
use crate::error::ApiError;
use crate::AppState;
pub use change::Mode;
use change::{Action, Refusal, Target};

/// What writes need beside the rest of the server.
pub struct Writes {
    pub mode: Mode,
    /// The tracked branch's source: writes read its tip and commit to it, one at a time with
    /// reconciles (they share its lock).
    pub source: SharedSource,
    /// GitHub, for `pull_request` mode.
    pub forge: Option<Arc<dyn Forge>>,
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/workspaces/{ws}/jobs/{job}",
            put(put_job)
                .delete(delete_job)
                .layer(DefaultBodyLimit::max(olo_schema::yaml::MAX_FILE_BYTES)),
        )
        .route(
            "/workspaces/{ws}",
            put(put_workspace)
                .delete(delete_workspace)
                .layer(DefaultBodyLimit::max(olo_schema::yaml::MAX_FILE_BYTES)),
        )
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WriteQuery {
    /// The revision the change is based on (like `If-Match`).
    base: Option<String>,
}

async fn put_job(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((ws, job)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = match job_target(&ws, &job) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let need = Need::Workspace(&ws, Role::Operator);
    write(
        &state,
        &caller,
        need,
        target,
        Some((&headers, &body)),
        &headers,
        q,
    )
    .await
}

async fn delete_job(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((ws, job)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
) -> Response {
    let target = match job_target(&ws, &job) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let need = Need::Workspace(&ws, Role::Operator);
    write(&state, &caller, need, target, None, &headers, q).await
}

async fn put_workspace(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(ws): Path<String>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = match workspace_target(&ws) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    // A workspace of the live configuration: its admins; a new one: platform admins.
    let exists = caller
        .catalog
        .as_ref()
        .is_some_and(|c| c.workspace(&ws).is_some());
    let need = if exists {
        Need::Workspace(&ws, Role::Admin)
    } else {
        Need::PlatformAdmin
    };
    write(
        &state,
        &caller,
        need,
        target,
        Some((&headers, &body)),
        &headers,
        q,
    )
    .await
}

async fn delete_workspace(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(ws): Path<String>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
) -> Response {
    let target = match workspace_target(&ws) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let need = Need::Workspace(&ws, Role::Admin);
    write(&state, &caller, need, target, None, &headers, q).await
}

fn parse_name(what: &str, s: &str) -> Result<Name, ApiError> {
    Name::parse(s).map_err(|e| ApiError::bad_request(format!("{what} name `{s}`: {e}")))
}

fn job_target(ws: &str, job: &str) -> Result<Target, ApiError> {
    Ok(Target::Job {
        workspace: parse_name("workspace", ws)?,
        job: parse_name("job", job)?,
    })
}

fn workspace_target(ws: &str) -> Result<Target, ApiError> {
    Ok(Target::Workspace {
        workspace: parse_name("workspace", ws)?,
    })
}

/// An error answer with more fields beside `error` (the diagnostics, the current revision).
fn error_with(status: StatusCode, code: &str, message: String, extra: Value) -> Response {
    let mut body = json!({ "error": {
        "id": format!("err_{}", uuid::Uuid::new_v4().simple()),
        "code": code,
        "message": message,
    }});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    (status, Json(body)).into_response()
}

/// What happened under the source's lock.
enum Outcome {
    Written {
        written: Written,
        base: String,
        action: Action,
        path: String,
    },
    Moved {
        base: String,
        tip: String,
    },
    Invalid {
        base: String,
        diagnostics: Vec<Diagnostic>,
    },
    Refused(Refusal),
}

#[allow(clippy::too_many_arguments)]
async fn write(
    state: &Arc<AppState>,
    caller: &Caller,
    need: Need<'_>,
    target: Target,
    body: Option<(&HeaderMap, &Bytes)>,
    headers: &HeaderMap,
    q: WriteQuery,
) -> Response {
    // Who asks first: an anonymous caller gets 401 whether writes are on or not.
    if let Err(e) = caller.need(state, need).await {
        return e.into_response();
    }
    let Some(writes) = state.writes.as_ref().filter(|w| w.mode != Mode::Off) else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "writes_off",
            format!(
                "writes through the API are off: the repository is the source of truth, so change `{}` there (olo applies the push), or set api.writes = \"pull_request\" or \"commit\" to let the API make that change as a commit (docs/settings.md)",
                target.file(&olo_schema::Snapshot::default()).0
            ),
        )
        .into_response();
    };
    let deleting = body.is_none();
    let text = match body {
        Some((h, bytes)) => {
            let content_type = h
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            match change::document_text(content_type, bytes) {
                Ok(t) => Some(t),
                Err(r) => return refusal(r),
            }
        }
        None => None,
    };
    let base = match headers.get(axum::http::header::IF_MATCH) {
        Some(v) => v.to_str().ok().and_then(change::if_match),
        None => q.base.filter(|b| !b.is_empty()),
    };
    let repository = state.config.repository.as_deref().and_then(RepoRef::parse);
    let forge = match (writes.mode, &writes.forge, &repository) {
        (Mode::PullRequest, Some(f), Some(r)) => Some((f.clone(), r.clone())),
        (Mode::PullRequest, _, _) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "forge_not_configured",
                "api.writes = \"pull_request\" needs GitHub: github.repository and a token or App (github.token_env, github.app_id)",
            )
            .into_response()
        }
        _ => None,
    };
    let who = caller.who.as_ref();
    let actor = caller.actor().to_string();
    let via = who.map_or("anonymous", |p| p.via).to_string();
    let mode = writes.mode;
    let tracked = state.config.branch.clone();
    let source = writes.source.clone();
    let job_target = target.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        commit_change(
            &source,
            &job_target,
            text.as_deref(),
            base.as_deref(),
            &actor,
            &via,
            mode,
            &tracked,
        )
    })
    .await;
    let outcome = match outcome {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return e.into_response(),
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let (written, base, action, path) = match outcome {
        Outcome::Refused(r) => return refusal(r),
        Outcome::Moved { base, tip } => {
            audit_refusal(
                state,
                caller,
                &target,
                deleting,
                json!({ "code": "revision_conflict", "base": base, "current_revision": tip }),
            )
            .await;
            return error_with(
                StatusCode::CONFLICT,
                "revision_conflict",
                format!(
                    "branch `{}` moved: it is at {tip}, not at {base}; read it again and retry with If-Match: {tip}",
                    state.config.branch
                ),
                json!({ "current_revision": tip }),
            );
        }
        Outcome::Invalid { base, diagnostics } => {
            let text = olo_schema::diagnostic::to_text(&diagnostics);
            audit_refusal(
                state,
                caller,
                &target,
                deleting,
                json!({
                    "code": "invalid_change",
                    "base": base,
                    "errors": diagnostics.len(),
                    // The first few, as `path:line:col: message`: the whole list went to the
                    // caller, and an audit row stays small.
                    "diagnostics": diagnostics.iter().take(AUDITED_DIAGNOSTICS)
                        .map(|d| d.to_string()).collect::<Vec<_>>(),
                }),
            )
            .await;
            return error_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_change",
                format!(
                    "the change does not validate on top of {base}; nothing was written:\n{text}"
                ),
                json!({
                    "base": base,
                    "diagnostics": diagnostics.iter().map(|d| json!({
                        "path": d.path, "line": d.line, "column": d.column,
                        "severity": d.severity, "message": d.message, "text": d.to_string(),
                    })).collect::<Vec<_>>(),
                }),
            );
        }
        Outcome::Written {
            written,
            base,
            action,
            path,
        } => (written, base, action, path),
    };
    let mut answer = json!({
        "mode": mode.as_str(),
        "action": action,
        "path": path,
        "base": base,
        "revision": written.sha,
        "branch": written.branch,
    });
    let mut status = StatusCode::OK;
    let mut failure = None;
    match &forge {
        None => {
            state.queue.reconcile(Trigger::Api);
            answer["result"] = json!("committed; reconcile queued");
            if action == Action::Created {
                status = StatusCode::CREATED;
            }
        }
        Some((forge, repo)) => {
            let (title, body) = change::pull_request_text(&target, action, caller.actor(), &base);
            let pull = NewPullRequest {
                title,
                head: written.branch.clone(),
                base: state.config.branch.clone(),
                body,
            };
            match forge.open_pull_request(repo, &pull).await {
                Ok(pr) => {
                    answer["result"] = json!("pull request opened; olo plans it");
                    answer["pull_request"] = json!({ "number": pr.number, "url": pr.html_url });
                    status = StatusCode::ACCEPTED;
                }
                Err(e) => failure = Some(e),
            }
        }
    }
    let audit = NewAudit {
        actor: caller.actor().to_string(),
        action: audit_action(&target, action == Action::Deleted),
        target: target.label(),
        revision: Some(written.sha.clone()),
        details: {
            let mut d = answer.clone();
            if let Some(e) = &failure {
                d["pull_request_error"] = json!(format!("{e}: {:#}", anyhow_chain(e)));
            }
            d
        },
    };
    if let Err(e) = state.store.append_audit(&audit).await {
        tracing::warn!("olo: could not audit an API write ({e})");
    }
    if let Some(e) = failure {
        return ApiError::new(
            if e.is_temporary() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_GATEWAY
            },
            "pull_request_failed",
            format!(
                "the change is on branch `{}` ({}), but GitHub did not open the pull request ({e}: {}); open it from that branch",
                written.branch,
                written.sha,
                anyhow_chain(&e)
            ),
        )
        .into_response();
    }
    (status, Json(answer)).into_response()
}

/// How many diagnostics a refused write's audit entry keeps.
const AUDITED_DIAGNOSTICS: usize = 10;

/// `job_apply`, `job_delete`, `workspace_apply`, `workspace_delete`.
fn audit_action(target: &Target, deleting: bool) -> String {
    format!(
        "{}_{}",
        match target {
            Target::Job { .. } => "job",
            Target::Workspace { .. } => "workspace",
        },
        if deleting { "delete" } else { "apply" }
    )
}

/// A write that reached the repository and was refused there (409 stale base, 422 invalid):
/// audited as `<action>_refused`, so the log shows who tried what even when nothing changed.
async fn audit_refusal(
    state: &AppState,
    caller: &Caller,
    target: &Target,
    deleting: bool,
    details: Value,
) {
    let entry = NewAudit {
        actor: caller.actor().to_string(),
        action: format!("{}_refused", audit_action(target, deleting)),
        target: target.label(),
        revision: None,
        details,
    };
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::warn!("olo: could not audit a refused API write ({e})");
    }
}

/// The causes of an error, joined.
fn anyhow_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push(c.to_string());
        cause = c.source();
    }
    out.join(": ")
}

fn refusal(r: Refusal) -> Response {
    match r {
        Refusal::BadBody(m) => ApiError::bad_request(m).into_response(),
        Refusal::Missing(m) => ApiError::not_found(m).into_response(),
        Refusal::HasJobs(m) => {
            ApiError::new(StatusCode::CONFLICT, "workspace_has_jobs", m).into_response()
        }
    }
}

/// Reads the tip, checks the base, validates the change on it and commits: all under the
/// source's lock, so no reconcile fetches in between.
#[allow(clippy::too_many_arguments)]
fn commit_change(
    source: &SharedSource,
    target: &Target,
    text: Option<&str>,
    base: Option<&str>,
    actor: &str,
    via: &str,
    mode: Mode,
    tracked: &str,
) -> Result<Outcome, ApiError> {
    let mut source = source.lock().expect("source lock");
    let describe = source.describe();
    let unavailable = |e: &dyn std::fmt::Display| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "source_unavailable",
            format!("could not read the branch tip of {describe} ({e:#})"),
        )
    };
    let tip = source.latest().map_err(|e| unavailable(&e))?;
    let tip_sha = tip.revision.sha.clone();
    if let Some(base) = base {
        if !change::same_revision(base, &tip_sha) {
            return Ok(Outcome::Moved {
                base: base.to_string(),
                tip: tip_sha,
            });
        }
    }
    let snapshot =
        olo_reconciler::snapshot::from_commit(&tip.repo, &tip_sha).map_err(|e| unavailable(&e))?;
    let (action, changes) = match change::changes(&snapshot, target, text) {
        Ok(c) => c,
        Err(r) => return Ok(Outcome::Refused(r)),
    };
    let path = changes.first().map(|c| c.path.clone()).unwrap_or_default();
    let validation = olo_schema::validate(change::apply(snapshot, &changes));
    let errors = change::errors(&validation.diagnostics);
    if !errors.is_empty() {
        return Ok(Outcome::Invalid {
            base: tip_sha,
            diagnostics: errors,
        });
    }
    let (branch, new_branch) = match mode {
        Mode::PullRequest => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            (change::branch(target, &id[..8]), true)
        }
        _ => (tracked.to_string(), false),
    };
    let request = WriteRequest {
        base: tip_sha.clone(),
        changes,
        author: change::author(actor),
        message: change::message(target, action, actor, via, &tip_sha),
        branch,
        new_branch,
    };
    match source.write(&request) {
        Ok(written) => Ok(Outcome::Written {
            written,
            base: tip_sha,
            action,
            path,
        }),
        Err(WriteError::Moved { tip, .. }) => Ok(Outcome::Moved { base: tip_sha, tip }),
        Err(e) => Err(write_error(&e)),
    }
}

fn write_error(e: &WriteError) -> ApiError {
    let chain = anyhow_chain(e);
    let message = if chain.is_empty() {
        e.to_string()
    } else {
        format!("{e}: {chain}")
    };
    match e {
        WriteError::Unsupported(_) => ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "source_cannot_commit",
            format!("{message}: API writes need a git repository as the source (source.path at a repository's root, or source.url)"),
        ),
        WriteError::BranchExists(_) => ApiError::new(StatusCode::CONFLICT, "branch_exists", message),
        WriteError::Dirty { .. } => ApiError::new(StatusCode::CONFLICT, "working_tree_dirty", message),
        WriteError::Push { .. } if e.is_temporary() => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "source_unavailable", message)
        }
        WriteError::Push { .. } | WriteError::PushToWorkingTree { .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, "push_refused", message)
        }
        WriteError::Moved { .. } | WriteError::Git { .. } => ApiError::internal(&message),
    }
}
