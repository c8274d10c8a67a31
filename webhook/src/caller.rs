//! The caller of a request, as every API route and dashboard page sees it: who (from
//! [`auth::identify`]) and the live roles ([`access::Policy`]). Routes say what they need
//! ([`Need`]); a caller without it gets 401 (not signed in) or 403 (signed in, no role), the
//! same answer whether what was asked for exists or not. Denied writes and every 403 are
//! written to the audit log (`denied`), each value the caller sent cut to [`ECHO_MAX`]
//! characters. Denials of callers without a good credential are counted in a metric and audited
//! as at most two rows per source and interval ([`Denials`]): a flood of bogus tokens cannot
//! grow the audit log without bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
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

/// Most characters of any value a caller sent (a path, a reason naming a key id) that an audit
/// entry repeats.
pub const ECHO_MAX: usize = 200;

/// How long the denials of one anonymous source are summed into one audit row.
pub const DENIAL_INTERVAL: Duration = Duration::from_secs(60);

/// Sources tracked at once; past this, new ones share one window.
const MAX_SOURCES: usize = 4096;

/// The denials of callers without a good credential (`unauthenticated`: a bad token;
/// `anonymous`: none), per kind and source address: the first of an interval is audited in
/// full, the rest are counted and audited as one summary row when the interval ends (by the next
/// denial of the source, or by [`Denials::flush`], which the server runs every interval).
pub struct Denials {
    interval: Duration,
    windows: Mutex<HashMap<(&'static str, String), Window>>,
}

struct Window {
    started: Instant,
    /// Denials after the first, not audited yet.
    more: u64,
    last_target: String,
}

impl Default for Denials {
    fn default() -> Self {
        Denials::new(DENIAL_INTERVAL)
    }
}

impl Denials {
    pub fn new(interval: Duration) -> Denials {
        Denials {
            interval,
            windows: Mutex::default(),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Records one denial; returns the audit entries it calls for (none, the denial itself,
    /// and/or the summary of the source's previous interval).
    fn record(&self, actor: &'static str, source: &str, entry: NewAudit) -> Vec<NewAudit> {
        let mut windows = self.windows.lock().expect("denials lock");
        let mut key = (actor, source.to_string());
        if !windows.contains_key(&key) && windows.len() >= MAX_SOURCES {
            key.1 = "(many sources)".into();
        }
        let mut out = Vec::new();
        match windows.get_mut(&key) {
            Some(w) if w.started.elapsed() < self.interval => {
                w.more += 1;
                w.last_target = entry.target;
                return out;
            }
            Some(w) => out.extend(self.summary(&key, w)),
            None => {}
        }
        windows.insert(
            key,
            Window {
                started: Instant::now(),
                more: 0,
                last_target: entry.target.clone(),
            },
        );
        out.push(entry);
        out
    }

    fn summary(&self, (actor, source): &(&'static str, String), w: &Window) -> Option<NewAudit> {
        (w.more > 0).then(|| NewAudit {
            actor: (*actor).to_string(),
            action: DENIED.into(),
            target: format!("{} more requests", w.more),
            revision: None,
            details: json!({
                "summary": true,
                "source": source,
                "count": w.more,
                "interval_seconds": self.interval.as_secs(),
                "last_target": w.last_target,
            }),
        })
    }

    /// Audits the summaries of intervals that have ended, and forgets their sources.
    pub async fn flush(&self, store: &dyn olo_reconciler::store::Store) {
        let due: Vec<NewAudit> = {
            let mut windows = self.windows.lock().expect("denials lock");
            let mut due = Vec::new();
            windows.retain(|key, w| {
                if w.started.elapsed() < self.interval {
                    return true;
                }
                due.extend(self.summary(key, w));
                false
            });
            due
        };
        for entry in due {
            append(store, &entry).await;
        }
    }
}

pub struct Caller {
    pub who: Option<Principal>,
    pub catalog: Option<Arc<Catalog>>,
    open_reads: bool,
    method: Method,
    path: String,
    /// The client's address (`unknown` when the server was not told it).
    source: String,
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
                source: source(parts),
            }),
            Err(e) => {
                if !is_read(&parts.method) && e.status == StatusCode::UNAUTHORIZED {
                    let source = source(parts);
                    audit_denial(
                        state,
                        Denier::Anonymous("unauthenticated", &source),
                        &parts.method,
                        &path,
                        &e.message,
                    )
                    .await;
                }
                Err(e)
            }
        }
    }
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// The client's address, from the connection.
fn source(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

/// Who was refused: a caller without a good credential (`unauthenticated` or `anonymous`) from
/// a source address, or a signed-in user.
enum Denier<'a> {
    Anonymous(&'static str, &'a str),
    User(&'a str),
}

async fn audit_denial(state: &AppState, who: Denier<'_>, method: &Method, path: &str, why: &str) {
    use olo_reconciler::text::echo;
    let (actor, label) = match &who {
        Denier::Anonymous(actor, _) => (*actor, *actor),
        Denier::User(name) => (*name, "signed_in"),
    };
    state
        .metrics
        .denied_requests
        .get_or_create(&crate::metrics::CallerLabels { caller: label })
        .inc();
    let mut details = json!({ "reason": echo(why, ECHO_MAX) });
    if let Denier::Anonymous(_, source) = &who {
        details["source"] = json!(source);
    }
    let entry = NewAudit {
        actor: echo(actor, ECHO_MAX).into_owned(),
        action: DENIED.into(),
        target: echo(&format!("{method} {path}"), ECHO_MAX).into_owned(),
        revision: None,
        details,
    };
    let entries = match who {
        Denier::Anonymous(actor, source) => state.denials.record(actor, source, entry),
        Denier::User(_) => vec![entry],
    };
    for entry in entries {
        append(state.store.as_ref(), &entry).await;
    }
}

async fn append(store: &dyn olo_reconciler::store::Store, entry: &NewAudit) {
    if let Err(e) = store.append_audit(entry).await {
        tracing::warn!(error = %e, "could not audit a denied request");
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
                let who = Denier::Anonymous("anonymous", &self.source);
                audit_denial(state, who, &self.method, &self.path, &e.message).await;
            }
            return Err(e);
        };
        let message = format!("user:{} needs {}", who.name, need.describe());
        audit_denial(
            state,
            Denier::User(&who.name),
            &self.method,
            &self.path,
            &message,
        )
        .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(target: &str) -> NewAudit {
        NewAudit {
            actor: "anonymous".into(),
            action: DENIED.into(),
            target: target.into(),
            revision: None,
            details: json!({}),
        }
    }

    #[test]
    fn the_denials_of_a_source_are_one_row_and_a_summary_per_interval() {
        let d = Denials::new(Duration::from_millis(200));
        assert_eq!(d.record("anonymous", "10.0.0.1", entry("POST /a")).len(), 1);
        for _ in 0..100 {
            assert!(d
                .record("anonymous", "10.0.0.1", entry("POST /b"))
                .is_empty());
        }
        // Another source, or another kind of caller, has its own interval.
        assert_eq!(d.record("anonymous", "10.0.0.2", entry("POST /c")).len(), 1);
        assert_eq!(
            d.record("unauthenticated", "10.0.0.1", entry("POST /c"))
                .len(),
            1
        );
        std::thread::sleep(Duration::from_millis(250));
        let rows = d.record("anonymous", "10.0.0.1", entry("POST /d"));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].target, "100 more requests");
        assert_eq!(rows[0].details["count"], 100);
        assert_eq!(rows[0].details["source"], "10.0.0.1");
        assert_eq!(rows[0].details["last_target"], "POST /b");
        assert_eq!(rows[1].target, "POST /d");
    }

    #[test]
    fn past_the_limit_new_sources_share_one_window() {
        let d = Denials::new(Duration::from_secs(3600));
        for i in 0..MAX_SOURCES {
            assert_eq!(d.record("anonymous", &format!("s{i}"), entry("x")).len(), 1);
        }
        assert_eq!(d.record("anonymous", "one more", entry("x")).len(), 1);
        assert!(d.record("anonymous", "and another", entry("x")).is_empty());
        assert_eq!(d.windows.lock().unwrap().len(), MAX_SOURCES + 1);
    }
}
