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

use crate::apply::{self, Progress, SharedSink};
use crate::catalog::Catalog;
use crate::lakehouse::{self, apply::Lakehouse};
use crate::plan::{self, Plan};
use crate::signature::{Policy, Verification, Verifier};
use crate::source::Tip;
use crate::store::{NewAudit, RevisionStatus, Store, SyncState};
use crate::Result;

/// What a reconcile did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The plan was applied (possibly empty: nothing to change).
    Applied { plan: Plan },
    /// The commit failed validation; nothing was applied.
    Invalid { errors: usize },
    /// The files were written but a target refused them (e.g. Airflow could not import a DAG):
    /// the plan's outcome is "failed" with `error`, and the branch is Stalled until a new commit;
    /// or (`retry`) the target did not answer the check, which is tried again with backoff.
    Failed {
        plan: Plan,
        error: String,
        retry: bool,
    },
    /// `verify.policy = "enforce"` and the commit's signature does not verify with a trusted
    /// key: refused like an invalid commit, nothing applied.
    Unverified { signature: Verification },
}

/// The desired state of a snapshot: validated and rendered, or the diagnostics.
pub enum Desired {
    Valid {
        files: BTreeMap<String, Vec<u8>>,
        /// The validated repository (for the lakehouse part of a plan).
        repo: Box<olo_schema::Repo>,
        /// Warnings of the validation.
        diagnostics: Vec<olo_schema::Diagnostic>,
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
        repo: Box::new(repo),
        diagnostics: validation.diagnostics,
    })
}

mod check;
mod memo;
mod phases;
mod plan_commit;
mod record;
pub use crate::plan::{Observe, PlanOptions};
pub use check::{AfterApply, CheckFailed, Unchecked};
pub use memo::{Memo, Work};
pub use phases::Phases;
pub use plan_commit::{merge, plan_commit, plan_rows, CommitPlan, LakeInputs};
use record::{actor, apply_audit};
pub use record::{refusal, DRIFT_REPAIRED, UNVERIFIED_COMMIT};

pub struct Engine {
    pub store: Arc<dyn Store>,
    /// Read and written on blocking threads.
    pub sink: SharedSink,
    pub render: RenderSettings,
    pub prune: bool,
    /// When the sink was last read back whole (drift check); `None`: never in this process.
    pub last_full_observe: Option<std::time::Instant>,
    /// What the previous reconcile computed, so the next one redoes only what changed.
    pub memo: Option<Memo>,
    /// olo's inventory of the sink, held in memory between reconciles (this engine is the only
    /// writer of its branch); reloaded from the store on every full observe.
    pub inventory: Option<apply::Inventory>,
    /// Checked after each apply that changed something (Airflow's import errors).
    pub after_apply: Option<Arc<dyn AfterApply>>,
    /// Iceberg namespaces and warehouse locations, when configured.
    pub lakehouse: Option<Lakehouse>,
    /// olo's inventory of the lakehouse, held between reconciles while nothing changed there.
    pub lake_inventory: Option<Vec<crate::store::InventoryItem>>,
    /// How many lakehouse resources the last lakehouse plan found unchanged, when it found
    /// nothing to do: while the commits change no workspace, the lakehouse is not planned again
    /// (until the next full observe).
    pub lake_unchanged: Option<usize>,
    /// Where the last reconcile's time went.
    pub phases: Phases,
    /// Checks each commit's signature (`None`: verify.policy = "off").
    pub verify: Option<Arc<Verifier>>,
    /// The check of an apply whose target did not answer, to run again on a retry.
    pub unchecked: Option<Unchecked>,
    /// Whether the store's pending check was read into `unchecked` (once per process).
    pub unchecked_read: bool,
}

