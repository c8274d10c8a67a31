//! The check after an apply (Airflow parsed every changed DAG), and its retry when the target
//! did not answer.

use chrono::Utc;

use super::Engine;
use crate::catalog::Catalog;
use crate::plan::Plan;
use crate::store::PendingCheck;

/// A check run after the sink was written and before the apply counts as done: e.g. Airflow
/// parsed every changed DAG without an import error (and new DAGs got their pause state).
#[async_trait::async_trait]
pub trait AfterApply: Send + Sync {
    async fn after_apply(
        &self,
        plan: &Plan,
        catalog: &Catalog,
        applied_since: chrono::DateTime<Utc>,
    ) -> std::result::Result<(), CheckFailed>;
}

/// Why an [`AfterApply`] check failed: what people need to fix it (the stack trace), and whether
/// it failed only because the target did not answer (the same check may pass later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailed {
    pub message: String,
    pub unanswered: bool,
}

/// A check that failed because its target did not answer: the commit, the plan it checked and
/// when that apply began, so that a retry of the same commit (whose files are written, so its
/// plan is empty) checks them again. Kept in the state store too
/// ([`crate::store::Store::pending_check`]), so that a restarted olo or a new leader runs it
/// again rather than settling the commit unchecked.
#[derive(Debug, Clone, PartialEq)]
pub struct Unchecked {
    pub sha: String,
    pub plan: Plan,
    pub since: chrono::DateTime<Utc>,
}

impl Unchecked {
    /// As the store keeps it: the plan without its diffs (the check reads names and actions).
    fn stored(&self) -> PendingCheck {
        let mut plan = self.plan.clone();
        for change in &mut plan.changes {
            change.diff = None;
        }
        PendingCheck {
            sha: self.sha.clone(),
            plan: serde_json::to_value(&plan).unwrap_or_default(),
            since: self.since,
        }
    }

    fn from_stored(p: PendingCheck) -> Option<Unchecked> {
        Some(Unchecked {
            plan: serde_json::from_value(p.plan).ok()?,
            sha: p.sha,
            since: p.since,
        })
    }
}

impl Engine {
    /// Runs the after-apply check of `plan` (applied from `since` on) for commit `sha` of
    /// `branch`. A commit whose files were written while the target did not answer its check
    /// has an empty plan now: the check of the plan that wrote them is run again. A check the
    /// target did not answer is kept for the next reconcile of the same commit, in memory and
    /// in the store (read back once per process, the first time).
    pub(super) async fn check_apply(
        &mut self,
        branch: &str,
        sha: &str,
        plan: &Plan,
        since: chrono::DateTime<Utc>,
    ) -> Result<(), CheckFailed> {
        if !self.unchecked_read {
            self.unchecked_read = true;
            match self.store.pending_check(branch).await {
                Ok(stored) => self.unchecked = stored.and_then(Unchecked::from_stored),
                Err(e) => tracing::warn!(
                    error = %crate::text::chain(&e),
                    "could not read the pending after-apply check; a restarted check is skipped"
                ),
            }
        }
        let previous = self.unchecked.take();
        let had_one = previous.is_some();
        let again = previous.filter(|u| u.sha == sha && !plan.has_changes());
        let checked = match (&self.after_apply, self.catalog(), &again) {
            (Some(check), Some(catalog), _) if plan.has_changes() => {
                check.after_apply(plan, &catalog, since).await
            }
            (Some(check), Some(catalog), Some(u)) => {
                check.after_apply(&u.plan, &catalog, u.since).await
            }
            _ => Ok(()),
        };
        let keep = if checked.as_ref().is_err_and(|e| e.unanswered) {
            let pending = again.unwrap_or_else(|| Unchecked {
                sha: sha.to_string(),
                plan: plan.clone(),
                since,
            });
            let store = Some(pending.stored());
            self.unchecked = Some(pending);
            store
        } else {
            None
        };
        // Written when it changes: kept, or answered (or dropped for a newer commit).
        if keep.is_some() || had_one {
            if let Err(e) = self.store.set_pending_check(branch, keep.as_ref()).await {
                tracing::warn!(
                    error = %crate::text::chain(&e),
                    "could not record the pending after-apply check"
                );
            }
        }
        checked
    }
}
