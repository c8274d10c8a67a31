//! Where commits come from: a local repository path or a remote repository, and a tracked
//! branch. Every reconcile reads one commit whole from git objects.

mod import;
mod local;
mod meta;
mod remote;
pub mod write;

use std::path::PathBuf;

pub use import::import_worktree;
pub use local::LocalSource;
pub use meta::commit_revision;
pub use remote::{Credentials, RemoteSource};

use crate::store::Revision;
use crate::Result;

/// The newest commit of the tracked branch, and the git repository that holds it.
#[derive(Debug, Clone)]
pub struct Tip {
    pub repo: PathBuf,
    pub revision: Revision,
}

/// A source of commits.
pub trait Source: Send {
    /// Brings the source up to date (fetch, import) and returns the branch tip.
    fn latest(&mut self) -> Result<Tip>;
    /// A short description for logs and status ("local /path (main)").
    fn describe(&self) -> String;
    /// Makes commit `sha` readable (fetching `refs` from a remote when it is not there yet,
    /// e.g. `refs/pull/7/head` for a pull request from a fork) and returns the repository that
    /// holds it.
    fn fetch_commit(&mut self, sha: &str, refs: &[String]) -> Result<PathBuf>;
    /// Makes `request` one commit on a branch of the source (API writes, after
    /// [`latest`](Source::latest) and validation). Sources that cannot take commits refuse.
    fn write(
        &mut self,
        request: &write::WriteRequest,
    ) -> std::result::Result<write::Written, write::WriteError> {
        let _ = request;
        Err(write::WriteError::Unsupported(self.describe()))
    }
}

/// Whether `repo` holds commit `sha`.
fn has_commit(repo: &git2::Repository, sha: &str) -> bool {
    git2::Oid::from_str(sha)
        .ok()
        .and_then(|oid| repo.find_commit(oid).ok())
        .is_some()
}

fn missing_commit(sha: &str) -> crate::Error {
    crate::Error::Revision {
        rev: sha.to_string(),
        source: git2::Error::from_str("commit not found in the source repository"),
    }
}
