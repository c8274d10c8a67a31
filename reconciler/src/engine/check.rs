//! The check after an apply (Airflow parsed every changed DAG), and its retry when the target
//! did not answer.

use chrono::Utc;

use super::Engine;
use crate::catalog::Catalog;
use crate::plan::Plan;

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
/// plan is empty) checks them again.
pub struct Unchecked {
    pub sha: String,
    pub plan: Plan,
    pub since: chrono::DateTime<Utc>,
}

impl Engine {
    /// Runs the after-apply check of `plan` (applied from `since` on) for commit `sha`. A commit
    /// whose files were written while the target did not answer its check has an empty plan
    /// now: the check of the plan that wrote them is run again. A check the target did not
    /// answer is kept for the next reconcile of the same commit.
    pub(super) async fn check_apply(
        &mut self,
        sha: &str,
        plan: &Plan,
        since: chrono::DateTime<Utc>,
    ) -> Result<(), CheckFailed> {
        let again = self
            .unchecked
            .take()
            .filter(|u| u.sha == sha && !plan.has_changes());
        let checked = match (&self.after_apply, self.catalog(), &again) {
            (Some(check), Some(catalog), _) if plan.has_changes() => {
                check.after_apply(plan, &catalog, since).await
            }
            (Some(check), Some(catalog), Some(u)) => {
                check.after_apply(&u.plan, &catalog, u.since).await
            }
            _ => Ok(()),
        };
        if checked.as_ref().is_err_and(|e| e.unanswered) {
            self.unchecked = Some(again.unwrap_or_else(|| Unchecked {
                sha: sha.to_string(),
                plan: plan.clone(),
                since,
            }));
        }
        checked
    }
}