/// How often the daemon reads the whole sink back to find drift.
pub const FULL_OBSERVE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// The plan of a commit that is not applied (a pull request's head).
#[derive(Debug, Clone)]
pub enum Preview {
    Valid {
        plan: Plan,
        catalog: Catalog,
        /// Warnings of the validation.
        diagnostics: Vec<olo_schema::Diagnostic>,
    },
    Invalid {
        diagnostics: Vec<olo_schema::Diagnostic>,
    },
}

impl Engine {
    /// What the last valid commit wants of the lakehouse (empty before the first, or without a
    /// lakehouse target).
    pub fn lake(&self) -> Arc<lakehouse::Desired> {
        self.memo
            .as_ref()
            .map(|m| m.lake.clone())
            .unwrap_or_default()
    }

    /// What the last reconcile visited, phase by phase (`None` before the first).
    pub fn work(&self) -> Option<Work> {
        self.memo.as_ref().map(Memo::work)
    }

    /// Workspaces and jobs of the last valid commit this engine read (`None` before the first).
    pub fn catalog(&self) -> Option<Arc<Catalog>> {
        self.memo.as_ref().and_then(|m| m.catalog.clone())
    }

    /// What commit `sha` (an applied one) shows people, without planning or applying anything:
    /// its workspaces and jobs, and what it wants of the lakehouse. A follower replica serves
    /// this while the leader applies. `Ok(None)` when the commit is not valid. Read and
    /// validated on a blocking thread.
    pub async fn view(
        &self,
        repo_path: &std::path::Path,
        sha: &str,
    ) -> Result<Option<(Arc<Catalog>, Arc<lakehouse::Desired>)>> {
        let (repo_path, sha, lakehouse) = (
            repo_path.to_path_buf(),
            sha.to_string(),
            self.lakehouse.clone(),
        );
        blocking(move || {
            let snapshot = crate::snapshot::from_commit(&repo_path, &sha)?;
            let Some(repo) = olo_schema::validate(snapshot).repo else {
                return Ok(None);
            };
            let lake = lakehouse
                .as_ref()
                .map(|l| l.desired(&repo))
                .unwrap_or_default();
            Ok(Some((
                Arc::new(Catalog::from_repo(&repo, Some(&sha))),
                Arc::new(lake),
            )))
        })
        .await
    }

    /// Plans commit `sha` of the repository at `repo_path` against the live state, with diffs,
    /// and changes nothing (neither the sink, nor the store, nor this engine's memo): a pull
    /// request's head. Reads back only what olo's inventory does not vouch for. The commit is
    /// read, validated and rendered on a blocking thread.
    pub async fn preview(&self, repo_path: &std::path::Path, sha: &str) -> Result<Preview> {
        let (repo_path, commit, render) = (
            repo_path.to_path_buf(),
            sha.to_string(),
            self.render.clone(),
        );
        let desired = blocking(move || {
            let snapshot = crate::snapshot::from_commit(&repo_path, &commit)?;
            desired(snapshot, &render)
        })
        .await?;
        Ok(match desired {
            Desired::Invalid { diagnostics } => Preview::Invalid { diagnostics },
            Desired::Valid {
                files,
                repo,
                diagnostics,
            } => Preview::Valid {
                plan: self
                    .plan_desired(Some(sha), &files, &repo, Observe::Incremental)
                    .await?,
                catalog: Catalog::from_repo(&repo, Some(sha)),
                diagnostics,
            },
        })
    }

