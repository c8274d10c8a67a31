//! The forge (GitHub): plan comments on pull requests and commit statuses.

pub mod comment;
pub mod github;

pub use comment::{
    render, status, PlanComment, PlanOutcome, StatusState, GITHUB_COMMENT_LIMIT, MARKER,
};
pub use github::{Forge, ForgeError, GitHub, GitHubAuth, GitHubSettings, RepoRef};
