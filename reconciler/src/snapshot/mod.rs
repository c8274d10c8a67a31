//! Snapshots of a config repository: from a working tree (for `olo validate PATH`) or from a git
//! commit's objects (for `--rev` and for every reconcile), never a mix of the two.

mod git;
mod worktree;

pub use git::{from_commit, from_commit_since, read_file};
pub use worktree::from_worktree;
