//! Pull requests: the head of a pull request planned against the live state (changing nothing)
//! and reported on the pull request: one upserted plan comment and an `olo/plan` commit status.
//! The controller's worker plans them between reconciles, so a plan never overlaps an apply.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::engine::{short, Preview};
use crate::forge::{self, Forge, ForgeError, RepoRef};
use crate::lineage::{self, Graph, PlanImpact};

use super::{chain, Controller, PullRequestPlan};

/// What the head of a pull request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: its plan is on the pull request.
    Valid,
    /// Invalid: its diagnostics are on the pull request.
    Invalid,
}

impl Verdict {
    /// The `outcome` label of the `olo_pull_request_plans_total` metric.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Valid => "planned",
            Verdict::Invalid => "invalid",
        }
    }
}

/// Why a pull request could not be planned or reported.
#[derive(Debug, thiserror::Error)]
pub enum PullRequestError {
    #[error("`{0}` is not owner/name")]
    Repository(String),
    /// The head could not be fetched or planned (the error is on the pull request too).
    #[error(transparent)]
    Head(#[from] crate::Error),
    #[error(transparent)]
    Forge(#[from] ForgeError),
    #[error("the fetch task stopped")]
    Task(#[from] tokio::task::JoinError),
}

/// What is live when a pull request is planned: the live commit's catalog (`None` before the
/// first commit went live) and the lineage graph with its declarations. A pull request's plan is
/// shown against it: who owns what the plan deletes, and the lineage the merge would change.
pub struct Live {
    pub catalog: Option<Arc<Catalog>>,
    pub lineage: Graph,
}

/// Reads [`Live`] when a pull request's head is valid.
pub type LiveOf<'a> = &'a (dyn Fn() -> Live + Sync);

impl Controller {
    /// Plans the head of `pr` against the live state and reports it on the pull request through
    /// `forge` (a pending status first, then the comment and the final status). Without a forge
    /// the plan is only logged. An error planning the head is reported on the pull request and
    /// returned.
    pub async fn plan_pull_request(
        &self,
        forge: Option<&dyn Forge>,
        pr: &PullRequestPlan,
        live: LiveOf<'_>,
    ) -> Result<Verdict, PullRequestError> {
        let repo_ref = RepoRef::parse(&pr.repository)
            .ok_or_else(|| PullRequestError::Repository(pr.repository.clone()))?;
        if let Some(f) = forge {
            f.set_status(
                &repo_ref,
                &pr.head_sha,
                forge::StatusState::Pending,
                "olo is planning this commit",
                None,
            )
            .await?;
        }
        let repo_path = {
            let source = self.source.clone();
            let sha = pr.head_sha.clone();
            let refs = vec![format!("refs/pull/{}/head", pr.number)];
            tokio::task::spawn_blocking(move || {
                source
                    .lock()
                    .expect("source lock")
                    .fetch_commit(&sha, &refs)
            })
            .await?
        };
        let (preview, signature) = match repo_path {
            Ok(path) => (
                self.engine.preview(&path, &pr.head_sha).await,
                self.head_signature(&path, &pr.head_sha).await,
            ),
            Err(e) => (Err(e), None),
        };
        let no_owners = BTreeMap::new();
        let mut owners = &no_owners;
        let catalog_owners;
        let mut impact = PlanImpact::default();
        let message;
        let (outcome, verdict) = match &preview {
            Ok(Preview::Valid { plan, catalog, .. }) => {
                let live = live();
                // What the plan deletes is owned in the live commit.
                let mut all = live
                    .catalog
                    .as_ref()
                    .map(|c| c.owners())
                    .unwrap_or_default();
                all.extend(catalog.owners());
                catalog_owners = all;
                owners = &catalog_owners;
                impact =
                    lineage::plan_impact(plan, catalog, live.catalog.as_deref(), &live.lineage);
                (forge::PlanOutcome::Valid { plan }, Verdict::Valid)
            }
            Ok(Preview::Invalid { diagnostics }) => (
                forge::PlanOutcome::Invalid { diagnostics },
                Verdict::Invalid,
            ),
            Err(e) => {
                message = chain(e);
                (
                    forge::PlanOutcome::Error { message: &message },
                    Verdict::Invalid,
                )
            }
        };
        let (state, description) = forge::comment::status(&outcome, owners);
        tracing::info!(
            pull_request = pr.number,
            repository = %pr.repository,
            "pull request #{} ({}) at {}: {description}",
            pr.number,
            pr.repository,
            short(&pr.head_sha)
        );
        if let Some(f) = forge {
            let bodies = forge::comment::render(
                &forge::PlanComment {
                    head_sha: &pr.head_sha,
                    base_branch: &pr.base_ref,
                    repo_html_url: &pr.html_url,
                    outcome,
                    owners,
                    impact: &impact,
                    unverified: signature
                        .as_ref()
                        .zip(self.engine.verify.as_ref())
                        .and_then(|(signature, verifier)| {
                            (!signature.verified()).then_some((signature, verifier.policy))
                        }),
                },
                forge::comment::GITHUB_COMMENT_LIMIT,
            );
            f.upsert_plan_comments(&repo_ref, pr.number, &bodies)
                .await?;
            f.set_status(&repo_ref, &pr.head_sha, state, &description, None)
                .await?;
        }
        preview?;
        Ok(verdict)
    }

    /// The head commit's signature check (`None` when signatures are not checked, or the keys
    /// could not be read: then the comment says nothing of it, and the log says why).
    async fn head_signature(
        &self,
        repo: &std::path::Path,
        sha: &str,
    ) -> Option<crate::signature::Verification> {
        match self.engine.signature(repo, sha).await {
            Ok(signature) => signature,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "could not check the signature of {}", short(sha));
                None
            }
        }
    }
}
