//! What a reconcile records besides the plan: the audit entries of applies, refusals and drift
//! repairs, and the branch status.

use chrono::Utc;
use serde_json::json;

use super::{short, Engine};
use crate::plan::Plan;
use crate::signature::{Policy, Verification};
use crate::store::{BranchStatus, NewAudit, RevisionStatus, SyncState};
use crate::Result;

/// The audit action of a commit refused because its signature does not verify.
pub const UNVERIFIED_COMMIT: &str = "unverified_commit";

/// The branch status message of a refused commit: the commit, the reason, what stays live.
pub fn refusal(sha: &str, signature: &Verification, last_applied: Option<&str>) -> String {
    format!(
        "commit {} is refused: {signature} (verify.policy = \"enforce\"); live state stays at {}",
        short(sha),
        last_applied.map(short).unwrap_or("nothing applied yet")
    )
}

/// The audit action of a reconcile that put back resources changed in the target by hand.
pub const DRIFT_REPAIRED: &str = "drift_repaired";
/// Resources named in that audit entry (the count is always whole).
const DRIFT_LISTED: usize = 50;

pub(super) fn actor(p: &crate::store::Person) -> String {
    format!("{} <{}>", p.name, p.email)
}

/// The audit entry of an apply: who, the commit, the plan summary and the outcome.
pub(super) fn apply_audit(
    rev: &crate::store::Revision,
    summary: &serde_json::Value,
    outcome: std::result::Result<(), &str>,
) -> NewAudit {
    let mut details = json!({
        "committer": actor(&rev.committer),
        "authored_at": rev.author.time,
        "committed_at": rev.committer.time,
        "message": rev.message.lines().next().unwrap_or_default(),
        "signed": rev.signed,
        "plan": summary,
        "outcome": if outcome.is_ok() { "applied" } else { "failed" },
    });
    if let Some(signature) = &rev.signature {
        details["signature"] = json!(signature.to_string());
    }
    if let Err(error) = outcome {
        details["error"] = json!(error);
    }
    NewAudit {
        actor: actor(&rev.author),
        action: "apply".into(),
        target: rev.branch.clone(),
        revision: Some(rev.sha.clone()),
        details,
    }
}

impl Engine {
    /// Refuses commit `rev`, whose signature does not verify under verify.policy =
    /// "enforce": recorded as invalid and audited (`unverified_commit`); the branch stalls and
    /// the live state stays at `last_applied`.
    pub(super) async fn refuse(
        &self,
        rev: &crate::store::Revision,
        signature: &Verification,
        last_applied: Option<String>,
    ) -> Result<()> {
        self.store
            .set_revision_status(&rev.branch, &rev.sha, RevisionStatus::Invalid, &json!([]))
            .await?;
        self.store
            .append_audit(&NewAudit {
                actor: actor(&rev.author),
                action: UNVERIFIED_COMMIT.into(),
                target: rev.branch.clone(),
                revision: Some(rev.sha.clone()),
                details: json!({
                    "message": rev.message.lines().next().unwrap_or_default(),
                    "signature": signature.to_string(),
                    "verdict": signature.verdict,
                    "policy": Policy::Enforce.as_str(),
                }),
            })
            .await?;
        let message = refusal(&rev.sha, signature, last_applied.as_deref());
        self.stall(rev, last_applied, message).await
    }

    /// Stalls the branch at `rev` with `message` and no diagnostics: a target failed (the
    /// commit is valid), or the commit was refused for its signature.
    pub(super) async fn stall(
        &self,
        rev: &crate::store::Revision,
        applied: Option<String>,
        message: String,
    ) -> Result<()> {
        self.set_status(
            &rev.branch,
            SyncState::Stalled,
            Some(&rev.sha),
            applied,
            Some(message),
            json!([]),
        )
        .await
    }

    pub(super) async fn set_status(
        &self,
        branch: &str,
        state: SyncState,
        attempted: Option<&str>,
        applied: Option<String>,
        message: Option<String>,
        diagnostics: serde_json::Value,
    ) -> Result<()> {
        self.store
            .set_branch_status(&BranchStatus {
                branch: branch.to_string(),
                state,
                last_attempted: attempted.map(str::to_string),
                last_applied: applied,
                message,
                diagnostics,
                updated_at: Utc::now(),
            })
            .await?;
        Ok(())
    }

    /// Audits the resources someone changed or removed in the target by hand that `plan` put
    /// back (`drift_repaired`), if any.
    pub(super) async fn record_drift(
        &self,
        rev: &crate::store::Revision,
        plan: &Plan,
    ) -> Result<()> {
        let drifted: Vec<&str> = plan
            .changes
            .iter()
            .filter(|c| c.is_drift())
            .map(|c| c.name.as_str())
            .collect();
        if !drifted.is_empty() {
            // Resources someone changed or removed in the target by hand, put back.
            self.store
                .append_audit(&NewAudit {
                    actor: "olo".into(),
                    action: DRIFT_REPAIRED.into(),
                    target: self.sink.target().to_string(),
                    revision: Some(rev.sha.clone()),
                    details: json!({
                        "count": drifted.len(),
                        "resources": drifted.iter().take(DRIFT_LISTED).collect::<Vec<_>>(),
                    }),
                })
                .await?;
        }
        Ok(())
    }
}