    /// Plans the desired state of a valid commit (`files` rendered from `repo`) against the
    /// live state, with a diff for every change, and changes nothing: `olo plan` (reading the
    /// targets back whole) and pull requests ([`Engine::preview`]).
    pub async fn plan_desired(
        &self,
        revision: Option<&str>,
        files: &BTreeMap<String, Vec<u8>>,
        repo: &olo_schema::Repo,
        observe: Observe,
    ) -> Result<Plan> {
        let options = PlanOptions {
            prune: self.prune,
            diffs: plan::Diffs::All,
            observe,
        };
        // The inventory held in memory is paired by reference, not copied.
        let read;
        let owned: Vec<&crate::store::InventoryItem> = match (observe, &self.inventory) {
            (Observe::Incremental, Some(inventory)) => inventory.values().collect(),
            _ => {
                read = self.store.inventory(self.sink.target()).await?;
                read.iter().collect()
            }
        };
        let lake = match &self.lakehouse {
            Some(lakehouse) => Some((
                lakehouse,
                lakehouse.desired(repo),
                self.store.inventory(lakehouse::TARGET).await?,
            )),
            None => None,
        };
        let planned = plan_commit(
            revision,
            &mut plan::rows(files, None, owned),
            &self.sink,
            lake.as_ref().map(|(lakehouse, desired, owned)| LakeInputs {
                lakehouse,
                desired,
                owned,
            }),
            &options,
            &mut Phases::new(),
        )
        .await?;
        Ok(planned.plan)
    }

    /// Reconciles one commit of a branch.
    pub async fn reconcile(&mut self, tip: &Tip, progress: Progress<'_>) -> Result<Outcome> {
        self.phases = Phases::new();
        let outcome = self.reconcile_timed(tip, progress).await;
        self.phases.lap("store");
        outcome
    }

