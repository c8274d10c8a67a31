//! Where commits come from: a local repository path or a remote repository, and a tracked
//! branch. Every reconcile reads one commit whole from git objects.

mod import;
mod local;
mod meta;
mod remote;

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
}
