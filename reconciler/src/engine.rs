//! One reconcile: a commit becomes live state, exactly once, with a record of who did it.
//!
//! snapshot (git) -> validate -> render -> observe (sink) -> plan (pure) -> apply -> record.
//! An invalid commit is recorded with its diagnostics and never applied; the live state stays
//! at the last applied commit and the branch is Stalled until a valid commit arrives.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use olo_templates::RenderSettings;
use serde_json::json;

use crate::apply::{self, Progress, Sink};
use crate::plan::{self, Plan};
use crate::source::Tip;
use crate::store::{BranchStatus, NewAudit, RevisionStatus, Store, SyncState};
use crate::Result;

/// What a reconcile did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The plan was applied (possibly empty: nothing to change).
    Applied { plan: Plan },
    /// The commit failed validation; nothing was applied.
    Invalid { errors: usize },
}

/// The desired state of a snapshot: validated and rendered, or the diagnostics.
pub enum Desired {
    Valid {
        files: BTreeMap<String, Vec<u8>>,
    },
    Invalid {
        diagnostics: Vec<olo_schema::Diagnostic>,
    },
}

/// Validates and renders a snapshot into the files a sink holds (manifest.json is left out: the
/// inventory in the store replaces it, and it changes with every revision).
pub fn desired(snapshot: olo_schema::Snapshot, settings: &RenderSettings) -> Result<Desired> {
    let validation = olo_schema::validate(snapshot);
    let Some(repo) = validation.repo else {
        return Ok(Desired::Invalid {
            diagnostics: validation.diagnostics,
        });
    };
    let mut rendered = olo_templates::render(&repo, settings)?;
    rendered.files.remove("manifest.json");
    Ok(Desired::Valid {
        files: rendered.files,
    })
}

/// Plans `files` against what the sink holds and what olo owns there.
pub async fn plan_against(
    revision: Option<&str>,
    files: &BTreeMap<String, Vec<u8>>,
    sink: &dyn Sink,
    store: &dyn Store,
    prune: bool,
) -> Result<(Plan, Vec<crate::store::InventoryItem>)> {
    let owned = store.inventory(sink.target()).await?;
    let mut names = files
        .keys()
        .map(String::as_str)
        .chain(owned.iter().map(|i| i.name.as_str()));
    let observed = sink.observe(&mut names)?;
    Ok((plan::diff(revision, files, &observed, &owned, prune), owned))
}

pub struct Engine {
    pub store: Arc<dyn Store>,
    pub sink: Box<dyn Sink>,
    pub render: RenderSettings,
    pub prune: bool,
}

fn actor(p: &crate::store::Person) -> String {
    format!("{} <{}>", p.name, p.email)
}

impl Engine {
    /// Reconciles one commit of a branch.
    pub async fn reconcile(&mut self, tip: &Tip, progress: Progress<'_>) -> Result<Outcome> {
        let rev = &tip.revision;
        let store = self.store.clone();
        store.record_revision(rev).await?;
        let previous = store.branch_status(&rev.branch).await?;
        let last_applied = previous.as_ref().and_then(|s| s.last_applied.clone());
        self.set_status(
            &rev.branch,
            SyncState::Reconciling,
            Some(&rev.sha),
            last_applied.clone(),
            None,
            json!([]),
        )
        .await?;

        let snapshot = crate::snapshot::from_commit(&tip.repo, &rev.sha)?;
        let files = match desired(snapshot, &self.render)? {
            Desired::Invalid { diagnostics } => {
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                let diags = serde_json::to_value(&diagnostics).unwrap_or_default();
                store
                    .set_revision_status(&rev.branch, &rev.sha, RevisionStatus::Invalid, &diags)
                    .await?;
                store
                    .append_audit(&NewAudit {
                        actor: actor(&rev.author),
                        action: "invalid_commit".into(),
                        target: rev.branch.clone(),
                        revision: Some(rev.sha.clone()),
                        details: json!({ "errors": errors }),
                    })
                    .await?;
                let message = format!(
                    "commit {} is invalid ({errors} error{}); live state stays at {}",
                    short(&rev.sha),
                    if errors == 1 { "" } else { "s" },
                    last_applied
                        .as_deref()
                        .map(short)
                        .unwrap_or("nothing applied yet")
                );
                self.set_status(
                    &rev.branch,
                    SyncState::Stalled,
                    Some(&rev.sha),
                    last_applied,
                    Some(message),
                    diags,
                )
                .await?;
                return Ok(Outcome::Invalid { errors });
            }
            Desired::Valid { files } => files,
        };

        let (plan, owned) = plan_against(
            Some(&rev.sha),
            &files,
            self.sink.as_ref(),
            store.as_ref(),
            self.prune,
        )
        .await?;
        let summary = serde_json::to_value(plan.summary()).unwrap_or_default();
        let plan_id = store
            .insert_plan(
                &rev.branch,
                &rev.sha,
                &summary,
                &serde_json::to_value(&plan).unwrap_or_default(),
            )
            .await?;
        store
            .set_revision_status(&rev.branch, &rev.sha, RevisionStatus::Applying, &json!([]))
            .await?;
        let result = apply::apply(
            &plan,
            &files,
            &owned,
            self.sink.as_mut(),
            store.as_ref(),
            progress,
        )
        .await;
        if let Err(e) = result {
            store
                .finish_plan(plan_id, "failed", Some(&format!("{e:#}")))
                .await?;
            store
                .set_revision_status(&rev.branch, &rev.sha, RevisionStatus::Failed, &json!([]))
                .await?;
            let message = format!("applying {} failed: {e}", short(&rev.sha));
            self.set_status(
                &rev.branch,
                SyncState::Stalled,
                Some(&rev.sha),
                last_applied,
                Some(message),
                json!([]),
            )
            .await?;
            return Err(e);
        }
        store.finish_plan(plan_id, "applied", None).await?;
        store
            .set_revision_status(&rev.branch, &rev.sha, RevisionStatus::Applied, &json!([]))
            .await?;
        if plan.has_changes() || last_applied.as_deref() != Some(rev.sha.as_str()) {
            store
                .append_audit(&NewAudit {
                    actor: actor(&rev.author),
                    action: "apply".into(),
                    target: rev.branch.clone(),
                    revision: Some(rev.sha.clone()),
                    details: json!({
                        "committer": actor(&rev.committer),
                        "authored_at": rev.author.time,
                        "committed_at": rev.committer.time,
                        "message": rev.message.lines().next().unwrap_or_default(),
                        "signed": rev.signed,
                        "plan": summary,
                        "outcome": "applied",
                    }),
                })
                .await?;
        }
        self.set_status(
            &rev.branch,
            SyncState::Ready,
            Some(&rev.sha),
            Some(rev.sha.clone()),
            None,
            json!([]),
        )
        .await?;
        Ok(Outcome::Applied { plan })
    }

    async fn set_status(
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
}

pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