    async fn reconcile_timed(&mut self, tip: &Tip, progress: Progress<'_>) -> Result<Outcome> {
        let revision = crate::store::Revision {
            signature: self.signature(&tip.repo, &tip.revision.sha).await?,
            ..tip.revision.clone()
        };
        let rev = &revision;
        if self.verify.is_some() {
            self.phases.lap("verify");
        }
        let store = self.store.clone();
        store.record_revision(rev).await?;
        let previous = store.branch_status(&rev.branch).await?;
        let last_applied = previous.as_ref().and_then(|s| s.last_applied.clone());
        // Whether the last reconcile ended cleanly: Ready, or Stalled on an invalid commit (which
        // applied nothing). After a crash or a failed apply the inventory holds claims of files
        // that were never written, so a missing or old file says nothing about hands in the
        // target: no drift is reported then.
        let clean_start = previous.as_ref().is_none_or(|s| {
            s.state == SyncState::Ready
                || (s.state == SyncState::Stalled
                    && s.diagnostics.as_array().is_some_and(|d| !d.is_empty()))
        });
        self.set_status(
            &rev.branch,
            SyncState::Reconciling,
            Some(&rev.sha),
            last_applied.clone(),
            None,
            json!([]),
        )
        .await?;

        self.phases.lap("store");

        if let (Some(verifier), Some(signature)) = (&self.verify, &rev.signature) {
            if verifier.policy == Policy::Enforce && !signature.verified() {
                self.refuse(rev, signature, last_applied).await?;
                return Ok(Outcome::Unverified {
                    signature: signature.clone(),
                });
            }
        }

        // Git reads, validation and rendering run on a blocking thread, with the memo moved there
        // and back. On an error the memo is dropped: the next reconcile starts afresh.
        let mut memo = self.memo.take().unwrap_or_else(|| Memo::new(&tip.repo));
        let (repo_path, sha, render, lakehouse, mut phases) = (
            tip.repo.clone(),
            rev.sha.clone(),
            self.render.clone(),
            self.lakehouse.clone(),
            std::mem::take(&mut self.phases),
        );
        let (mut memo, phases, updated) = blocking(move || {
            let updated = memo.update(&repo_path, &sha, &render, lakehouse.as_ref(), &mut phases);
            Ok((memo, phases, updated))
        })
        .await?;
        self.phases = phases;
        let updated = updated?;
        if let Err(diagnostics) = updated {
            {
                self.memo = Some(memo);
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
                        details: json!({
                            "errors": errors,
                            "message": rev.message.lines().next().unwrap_or_default(),
                        }),
                    })
                    .await?;
                let message = format!(
                    "commit {} is invalid ({}); live state stays at {}",
                    short(&rev.sha),
                    crate::text::count(errors, "error"),
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
        }
        let files = &memo.files;
        let hashes = &memo.hashes;

        let observe = match self.last_full_observe {
            Some(t) if t.elapsed() < FULL_OBSERVE_EVERY => Observe::Incremental,
            _ => Observe::Full,
        };
        let (mut owned, held) = match (observe, self.inventory.take()) {
            (Observe::Incremental, Some(inventory)) => (inventory, true),
            _ => (
                apply::inventory(store.inventory(self.sink.target()).await?),
                false,
            ),
        };
        // The desired files paired with the inventory, for the plan and then the apply: on the
        // incremental path only the files changed since the last apply (the others hold what
        // olo applied and nobody touched since, until the next full observe reads them back).
        let dirty = memo.dirty.as_ref().filter(|_| held);
        let mut rows = match dirty {
            Some(names) => plan::rows_of(names, files, hashes, &owned),
            None => plan::rows(files, Some(hashes), owned.values()),
        };
        let untouched = match dirty {
            Some(_) => files.len() - rows.iter().filter(|r| r.want.is_some()).count(),
            None => 0,
        };
        let planned_rows = rows.len();
        // The lakehouse's inventory is held in memory between reconciles like the files'; read
        // again on a full observe and after any apply that changed the lakehouse.
        let mut lake_held = false;
        let lake_owned = match &self.lakehouse {
            Some(_) => Some(match (observe, self.lake_inventory.take()) {
                (Observe::Incremental, Some(inventory)) => {
                    lake_held = true;
                    inventory
                }
                _ => store.inventory(lakehouse::TARGET).await?,
            }),
            None => None,
        };
        // Nothing to plan in the lakehouse when no workspace changed since a lakehouse plan
        // that found nothing to do.
        let lake_unchanged = self
            .lake_unchanged
            .filter(|_| lake_held && !memo.lake_dirty && observe == Observe::Incremental);
        let options = PlanOptions {
            prune: self.prune,
            diffs: plan::Diffs::Updates,
            observe,
        };
        let planned = plan_commit(
            Some(&rev.sha),
            &mut rows,
            &self.sink,
            self.lakehouse
                .as_ref()
                .zip(lake_owned.as_ref())
                .filter(|_| lake_unchanged.is_none())
                .map(|(lakehouse, owned)| LakeInputs {
                    lakehouse,
                    desired: &memo.lake,
                    owned,
                }),
            &options,
            &mut self.phases,
        )
        .await;
        let CommitPlan {
            mut plan,
            lake: lake_plan,
        } = match planned {
            Ok(planned) => planned,
            Err(crate::Error::Lakehouse(e)) => {
                let message = format!("could not read the lakehouse: {e}");
                self.memo = Some(memo);
                self.stall(rev, last_applied, message).await?;
                return Err(e.into());
            }
            Err(e) => return Err(e),
        };
        plan.unchanged += untouched + lake_unchanged.unwrap_or(0);
        if lake_plan.is_some() {
            memo.lake_dirty = false;
        }
        self.lake_unchanged = match &lake_plan {
            Some(p) => (p.ops.is_empty() && p.forget.is_empty()).then_some(p.unchanged),
            // Not planned: still nothing to do.
            None => lake_unchanged,
        };
        let lake = match (self.lakehouse.clone(), lake_plan, lake_owned) {
            (Some(lake), Some(lake_plan), Some(owned)) => Some((lake, lake_plan, owned)),
            (_, None, owned) => {
                // Not planned: the lakehouse's inventory stays as it is.
                self.lake_inventory = owned;
                None
            }
            _ => None,
        };
        if !clean_start {
            plan.forget_drift();
        }
        if observe == Observe::Full {
            self.last_full_observe = Some(std::time::Instant::now());
        }
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
        let applying_since = Utc::now();
        self.phases.lap("store");
        // Namespaces and warehouses first, then the files that use them, then the drops.
        let mut result = Ok(apply::InventoryChange::default());
        if let Some((lake, lake_plan, _)) = &lake {
            if let Err(e) = lake
                .apply_writes(lake_plan, &memo.lake, store.as_ref(), &rev.sha)
                .await
            {
                result = Err(e);
            }
        }
        if result.is_ok() {
            result = apply::apply(&plan, files, &rows, &self.sink, store.as_ref(), progress).await;
        }
        if let (Ok(_), Some((lake, lake_plan, lake_owned))) = (&result, &lake) {
            if let Err(e) = lake
                .apply_drops(lake_plan, &memo.lake, lake_owned, store.as_ref())
                .await
            {
                result = Err(e);
            }
        }
        if let (Ok(_), Some((_, lake_plan, lake_owned))) = (&result, lake) {
            if lake_plan.ops.is_empty() && lake_plan.forget.is_empty() {
                self.lake_inventory = Some(lake_owned);
            }
        }
        memo.work.planned = planned_rows;
        if result.is_ok() {
            memo.applied();
        } else {
            self.lake_unchanged = None;
        }
        self.memo = Some(memo);
        self.phases.lap("apply");
        let result = result.map(|change| {
            change.apply_to(&mut owned);
            self.inventory = Some(owned);
        });
        if let Err(e) = result {
            // With the causes: "could not write …: No space left on device".
            let reason = crate::text::chain(&e);
            store.finish_plan(plan_id, "failed", Some(&reason)).await?;
            store
                .set_revision_status(&rev.branch, &rev.sha, RevisionStatus::Failed, &json!([]))
                .await?;
            let message = format!("applying {} failed: {reason}", short(&rev.sha));
            self.stall(rev, last_applied, message).await?;
            return Err(e);
        }
        let checked = self
            .check_apply(&rev.branch, &rev.sha, &plan, applying_since)
            .await;
        self.phases.lap("check");
        if let Err(CheckFailed {
            message: error,
            unanswered,
        }) = checked
        {
            store.finish_plan(plan_id, "failed", Some(&error)).await?;
            store
                .set_revision_status(&rev.branch, &rev.sha, RevisionStatus::Failed, &json!([]))
                .await?;
            store
                .append_audit(&apply_audit(
                    rev,
                    &summary,
                    Err(error.lines().next().unwrap_or_default()),
                ))
                .await?;
            let first = error.lines().next().unwrap_or_default().to_string();
            self.stall(
                rev,
                Some(rev.sha.clone()),
                format!("{} was written but failed: {first}", short(&rev.sha)),
            )
            .await?;
            return Ok(Outcome::Failed {
                plan,
                error,
                retry: unanswered,
            });
        }
        store.finish_plan(plan_id, "applied", None).await?;
        store
            .set_revision_status(&rev.branch, &rev.sha, RevisionStatus::Applied, &json!([]))
            .await?;
        if plan.has_changes() || last_applied.as_deref() != Some(rev.sha.as_str()) {
            store
                .append_audit(&apply_audit(rev, &summary, Ok(())))
                .await?;
        }
        self.record_drift(rev, &plan).await?;
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

    /// The signature check of commit `sha` (`None` when signatures are not checked), on a
    /// blocking thread: reading the commit and the key files, and the cryptography.
    pub async fn signature(
        &self,
        repo: &std::path::Path,
        sha: &str,
    ) -> Result<Option<Verification>> {
        let Some(verifier) = self.verify.clone() else {
            return Ok(None);
        };
        let (repo, sha) = (repo.to_path_buf(), sha.to_string());
        let signature = blocking(move || verifier.verify(&repo, &sha)).await?;
        tracing::info!(
            verdict = signature.label(),
            key = signature.key.as_deref().unwrap_or_default(),
            "signature: {signature}"
        );
        Ok(Some(signature))
    }
}

/// Runs `f` on a blocking thread (git reads, validation, rendering).
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> Result<R> + Send + 'static) -> Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(crate::Error::Blocking)?
}

pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
