//! The caller of a request, as every API route and dashboard page sees it: who (from
//! [`auth::identify`]) and the live roles ([`access::Policy`]). Routes say what they need
//! ([`Need`]); a caller without it gets 401 (not signed in) or 403 (signed in, no role), the
//! same answer whether what was asked for exists or not. Denied writes and every 403 are
//! written to the audit log (`denied`).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use olo_reconciler::catalog::Catalog;
use olo_reconciler::store::NewAudit;
use serde_json::json;

use crate::access::{Policy, Principal, Role};
use crate::error::ApiError;
use crate::{auth, AppState};

/// The audit action of a refused request.
pub const DENIED: &str = "denied";

pub struct Caller {
    pub who: Option<Principal>,
    pub catalog: Option<Arc<Catalog>>,
    open_reads: bool,
    method: Method,
    path: String,
}

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Any identity (a token or a sign-in), whatever its roles.
    SignedIn,
    /// Any identity, or none with open reads: lists, which hold only what the caller may see.
    Read,
    /// A role in some workspace: repository-wide views (sync status, revisions, lineage graph).
    Member,
    /// A role of at least this in the workspace.
    Workspace(&'a str, Role),
    /// An operator or admin of any workspace, or a platform admin.
    Reconcile,
    /// Everything readable: platform admins (or everyone, with open reads).
    All,
    /// Platform admins only (`olo.yaml` spec.admins), whatever the read settings.
    PlatformAdmin,
}

impl Need<'_> {
    fn describe(&self) -> String {
        match self {
            Need::SignedIn | Need::Read => "an API token or a sign-in".into(),
            Need::Member => "a role in at least one workspace".into(),
            Need::Workspace(ws, role) => format!("the {} role in workspace `{ws}`", role.as_str()),
            Need::Reconcile => {
                "the operator or admin role in a workspace, or platform admin".into()
            }
            Need::All | Need::PlatformAdmin => "platform admin (olo.yaml spec.admins)".into(),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        // The path as the client sent it (nested routers see it without their prefix).
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path(), |u| u.0.path())
            .to_string();
        match auth::identify(state, &parts.method, &parts.headers).await {
            Ok(who) => Ok(Caller {
                who,
                catalog: state.catalog(),
                open_reads: !state.config.read_requires_token,
                method: parts.method.clone(),
                path,
            }),
            Err(e) => {
                if !is_read(&parts.method) && e.status == StatusCode::UNAUTHORIZED {
                    audit_denial(state, "unauthenticated", &parts.method, &path, &e.message).await;
                }
                Err(e)
            }
        }
    }
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

async fn audit_denial(state: &AppState, actor: &str, method: &Method, path: &str, why: &str) {
    let entry = NewAudit {
        actor: actor.to_string(),
        action: DENIED.into(),
        target: format!("{method} {path}"),
        revision: None,
        details: json!({ "reason": why }),
    };
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::warn!("olo: could not audit a denied request ({e})");
    }
}

impl Caller {
    pub fn policy(&self) -> Policy<'_> {
        Policy {
            catalog: self.catalog.as_deref(),
            open_reads: self.open_reads,
        }
    }

    /// The identity written to the audit log.
    pub fn actor(&self) -> &str {
        self.who.as_ref().map_or("anonymous", |p| p.name.as_str())
    }

    pub fn allows(&self, need: Need<'_>) -> bool {
        let policy = self.policy();
        let who = self.who.as_ref();
        if policy.is_platform_admin(who) {
            return true;
        }
        match need {
            Need::SignedIn => who.is_some(),
            Need::Read => who.is_some() || policy.open_reads,
            Need::Member => policy.is_member(who),
            // Open reads let everyone see a workspace (and its 404) without naming one.
            Need::Workspace(_, Role::Viewer) if policy.sees_all(who) => true,
            Need::Workspace(ws, role) => policy.may(who, ws, role),
            Need::Reconcile => policy.may_reconcile(who),
            Need::All => policy.sees_all(who),
            // Platform admins returned above.
            Need::PlatformAdmin => false,
        }
    }

    /// `Ok` when the caller has what the route needs; else 401 or 403 (audited).
    pub async fn need(&self, state: &AppState, need: Need<'_>) -> Result<(), ApiError> {
        if self.allows(need) {
            return Ok(());
        }
        let Some(who) = &self.who else {
            let e = ApiError::unauthorized(format!(
                "this needs {}: send Authorization: Bearer <token> (an API token or an OpenID Connect token), or sign in on the dashboard",
                need.describe()
            ));
            if !is_read(&self.method) {
                audit_denial(state, "anonymous", &self.method, &self.path, &e.message).await;
            }
            return Err(e);
        };
        let message = format!("user:{} needs {}", who.name, need.describe());
        audit_denial(state, &who.name, &self.method, &self.path, &message).await;
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message))
    }

    /// The workspaces the caller may read (`None`: all of them).
    pub fn visible_workspaces(&self) -> Option<Vec<String>> {
        let policy = self.policy();
        if policy.sees_all(self.who.as_ref()) {
            return None;
        }
        Some(
            policy
                .visible(self.who.as_ref())
                .into_iter()
                .map(str::to_string)
                .collect(),
        )
    }
}
