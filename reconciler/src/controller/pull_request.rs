//! Pull requests: the head of a pull request planned against the live state (changing nothing)
//! and reported on the pull request: one upserted plan comment and an `olo/plan` commit status.
//! The controller's worker plans them between reconciles, so a plan never overlaps an apply.

use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::engine::{short, Preview};
use crate::forge::{self, Forge, ForgeError, JobImpact, RepoRef};
use crate::plan::Plan;

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

/// The lineage impact of a proposed commit's plan (its jobs' inputs and outputs, and what depends
/// on them): given the plan and the proposed commit's catalog.
pub type ImpactOf<'a> = &'a (dyn Fn(&Plan, &Catalog) -> Vec<JobImpact> + Sync);

impl Controller {
    /// Plans the head of `pr` against the live state and reports it on the pull request through
    /// `forge` (a pending status first, then the comment and the final status). Without a forge
    /// the plan is only logged. An error planning the head is reported on the pull request and
    /// returned.
    pub async fn plan_pull_request(
        &self,
        forge: Option<&dyn Forge>,
        pr: &PullRequestPlan,
        impact: ImpactOf<'_>,
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
        let mut impacts = Vec::new();
        let message;
        let (outcome, verdict) = match &preview {
            Ok(Preview::Valid { plan, catalog, .. }) => {
                catalog_owners = catalog.owners();
                owners = &catalog_owners;
                impacts = impact(plan, catalog);
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
                    impact: &impacts,
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
