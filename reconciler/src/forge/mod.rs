//! The forge (GitHub): plan comments on pull requests and commit statuses.
//!
//! [`comment`] is pure (plan, diagnostics or error in; Markdown bodies and a status line out);
//! [`github`] is the one adapter that talks to GitHub, behind the [`Forge`] trait.

pub mod comment;
pub mod github;

pub use comment::{
    render, status, JobImpact, PlanComment, PlanOutcome, StatusState, GITHUB_COMMENT_LIMIT, MARKER,
};
pub use github::{
    Forge, ForgeError, GitHub, GitHubAuth, GitHubSettings, NewPullRequest, PullRequest, RepoRef,
    GITHUB_API_URL, STATUS_CONTEXT,
};
